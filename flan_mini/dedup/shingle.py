"""Tokens to shingle hashes and exact-text keys, vectorised over a batch with rolling polynomial hashes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..textnorm import TextNorm, list_offsets, tokenize
from .hashing import U32, U64, fmix64, hash_strings, inverse_mod_2_64, powers

# Odd 64-bit bases of the polynomial hashes (odd, so they are invertible mod 2^64), and a salt that
# separates token values from other uses of fmix64.
_BASE_1 = 0x9E3779B97F4A7C15
_BASE_2 = 0xD6E8FEB86659FD93
_TOKEN_SALT = U64(0x243F6A8885A308D3)
_INVERSE = {base: inverse_mod_2_64(base) for base in (_BASE_1, _BASE_2)}


def token_values(tokens: pa.Array, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The batch's token stream as uint64 values, plus int64 offsets (n + 1) of each row into it.

    A token's value is fmix64(raw ^ salt), where raw is, for word: xxh64 of its UTF-8 bytes; for char: one
    character of the normalised text (tokens joined by single spaces), its UTF-8 bytes read as a little-endian
    integer. Example (char): "ab é" -> raw [0x61, 0x62, 0x20, 0xA9C3], offsets [0, 4]. Words are mixed once
    per distinct word (a batch has ~30k distinct among 1.5M), not once per occurrence.
    """
    if kind == "word":
        return hash_strings(pc.list_flatten(tokens), finish=_mix), list_offsets(tokens)
    text = pc.binary_join(tokens, " ")
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    raw, offsets = _characters(text)
    return _mix(raw), offsets


def text_token_values(text: pa.Array, norm: TextNorm, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``token_values(tokenize(text, norm), kind)``, with the ASCII rows and the others tokenised apart.

    A batch with a single non-ASCII row otherwise takes the Unicode kernels for every row (about 1.5x slower
    than the ASCII ones, which give the same tokens on ASCII text); a row's tokens never depend on the other
    rows of its batch, so the two parts' values are merged back in row order and equal the one-pass result.
    """
    text = pc.fill_null(text, "")
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    ascii_rows = pc.string_is_ascii(text)
    if len(text) == 0 or pc.all(ascii_rows).as_py() or not pc.any(ascii_rows).as_py():
        return token_values(tokenize(text, norm), kind)
    mask = ascii_rows.to_numpy(zero_copy_only=False)
    parts = [
        (np.flatnonzero(chosen), token_values(tokenize(pc.filter(text, pa.array(chosen)), norm), kind))
        for chosen in (mask, ~mask)
    ]
    lengths = np.empty(len(text), dtype=np.int64)
    for rows, (_, offsets) in parts:
        lengths[rows] = np.diff(offsets)
    out_offsets = np.zeros(len(text) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_offsets[1:])
    out = np.empty(int(out_offsets[-1]), dtype=U64)
    for rows, (values, offsets) in parts:
        # Token j of a part's row r goes to r's start in the merged stream plus j's index within the row.
        shift = np.repeat(out_offsets[rows] - offsets[:-1], np.diff(offsets))
        out[np.arange(len(values), dtype=np.int64) + shift] = values
    return out, out_offsets


def _mix(raw: np.ndarray) -> np.ndarray:
    return fmix64(raw ^ _TOKEN_SALT)


def _characters(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    if len(text) == 0:
        return np.zeros(0, dtype=U64), np.zeros(1, dtype=np.int64)
    _, offset_buffer, data = text.buffers()
    width = np.int64 if pa.types.is_large_string(text.type) else np.int32
    byte_offsets = np.frombuffer(offset_buffer, dtype=width)[text.offset : text.offset + len(text) + 1]
    byte_offsets = byte_offsets.astype(np.int64)
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    raw = raw[byte_offsets[0] : byte_offsets[-1]]
    byte_offsets = byte_offsets - byte_offsets[0]
    # A character starts at every byte that is not a continuation byte (0b10xxxxxx).
    lead = (raw & 0xC0) != 0x80
    starts = np.flatnonzero(lead)
    first = raw[starts]
    length = 1 + (first >= 0xC0).astype(np.int64) + (first >= 0xE0) + (first >= 0xF0)
    padded = np.concatenate([raw, np.zeros(3, np.uint8)])
    values = first.astype(U64)
    for k in range(1, 4):
        extra = np.where(length > k, padded[starts + k], 0).astype(U64)
        values |= extra << U64(8 * k)
    counts = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum(lead, out=counts[1:])
    return values, counts[byte_offsets]


def _prefix(x: np.ndarray, bases: tuple[int, ...]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Prefix sums Q[j, i] = sum_{k<i} x_k base_j^k for every base in one pass, and the inverse powers
    base_j^-i, all mod 2^64.

    The polynomial hash of the slice x[s:e] is then (Q[e] - Q[s]) * base^-s = sum_{k<e-s} x_{s+k} base^k:
    every window costs two lookups and a multiply whatever its length (24-char shingles are as cheap as 5).
    The power tables come from a per-process cache (see hashing.powers), not from a cumprod per batch.
    """
    q = np.zeros((len(bases), len(x) + 1), dtype=U64)
    for row, base in enumerate(bases):
        np.multiply(x, powers(base, len(x)), out=q[row, 1:])
    np.cumsum(q[:, 1:], axis=1, out=q[:, 1:])
    return q, [powers(_INVERSE[base], len(x) + 1) for base in bases]


def _slice_hash(q: np.ndarray, inv: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    return (q[end] - q[start]) * inv[start]


def shingle_hashes(
    values: np.ndarray, offsets: np.ndarray, size: int, *, wide: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shingle hashes (uint32) of each row, their offsets (n + 1), and a 128-bit exact key per row (n x 2 uint64).

    A row of L tokens has max(L - size + 1, 1) shingles (one shingle of everything when L < size, none when
    L == 0). Shingles are windows of the token stream that do not cross a row boundary. Example, size 2,
    rows [a b c] [d]: windows (a b) (b c) (d), offsets [0, 2, 3]. The 32-bit shingle value is the input
    "hash function" of datasketch's MinHash (its `hashfunc`), so the permutation step matches it bit for bit;
    it is the top half of a 64-bit shingle hash, returned instead when ``wide`` (for exact set comparisons).

    The exact key is two polynomial hashes of the row's whole token sequence, so two rows get the same key
    exactly when their normalised texts are equal (up to a 2^-128-scale accident).
    """
    q, (inv1, inv2) = _prefix(values, (_BASE_1, _BASE_2))
    q1, q2 = q[0], q[1]
    lengths = np.diff(offsets)
    counts = np.where(lengths > 0, np.maximum(lengths - size + 1, 1), 0)
    shingle_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(counts, out=shingle_offsets[1:])
    total = int(shingle_offsets[-1])
    # Window k of a row starts at row start + k: the global window index plus a per-row shift (one repeat).
    start = np.arange(total, dtype=np.int64) + np.repeat(offsets[:-1] - shingle_offsets[:-1], counts)
    end = start + size
    short = (lengths > 0) & (lengths < size)  # their one window is the whole row
    end[shingle_offsets[:-1][short]] = offsets[1:][short]
    hashes = fmix64(_slice_hash(q1, inv1, start, end))
    shingles = hashes if wide else (hashes >> U64(32)).astype(U32)

    row_start, row_end = offsets[:-1], offsets[1:]
    keys = np.empty((len(lengths), 2), dtype=U64)
    keys[:, 0] = fmix64(_slice_hash(q1, inv1, row_start, row_end) ^ lengths.astype(U64))
    keys[:, 1] = fmix64(_slice_hash(q2, inv2, row_start, row_end))
    return shingles, shingle_offsets, keys

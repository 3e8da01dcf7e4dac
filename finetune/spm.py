"""The LLaMA sentencepiece model: found in a base's ``tokenizer.model``, or rebuilt from a vocabulary.

The original (legacy) LLaMA tokenizer Vicuna and Flacuna trained with is a sentencepiece BPE model:
encoding picks, among adjacent symbols, the merge whose result has the highest *score*, within words that
start at each whitespace. A base that ships only ``tokenizer.json`` still holds everything needed to rebuild
that model: the pieces in id order, which are special or byte pieces, and the normaliser's dummy prefix.
sentencepiece's BPE trainer scores piece ``i`` as ``-i`` (the order in which merges were learnt), so scores
come back from the ids, except LLaMA's whitespace runs (``▁▁``, ``▁▁▁▁``...), which its model scores -1e9
(they merge last). The ``merges`` of the tokenizer.json, ranked by score when it was converted, must agree
(checked). The tests check the rebuilt model against the genuine one token for token.
"""

from __future__ import annotations

import json
from pathlib import Path

from flan_mini.errors import FlanMiniError

SPM_FILE = "tokenizer.model"
TOKENIZER_JSON = "tokenizer.json"

# sentencepiece's SentencePiece.Type (GGUF's token types use the same numbers).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
WHITESPACE_SCORE = -1e9


def model_proto_from_vocab(pieces: list[str], scores: list[float], types: list[int]) -> bytes:
    """A serialised sentencepiece ModelProto for a LLaMA-style BPE vocabulary.

    The normaliser and trainer settings are the ones LLaMA's ``tokenizer.model`` carries: identity
    normalisation, a dummy prefix, whitespace kept as is (runs of spaces may form pieces), byte fallback.
    """
    from sentencepiece import sentencepiece_model_pb2 as pb

    if not (len(pieces) == len(scores) == len(types)):
        raise FlanMiniError(f"vocabulary has {len(pieces)} pieces but {len(scores)} scores and {len(types)} types")
    proto = pb.ModelProto()
    for piece, score, kind in zip(pieces, scores, types):
        entry = proto.pieces.add()
        entry.piece, entry.score, entry.type = piece, float(score), int(kind)
    ids = {kind: [i for i, t in enumerate(types) if t == kind] for kind in (UNKNOWN, CONTROL)}
    trainer = proto.trainer_spec
    trainer.model_type = pb.TrainerSpec.BPE
    trainer.vocab_size = len(pieces)
    trainer.byte_fallback = any(t == BYTE for t in types)
    trainer.allow_whitespace_only_pieces = True
    trainer.split_digits = True
    trainer.unk_id = ids[UNKNOWN][0] if ids[UNKNOWN] else 0
    controls = {pieces[i]: i for i in ids[CONTROL]}
    trainer.bos_id = controls.get("<s>", -1)
    trainer.eos_id = controls.get("</s>", -1)
    trainer.pad_id = -1
    normalizer = proto.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = True
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = True
    return proto.SerializeToString()


def looks_like_llama_spm(tokenizer_json: dict) -> bool:
    """A tokenizer.json converted from a sentencepiece BPE model: BPE with byte fallback over ``▁``-words."""
    model = tokenizer_json.get("model") or {}
    text = json.dumps({k: tokenizer_json.get(k) for k in ("normalizer", "pre_tokenizer", "decoder")}, ensure_ascii=False)
    return model.get("type") == "BPE" and bool(model.get("byte_fallback")) and "\u2581" in text


def model_proto_from_tokenizer_json(path: Path) -> bytes:
    """Rebuild the sentencepiece model of a LLaMA-family ``tokenizer.json`` (see the module docstring)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not looks_like_llama_spm(data):
        raise FlanMiniError(
            f"{path}: not a sentencepiece-style BPE tokenizer (expected model.type BPE with byte_fallback and "
            f"'\u2581' word markers); set base_model.tokenizer_mode: fast to use it as it is"
        )
    vocab: dict[str, int] = data["model"]["vocab"]
    added = {entry["id"]: entry for entry in data.get("added_tokens", [])}
    size = max([*vocab.values(), *added]) + 1
    pieces: list[str | None] = [None] * size
    for piece, i in vocab.items():
        pieces[i] = piece
    for i, entry in added.items():
        pieces[i] = entry["content"]
    missing = [i for i, p in enumerate(pieces) if p is None]
    if missing:
        raise FlanMiniError(f"{path}: token ids {missing[:5]} have no piece; cannot rebuild the sentencepiece model")
    unk = data["model"].get("unk_token")
    types, scores = [], []
    for i, piece in enumerate(pieces):
        if piece == unk:
            types.append(UNKNOWN)
        elif i in added and added[i].get("special"):
            types.append(CONTROL)
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            types.append(BYTE)
        elif i in added:
            types.append(USER_DEFINED)
        else:
            types.append(NORMAL)
        scores.append(_score(i, piece) if types[-1] == NORMAL else 0.0)
    _check_merge_order(path, data["model"].get("merges") or [], pieces, scores)
    return model_proto_from_vocab(pieces, scores, types)


def _score(i: int, piece: str) -> float:
    """The BPE trainer scores piece ``i`` as ``-i``; LLaMA's model scores its runs of whitespace (``▁▁``, ``▁▁▁▁``,
    ...) -1e9, so they merge last, all tied (ties go to the leftmost pair)."""
    return WHITESPACE_SCORE if set(piece) == {"\u2581"} else -float(i)


def _check_merge_order(path: Path, merges: list, pieces: list[str], scores: list[float]) -> None:
    """The merge list ranks merges by the score of their result; refuse a vocabulary whose ranks disagree."""
    score_of = {piece: score for piece, score in zip(pieces, scores)}
    last = None
    for merge in merges:
        left, right = merge if isinstance(merge, list) else merge.split(" ", 1)
        score = score_of.get(left + right)
        if score is None:
            continue
        if last is not None and score > last[0]:
            raise FlanMiniError(
                f"{path}: its merges rank {left + right!r} after {last[1]!r}, but the sentencepiece scores rebuilt "
                f"from the ids put it first; this is not a LLaMA-style vocabulary. Give the base's tokenizer.model "
                f"(base_model.tokenizer), or set base_model.tokenizer_mode: fast"
            )
        last = (score, left + right)


def load_processor(folder: Path):
    """The sentencepiece processor of a tokenizer folder, and where it came from.

    ``tokenizer.model`` is used as it is; without it, the model is rebuilt from ``tokenizer.json``.
    """
    import sentencepiece

    folder = Path(folder)
    processor = sentencepiece.SentencePieceProcessor()
    if (folder / SPM_FILE).is_file():
        processor.LoadFromSerializedProto((folder / SPM_FILE).read_bytes())
        return processor, SPM_FILE
    if (folder / TOKENIZER_JSON).is_file():
        processor.LoadFromSerializedProto(model_proto_from_tokenizer_json(folder / TOKENIZER_JSON))
        return processor, f"{TOKENIZER_JSON} (sentencepiece model rebuilt from its vocabulary)"
    raise FlanMiniError(f"{folder}: neither {SPM_FILE} nor {TOKENIZER_JSON}; cannot load a sentencepiece tokenizer")

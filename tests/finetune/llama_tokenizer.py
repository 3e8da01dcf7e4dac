"""Test setup: rebuild the genuine LLaMA sentencepiece ``tokenizer.model`` offline, for the tokenizer tests.

Run before pytest (``.ci/run`` and the README's test command do):  python tests/finetune/llama_tokenizer.py

The LLaMA vocabulary is not committed (it is Meta's, under the LLaMA licence). llama.cpp (MIT) publishes it,
with its tokens, scores and token types, as ``models/ggml-vocab-llama-spm.gguf`` inside the
``llama-cpp-python`` source distribution on PyPI, together with test strings and the ids the original
tokenizer gives them (``.gguf.inp`` / ``.gguf.out``). This script downloads that sdist with pip, rebuilds a
sentencepiece ModelProto from the GGUF vocabulary (``finetune.spm.model_proto_from_vocab``), checks it
reproduces every reference encoding, and writes ``tokenizer.model`` and the reference cases into the cache
folder the tests read (``$FLAN_MINI_TEST_ASSETS``, default ``.cache/test-assets`` in the repository).
A second run finds the file and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "llama-cpp-python"
SDIST = f"{PACKAGE}==0.3.36"  # pinned: the vocabulary and reference cases are those of this release
MEMBER = "vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"
# sha256 of the rebuilt tokenizer.model: the same bytes on every machine.
EXPECTED_SHA256 = "0e75d3708a3abef049c6309308cb8683039a8cc80ed32ea329825f298a0b2658"


def assets_dir() -> Path:
    return Path(os.environ.get("FLAN_MINI_TEST_ASSETS") or REPO / ".cache" / "test-assets")


def llama_dir() -> Path:
    return assets_dir() / "llama-spm"


def reference_cases(inp: str, out: str) -> list[tuple[str, list[int]]]:
    """llama.cpp's test strings and their ids: inputs separated by a marker line, one line of ids each."""
    texts = inp.split("\n__ggml_vocab_test__\n")
    texts[-1] = texts[-1].removesuffix("\n")
    lines = out.split("\n")[: len(texts)]
    return [(text, [int(t) for t in line.split()]) for text, line in zip(texts, lines)]


def rebuild(gguf_path: Path) -> bytes:
    from gguf import GGUFReader

    sys.path.insert(0, str(REPO))
    from finetune.spm import model_proto_from_vocab

    fields = GGUFReader(str(gguf_path)).fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    scores = fields["tokenizer.ggml.scores"].contents()
    types = fields["tokenizer.ggml.token_type"].contents()
    return model_proto_from_vocab(tokens, scores, types)


def check(model: bytes, cases: list[tuple[str, list[int]]]) -> None:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    processor.LoadFromSerializedProto(model)
    wrong = [(text, ids, processor.encode(text)) for text, ids in cases if processor.encode(text) != ids]
    if wrong:
        text, ids, got = wrong[0]
        raise SystemExit(f"rebuilt tokenizer.model differs on {len(wrong)} of {len(cases)} reference cases, "
                         f"first {text!r}: expected {ids}, got {got}")


def main() -> int:
    target = llama_dir()
    model_path = target / "tokenizer.model"
    if model_path.is_file() and (target / "reference_cases.json").is_file():
        print(f"{model_path}: present")
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            # --no-binary for this package only: its build requirements (needed to read its metadata) come as
            # wheels; `:all:` would build them from source too (5.5 min instead of 42 s without a pip cache).
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", PACKAGE, SDIST, "-d", tmp],
            check=True,
        )
        (sdist,) = Path(tmp).glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            root = archive.getnames()[0].split("/")[0]
            read = {suffix: archive.extractfile(f"{root}/{MEMBER}{suffix}").read() for suffix in ("", ".inp", ".out")}
            licence = archive.extractfile(f"{root}/vendor/llama.cpp/LICENSE").read()
        gguf_path = Path(tmp) / "vocab.gguf"
        gguf_path.write_bytes(read[""])
        model = rebuild(gguf_path)
    cases = reference_cases(read[".inp"].decode("utf-8"), read[".out"].decode("utf-8"))
    check(model, cases)
    digest = hashlib.sha256(model).hexdigest()
    if EXPECTED_SHA256 and digest != EXPECTED_SHA256:
        raise SystemExit(f"rebuilt tokenizer.model has sha256 {digest}, expected {EXPECTED_SHA256}")
    target.mkdir(parents=True, exist_ok=True)
    (target / "reference_cases.json").write_text(json.dumps(cases, ensure_ascii=False) + "\n", encoding="utf-8")
    (target / "LICENSE.llama.cpp").write_bytes(licence)
    partial = model_path.with_suffix(".partial")
    partial.write_bytes(model)
    partial.replace(model_path)  # written last: its presence means the folder is complete
    print(f"{model_path}: rebuilt from {SDIST} ({len(cases)} reference encodings match, sha256 {digest}) "
          f"in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

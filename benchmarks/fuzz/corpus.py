"""The seeded corpus of the nastiest inputs, committed under ``tests/data/fuzz_corpus``.

Each file is ``<kind>/<case>__<file name>``: the hostile file, which
:func:`benchmarks.fuzz.inputs.place` drops into an otherwise valid input of that kind. They
are the inputs that escaped before issue 16 was fixed (deep nesting, declared shapes of
2**40, sketches that do not fill their shape, "billion laughs" YAML, GGUF lengths that lie)
plus their neighbours. ``tests/test_fuzz.py`` replays every one through the real entry
point. Regenerate with ``python -m benchmarks.fuzz.corpus`` (deterministic).
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.fuzz.inputs import (
    _GGUF_ARRAY,
    _GGUF_STRING,
    _GGUF_U32,
    _yaml_bomb,
    base_config,
    base_fingerprint,
    base_tensors,
    base_tokenizer,
    dumps,
    gguf_bytes,
    gguf_parts,
    safetensors_bytes,
    safetensors_parts,
)

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "data" / "fuzz_corpus"
DEEP = 20_000


def _deep_json(n: int = DEEP) -> bytes:
    return b"[" * n + b"]" * n


def _st(edit: Callable[[dict[str, Any]], Any] | None = None, declared: int | None = None,
        body: Callable[[bytes], bytes] | None = None) -> bytes:
    header, data = safetensors_parts(base_tensors())
    if edit is not None:
        edit(header)
    return safetensors_bytes(header, body(data) if body else data, declared)


def _shape(shape: list[int]) -> Callable[[dict[str, Any]], None]:
    def edit(h: dict[str, Any]) -> None:
        h["lm_head.weight"]["shape"] = shape
    return edit


def _gg(edit: Callable[[list[list[Any]], list[list[Any]]], Any], **kw: Any) -> bytes:
    kv, infos, _ = gguf_parts()
    edit(kv, infos)
    return gguf_bytes(kv, infos, **kw)


def _set(i: int, value: Any) -> Callable[[list[list[Any]], list[list[Any]]], None]:
    def edit(kv: list[list[Any]], infos: list[list[Any]]) -> None:
        kv[i][1:] = value
    return edit


def _fp(edit: Callable[[dict[str, Any]], Any]) -> bytes:
    fp = base_fingerprint(Path(_SCRATCH))
    edit(fp)
    return dumps(fp).encode()


def _sketch(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(fp: dict[str, Any]) -> None:
        entry = next(iter(fp["sketches"]["matrix"].values()))
        entry[field] = value
    return edit


def _gain(value: float) -> Callable[[dict[str, Any]], None]:
    """Set the last value of the last layer's MLP norm gain."""
    def edit(fp: dict[str, Any]) -> None:
        fp["vectors"]["norm.mlp"][-1][-1] = value
    return edit


def _cfg(**kw: Any) -> bytes:
    return dumps({**base_config(), **kw}).encode()


def _tok(edit: Callable[[dict[str, Any]], Any]) -> bytes:
    tok = base_tokenizer()
    edit(tok)
    return dumps(tok).encode()


_SCRATCH = "/tmp/modelprint-corpus"
_AUDIT = ("candidate: ./candidate.fp.json\nreferences:\n  - model: ./reference.fp.json\n"
          "    name: ref\n")


def cases() -> dict[str, bytes]:
    """``<kind>/<case>__<file name>`` -> bytes."""
    from benchmarks.fuzz.inputs import Raw

    nan_values = base64.b64encode(struct.pack("<4e", *[float("nan")] * 4)).decode()
    out: dict[str, bytes] = {
        # safetensors
        "safetensors/header_length_2e64__model.safetensors": _st(declared=2**64 - 1),
        "safetensors/shape_2e40_squared__model.safetensors": _st(_shape([2**40, 2**40])),
        "safetensors/shape_negative__model.safetensors": _st(_shape([-1, 16])),
        "safetensors/header_nested_20000_deep__model.safetensors":
            struct.pack("<Q", 2 * DEEP) + _deep_json(),
        "safetensors/five_thousand_tensors__model.safetensors": safetensors_bytes(
            {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
             for i in range(5_000)}, b""),
        "safetensors/nan_weights__model.safetensors": _st(
            body=lambda b: b"\x00\x00\xc0\x7f" * 8 + b[32:]),
        "safetensors/truncated_body__model.safetensors": _st()[:-1000],
        "safetensors/index_nested_deep__model.safetensors.index.json": _deep_json(),
        # GGUF
        "gguf/string_length_2e63__model.gguf": _gg(_set(1, [_GGUF_STRING, ("fuzz", 2**63)])),
        "gguf/string_16MB_declared_past_end__model.gguf": _gg(
            _set(1, [_GGUF_STRING, ("fuzz", 20 * 1024 * 1024)])),
        "gguf/array_count_2e62__model.gguf": _gg(_set(11, [_GGUF_ARRAY,
                                                          (_GGUF_U32, [1, 2], 2**62)])),
        "gguf/string_array_count_1e7__model.gguf": _gg(_set(10, [_GGUF_ARRAY,
                                                                (_GGUF_STRING, ["a"], 10**7)])),
        "gguf/nested_array__model.gguf": _gg(_set(11, [_GGUF_ARRAY, (_GGUF_ARRAY, [], 5)])),
        "gguf/tensor_dims_2e40__model.gguf": _gg(
            lambda kv, infos: infos[0].__setitem__(1, [2**40, 2**40])),
        "gguf/counts_2e64__model.gguf": _gg(lambda kv, infos: None,
                                            counts=(2**64 - 1, 2**64 - 1)),
        "gguf/block_count_2e32__model.gguf": _gg(_set(2, [_GGUF_U32, 2**32 - 1])),
        "gguf/head_count_zero__model.gguf": _gg(_set(5, [_GGUF_U32, 0])),
        # config.json and the repository's text files
        "config/num_hidden_layers_2e40__config.json": _cfg(num_hidden_layers=2**40),
        "config/num_attention_heads_zero__config.json": _cfg(num_attention_heads=0),
        "config/hidden_size_infinite__config.json": dumps(
            {**base_config(), "hidden_size": Raw("1e999")}).encode(),
        "config/vocab_size_negative__config.json": _cfg(vocab_size=-5),
        "config/layers_as_text__config.json": _cfg(num_hidden_layers="2"),
        "config/nested_20000_deep__config.json": _deep_json(),
        "config/not_an_object__config.json": b"[1, 2, 3]",
        "config/duplicate_keys__config.json": b'{"model_type": "llama", "model_type": "bert"}',
        "config/ignored_readme_billion_laughs__README.md": (
            "---\n" + _yaml_bomb(_Fixed(0.1, 12)) + "\n---\n# card\n").encode(),
        "config/ignored_readme_nested_deep__README.md": (
            "---\nx: " + "[" * 20_000 + "]" * 20_000 + "\n---\n").encode(),
        # tokenizer files
        "tokenizer/token_id_2e40__tokenizer.json": _tok(
            lambda t: t["model"]["vocab"].__setitem__("big", 2**40)),
        "tokenizer/token_id_negative__tokenizer.json": _tok(
            lambda t: t["model"]["vocab"].__setitem__("neg", -1)),
        "tokenizer/added_token_id_2e40__tokenizer.json": _tok(
            lambda t: t.__setitem__("added_tokens", [{"id": 2**40, "content": "x"}])),
        "tokenizer/ignored_vocab_is_a_number__tokenizer.json": _tok(
            lambda t: t["model"].__setitem__("vocab", 7)),
        "tokenizer/nested_20000_deep__tokenizer.json": _deep_json(),
        "tokenizer/not_utf8__tokenizer.json": b'{"model": {"vocab": {"\xff\xfe": 0}}}',
        "tokenizer/ignored_config_nested_deep__tokenizer_config.json": _deep_json(),
        # fingerprint files (a compare reference)
        "fingerprint/sketch_shape_64x100000__reference.fp.json": _fp(
            _sketch("shape", [64, 100_000])),
        "fingerprint/sketch_shape_2e40__reference.fp.json": _fp(_sketch("shape", [2**40, 2**40])),
        "fingerprint/sketch_rows_as_text__reference.fp.json": _fp(_sketch("rows", ["a", "b"])),
        "fingerprint/sketch_rows_5000__reference.fp.json": _fp(
            _sketch("rows", list(range(5000)))),
        "fingerprint/sketch_values_nan__reference.fp.json": _fp(_sketch("values", nan_values)),
        "fingerprint/sketch_values_short__reference.fp.json": _fp(_sketch("values", "AAAA")),
        "fingerprint/model_is_a_list__reference.fp.json": _fp(
            lambda fp: fp.__setitem__("model", [1])),
        "fingerprint/layers_2e40__reference.fp.json": _fp(
            lambda fp: fp["architecture"].__setitem__("num_layers", 2**40)),
        "fingerprint/curve_5000_values__reference.fp.json": _fp(
            lambda fp: fp["curves"]["attn.q"].__setitem__("std", [0.1] * 5000)),
        "fingerprint/curve_nan__reference.fp.json": _fp(
            lambda fp: fp["curves"]["attn.q"].__setitem__("std", [Raw("NaN"), 0.1])),
        # a finite gain whose fold into the sketches overflowed float32: a NaN cost matrix
        # reached the assignment (the long run's one traceback, seed 16500007827)
        "fingerprint/norm_gain_1e300__reference.fp.json": _fp(_gain(9.7e299)),
        "fingerprint/nested_20000_deep__reference.fp.json": _deep_json(),
        "fingerprint/unknown_version__reference.fp.json": _fp(
            lambda fp: fp.__setitem__("format", "modelprint.fingerprint/99")),
        # audit YAML
        "audit/billion_laughs__x.audit.yaml": (
            _yaml_bomb(_Fixed(0.1, 12)) + "\n" + _AUDIT).encode(),
        "audit/alias__x.audit.yaml": b"candidate: &c ./candidate.fp.json\n"
                                     b"references: [{model: *c}]\n",
        "audit/nested_flow_20000__x.audit.yaml": (
            "candidate: " + "[" * 20_000 + "]" * 20_000 + "\n").encode(),
        "audit/nested_block_300__x.audit.yaml": "\n".join(
            "  " * i + "k:" for i in range(300)).encode(),
        "audit/python_tag__x.audit.yaml": (
            b"candidate: !!python/object/apply:os.system ['touch pwned-by-yaml']\n"),
        "audit/merge_key__x.audit.yaml": (
            b"base: &b {model: ./reference.fp.json}\nreferences: [{<<: *b}]\n"),
        "audit/control_character__x.audit.yaml": b"candidate: ./candidate\x00.fp.json\n",
        "audit/not_utf8__x.audit.yaml": b"candidate: \xff\xfe\n",
        "audit/integer_5000_digits__x.audit.yaml": (_AUDIT + "alpha: " + "9" * 5000
                                                    + "\n").encode(),
        "audit/over_256_kib__x.audit.yaml": (_AUDIT + "# " + "x" * 300_000 + "\n").encode(),
    }
    return out


class _Fixed(random.Random):
    """A Random whose ``random()`` and ``choice()`` answer fixed values (a chosen bomb)."""

    def __init__(self, roll: float, pick: int) -> None:
        super().__init__(0)
        self._roll, self._pick = roll, pick

    def random(self) -> float:
        return self._roll

    def choice(self, seq: Any) -> Any:
        return self._pick if self._pick in seq else seq[-1]


def write(root: Path = CORPUS) -> int:
    if root.exists():
        shutil.rmtree(root)
    items = cases()
    for name, data in items.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "README.md").write_text(
        "Hostile inputs replayed by tests/test_fuzz.py; written by "
        "`python -m benchmarks.fuzz.corpus` (see that module). `<kind>/<case>__<file>`: "
        "the file is dropped into an otherwise valid input of that kind.\n")
    return len(items)


def main() -> int:
    n = write()
    print(f"{n} cases in {CORPUS}", file=sys.stderr)
    print(json.dumps(sorted(cases())[:3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

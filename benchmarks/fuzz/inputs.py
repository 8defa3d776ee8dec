"""Hostile inputs of every kind modelprint reads, generated from one ``random.Random``.

Each generator starts from a small *valid* input (a 2-layer llama checkpoint, a GGUF file, a
fingerprint, an audit file) and applies a few structure-aware mutations -- a field replaced
by a hostile value (2**40, -1, NaN, 100,000-deep nesting, a 100,000-item list, the wrong
type), a key dropped or repeated, a declared length that lies -- then, sometimes, byte-level
damage (truncation, flipped bytes, inserted garbage). The same functions feed the test
suite's Hypothesis strategies (``tests/strategies.py`` passes ``st.randoms()``, so failures
shrink) and the long run (``benchmarks/fuzz/run.py`` passes ``random.Random(seed)``, so every
input is reproducible from its kind and seed).

``write_case(kind, rnd, folder)`` writes one input below ``folder`` and returns the command
line of the real entry point to run on it (see :mod:`benchmarks.fuzz.harness`).
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Largest file a generator writes (mutations compound: a list of long strings, repeated).
MAX_CASE_BYTES = 32 * 1024 * 1024
KINDS = ("safetensors", "gguf", "config", "tokenizer", "audit", "fingerprint")

# -- the valid base model -------------------------------------------------------------------
LAYERS, HIDDEN, HEADS, KV_HEADS, FF, VOCAB = 2, 16, 2, 1, 32, 64
HEAD_DIM = HIDDEN // HEADS


def base_config() -> dict[str, Any]:
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "torch_dtype": "float32", "vocab_size": VOCAB, "hidden_size": HIDDEN,
            "intermediate_size": FF, "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
            "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
            "max_position_embeddings": 256, "hidden_act": "silu"}


def base_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    """HF llama tensors of the base model (float32, fixed seed)."""
    rng = np.random.default_rng(seed)
    kv = KV_HEADS * HEAD_DIM
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (VOCAB, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (HIDDEN,),
            p + "self_attn.q_proj.weight": (HIDDEN, HIDDEN),
            p + "self_attn.k_proj.weight": (kv, HIDDEN),
            p + "self_attn.v_proj.weight": (kv, HIDDEN),
            p + "self_attn.o_proj.weight": (HIDDEN, HIDDEN),
            p + "post_attention_layernorm.weight": (HIDDEN,),
            p + "mlp.gate_proj.weight": (FF, HIDDEN),
            p + "mlp.up_proj.weight": (FF, HIDDEN),
            p + "mlp.down_proj.weight": (HIDDEN, FF),
        })
    shapes["model.norm.weight"] = (HIDDEN,)
    shapes["lm_head.weight"] = (VOCAB, HIDDEN)
    out = {}
    for name, shape in shapes.items():
        scale = 0.02 * (1 + zlib.crc32(name.encode()) % 7 / 7)
        base = 1.0 if name.endswith("norm.weight") else 0.0
        out[name] = (rng.standard_normal(shape) * scale + base).astype(np.float32)
    return out


def tokens() -> list[str]:
    return ["<s>", "</s>", "<unk>"] + [f"tok{i}" for i in range(VOCAB - 3)]


def base_tokenizer() -> dict[str, Any]:
    return {"version": "1.0", "added_tokens": [{"id": 0, "content": "<s>", "special": True}],
            "model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(tokens())},
                      "merges": ["t o", "to k"]}}


def safetensors_parts(tensors: dict[str, np.ndarray]) -> tuple[dict[str, Any], bytes]:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    body = bytearray()
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    return header, bytes(body)


def safetensors_bytes(header: Any, body: bytes, declared: int | None = None,
                      header_text: bytes | None = None) -> bytes:
    text = header_text if header_text is not None else dumps(header).encode()
    n = len(text) if declared is None else declared
    return struct.pack("<Q", n % 2**64) + text + body


def write_model_dir(folder: Path, *, config: bytes | None = None, tokenizer: bytes | None = None,
                    weights: bytes | None = None, extra: dict[str, bytes] | None = None) -> Path:
    """A checkpoint directory: the base model's files unless replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    if weights is None:
        weights = safetensors_bytes(*safetensors_parts(base_tensors()))
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "config.json").write_bytes(config if config is not None
                                          else dumps(base_config()).encode())
    (folder / "tokenizer.json").write_bytes(tokenizer if tokenizer is not None
                                             else dumps(base_tokenizer()).encode())
    for name, data in (extra or {}).items():
        (folder / name).write_bytes(data)
    return folder


# -- JSON with hostile values -------------------------------------------------------------
@dataclass(frozen=True)
class Raw:
    """JSON text spliced in verbatim by :func:`dumps` (deep nesting, NaN, bad tokens)."""

    text: str


_RAW_PREFIX = "\u0000raw:"


def dumps(obj: Any) -> str:
    """``json.dumps`` that splices :class:`Raw` values in as text."""
    raws: list[str] = []

    def enc(o: Any) -> Any:
        if isinstance(o, Raw):
            raws.append(o.text)
            return f"{_RAW_PREFIX}{len(raws) - 1}"
        if isinstance(o, dict):
            return {str(k): enc(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [enc(v) for v in o]
        return o

    text = json.dumps(enc(obj), allow_nan=True)
    if not raws:
        return text
    # One pass over the text (a replace per Raw was quadratic: a vocabulary repeated 1000
    # times with hostile values took minutes to write).
    marker = re.compile(re.escape(json.dumps(_RAW_PREFIX)[:-1]) + r"(\d+)\"")
    return marker.sub(lambda m: raws[int(m.group(1))], text)


def deep(rnd: random.Random) -> Raw:
    n = rnd.choice([65, 100, 1000, 5000, 100_000])
    opener, closer = rnd.choice([("[", "]"), ('{"a":', "}")])
    return Raw(opener * n + "0" + closer * n)


def hostile_value(rnd: random.Random) -> Any:
    """One value a careless reader would choke on."""
    pick = rnd.randrange(22)
    return [
        None, True, -1, 0, 2**31, 2**40, 2**63, 2**64 + 7, -(2**63) - 1,
        1e308, Raw("NaN"), Raw("Infinity"), Raw("-1e999"), 0.5,
        "", "x" * rnd.choice([10, 5000, 300_000]), "\ud800\udfff\u202e",
        [], {}, [0] * rnd.choice([3, 1000, 100_000]),
        deep(rnd), {"a": [{"b": None}]},
    ][pick]


def _paths(obj: Any, prefix: tuple[Any, ...] = (), out: list[tuple[Any, ...]] | None = None,
           limit: int = 4000) -> list[tuple[Any, ...]]:
    """Paths to nodes of ``obj`` (bounded: big lists are sampled at a few positions)."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    out.append(prefix)
    if isinstance(obj, dict):
        for k, v in obj.items():
            _paths(v, (*prefix, k), out, limit)
    elif isinstance(obj, list):
        idx = range(len(obj)) if len(obj) <= 8 else (0, 1, len(obj) // 2, len(obj) - 1)
        for i in idx:
            _paths(obj[i], (*prefix, i), out, limit)
    return out


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def mutate_tree(obj: Any, rnd: random.Random, n: int | None = None) -> Any:
    """Apply ``n`` (1-4) structural mutations to a deep copy of a JSON-like tree."""
    obj = copy.deepcopy(obj)
    for _ in range(n if n is not None else rnd.randint(1, 4)):
        paths = _paths(obj)
        path = rnd.choice(paths)
        node = _get(obj, path)
        op = rnd.randrange(8)
        if not path:                          # the root itself
            if op < 2:
                obj = hostile_value(rnd)
            elif isinstance(obj, dict):
                obj[rnd.choice(["format", "__metadata__", "zzz", "model", ""])] = \
                    hostile_value(rnd)
            continue
        parent, key = _get(obj, path[:-1]), path[-1]
        if op <= 3:
            parent[key] = hostile_value(rnd)
        elif op == 4 and isinstance(parent, dict):
            del parent[key]
        elif op == 4 and isinstance(parent, list):
            parent.pop(key)
        elif op == 5:                         # numbers pushed to extremes
            if isinstance(node, (int, float)) and not isinstance(node, bool):
                parent[key] = rnd.choice([node * 2**30, -node - 1, node + 1, 0, node * 1e300,
                                          int(node) * 4096 + 1])
            elif isinstance(node, str):
                longer = node * 1000 if len(node) <= 1000 else node + "x"
                parent[key] = rnd.choice([longer, node[:-1], node + "\u0000", node.upper()])
            else:
                parent[key] = hostile_value(rnd)
        elif op == 6:                         # the wrong container
            parent[key] = rnd.choice([[node], {"value": node}, str(node)[:100], None])
        elif isinstance(node, list) and node:  # lengths that no longer agree
            grow = len(node) <= 100 and rnd.random() < 0.5
            parent[key] = node * rnd.choice([2, 100]) if grow else node[:-1]
        elif isinstance(node, dict) and node:
            k2 = rnd.choice(list(node))
            node[k2 + rnd.choice(["", "_", "x"])] = node[k2]
        else:
            parent[key] = hostile_value(rnd)
    return obj


def mutate_bytes(data: bytes, rnd: random.Random) -> bytes:
    """Byte-level damage: truncation, flips, inserted or repeated spans."""
    b = bytearray(data)
    for _ in range(rnd.randint(1, 3)):
        if not b:
            b += bytes(rnd.randrange(256) for _ in range(8))
            continue
        op = rnd.randrange(6)
        pos = rnd.randrange(len(b))
        if op == 0:
            del b[pos:]
        elif op == 1:
            for _ in range(rnd.randint(1, 8)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif op == 2:
            b[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
        elif op == 3:
            span = b[pos:pos + rnd.randint(1, 64)]
            b[pos:pos] = span * rnd.randint(2, 200)
        elif op == 4:
            b[pos:pos] = rnd.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b'"', b"\\",
                                     b"[", b"{", b"}", b"]", b",", b":"])
        else:
            b[pos:pos + 8] = struct.pack("<Q", rnd.choice([0, 2**32 - 1, 2**40, 2**63,
                                                            2**64 - 1, 7]))
    return bytes(b)


def json_bytes(obj: Any, rnd: random.Random) -> bytes:
    """A mutated tree, serialised, sometimes with a repeated key or byte damage on top."""
    text = dumps(mutate_tree(obj, rnd)).encode("utf-8", "surrogatepass")[:MAX_CASE_BYTES]
    roll = rnd.random()
    if roll < 0.1 and text.startswith(b"{") and len(text) > 2:
        text = b'{"format": 1, "format": 2, ' + text[1:]      # duplicate keys
    elif roll < 0.35:
        text = mutate_bytes(text, rnd)
    return text


# -- safetensors ------------------------------------------------------------------------------
def _safetensors(rnd: random.Random, folder: Path) -> list[str]:
    header, body = safetensors_parts(base_tensors())
    declared = None
    header_text = None
    roll = rnd.random()
    if roll < 0.55:
        header = mutate_tree(header, rnd)
    elif roll < 0.65:
        declared = rnd.choice([0, 1, 7, 2**27, 2**40, 2**64 - 1, len(dumps(header)) + 1])
    elif roll < 0.75:
        name = rnd.choice([k for k in header if k != "__metadata__"])
        header[name]["shape"] = rnd.choice([[2**40, 2**40], [2**62], [-1, 16], [0],
                                           [1] * 9, [2**31, 2**31, 2**31]])
    elif roll < 0.8:
        header = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
                  for i in range(rnd.choice([10, 50_000]))}
    if rnd.random() < 0.3:
        body = mutate_bytes(body, rnd)
    if rnd.random() < 0.15:                   # NaN/Inf in the weights
        arr = bytearray(body)
        for _ in range(rnd.randint(1, 4)):
            pos = rnd.randrange(max(len(arr) - 4, 1)) & ~3
            arr[pos:pos + 4] = rnd.choice([b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f"])
        body = bytes(arr)
    if rnd.random() < 0.2:
        header_text = json_bytes(header, rnd)
    data = safetensors_bytes(header, body, declared, header_text)
    if rnd.random() < 0.2:
        data = mutate_bytes(data, rnd)
    if rnd.random() < 0.15:                   # sharded layout with a hostile index
        model = folder / "model"
        write_model_dir(model)
        (model / "model.safetensors").unlink()
        index = {"metadata": {"total_size": len(body)},
                 "weight_map": dict.fromkeys(base_tensors(), "model-00001-of-00001.safetensors")}
        (model / "model-00001-of-00001.safetensors").write_bytes(data)
        (model / "model.safetensors.index.json").write_bytes(json_bytes(index, rnd))
    else:
        model = write_model_dir(folder / "model", weights=data)
    return ["fingerprint", str(model)]


# -- config.json and the repository's text files ---------------------------------------------
_FRONT_MATTER = ["license: apache-2.0", "base_model: org/base", "tags: [a, b]"]


def _yaml_bomb(rnd: random.Random) -> str:
    """A "billion laughs" YAML body, or YAML nested very deep."""
    if rnd.random() < 0.6:
        lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for i in range(1, rnd.choice([5, 9, 12])):
            lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
        return "\n".join(lines)
    n = rnd.choice([100, 1000, 20_000])
    return "x: " + "[" * n + "]" * n if rnd.random() < 0.5 else "\n".join(
        "  " * i + "k:" for i in range(min(n, 3000)))


def _config(rnd: random.Random, folder: Path) -> list[str]:
    extra: dict[str, bytes] = {}
    config = json_bytes(base_config(), rnd)
    roll = rnd.random()
    if roll < 0.2:
        # README front matter (model card YAML) and licence files are repository text too
        body = _yaml_bomb(rnd) if rnd.random() < 0.5 else "\n".join(_FRONT_MATTER)
        readme = f"---\n{body}\n---\n# model\nFine-tuned version of org/base.\n".encode()
        extra["README.md"] = mutate_bytes(readme, rnd) if rnd.random() < 0.3 else readme
        config = dumps(base_config()).encode()
    elif roll < 0.3:
        extra["LICENSE"] = mutate_bytes(b"Apache License\nVersion 2.0, January 2004\n" * 50,
                                        rnd)
    elif roll < 0.4:
        extra["generation_config.json"] = json_bytes({"bos_token_id": 0}, rnd)
        extra["adapter_config.json"] = json_bytes({"base_model_name_or_path": "org/base"},
                                                  rnd)
    model = write_model_dir(folder / "model", config=config, extra=extra)
    return ["fingerprint", str(model)]


# -- tokenizer files ------------------------------------------------------------------------
def _tokenizer(rnd: random.Random, folder: Path) -> list[str]:
    tok = base_tokenizer()
    roll = rnd.random()
    extra: dict[str, bytes] = {}
    if roll < 0.15:
        tok["model"]["vocab"] = {f"t{i}": rnd.choice([2**40, -5, 10**7, 9_999_999, i])
                                 for i in range(rnd.choice([3, 64]))}
        data = dumps(tok).encode()
    elif roll < 0.25:
        tok["model"] = {"type": "Unigram",
                        # distinct pairs: repeating one list shares its rows, and a
                        # mutation of one shared row then grew all of them (10^8 nodes)
                        "vocab": [[t, -1.0] for t in tokens() * rnd.choice([1, 1000])]}
        data = json_bytes(tok, rnd)
    elif roll < 0.35:
        tok["added_tokens"] = [{"id": rnd.choice([2**40, -1, 10**7 - 1, 3]),
                                "content": hostile_value(rnd)} for _ in range(3)]
        data = dumps(tok).encode()
    else:
        data = json_bytes(tok, rnd)
    if rnd.random() < 0.2:
        extra["tokenizer_config.json"] = json_bytes({"model_max_length": 2048,
                                                     "chat_template": "{{ x }}"}, rnd)
    if rnd.random() < 0.15:
        vocab = "\n".join(tokens()).encode()
        extra["vocab.txt"] = mutate_bytes(vocab * rnd.choice([1, 1000]), rnd)
        if rnd.random() < 0.5:
            data = b""                        # only vocab.txt is read then
    model = write_model_dir(folder / "model", tokenizer=data, extra=extra)
    if not data:
        (model / "tokenizer.json").unlink()
    return ["fingerprint", str(model)]


# -- GGUF -------------------------------------------------------------------------------------
_GGUF_STRING, _GGUF_ARRAY, _GGUF_U32, _GGUF_F32 = 8, 9, 4, 6


def _gguf_str(text: str | bytes, declared: int | None = None) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", (len(raw) if declared is None else declared) % 2**64) + raw


def gguf_parts() -> tuple[list[list[Any]], list[list[Any]], list[bytes]]:
    """The base GGUF as editable lists: key/values [key, type, value], tensor infos
    [name, dims (GGUF order), ggml type, data], and its token list."""
    kv: list[list[Any]] = [
        ["general.architecture", _GGUF_STRING, "llama"],
        ["general.name", _GGUF_STRING, "fuzz"],
        ["llama.block_count", _GGUF_U32, LAYERS],
        ["llama.embedding_length", _GGUF_U32, HIDDEN],
        ["llama.feed_forward_length", _GGUF_U32, FF],
        ["llama.attention.head_count", _GGUF_U32, HEADS],
        ["llama.attention.head_count_kv", _GGUF_U32, KV_HEADS],
        ["llama.context_length", _GGUF_U32, 256],
        ["llama.attention.layer_norm_rms_epsilon", _GGUF_F32, 1e-6],
        ["tokenizer.ggml.model", _GGUF_STRING, "llama"],
        ["tokenizer.ggml.tokens", _GGUF_ARRAY, (_GGUF_STRING, tokens())],
        ["tokenizer.ggml.scores", _GGUF_ARRAY, (_GGUF_F32, [0.0] * VOCAB)],
    ]
    gg = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight":
          "output_norm.weight", "lm_head.weight": "output.weight"}
    sub = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q",
           "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
           "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    infos: list[list[Any]] = []
    for name, arr in base_tensors().items():
        if name not in gg:
            layer, rest = name.split(".", 3)[2], name.split(".", 3)[3]
            gname = f"blk.{layer}.{sub[rest.rsplit('.', 1)[0]]}.weight"
        else:
            gname = gg[name]
        infos.append([gname, list(reversed(arr.shape)), 0, arr.astype("<f4").tobytes()])
    return kv, infos, []


def _gguf_value(vtype: int, value: Any) -> bytes:
    fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
           10: "<Q", 11: "<q", 12: "<d"}
    if vtype == _GGUF_STRING:
        return _gguf_str(value) if not isinstance(value, tuple) else _gguf_str(*value)
    if vtype == _GGUF_ARRAY:
        itype, items, *count = value
        n = count[0] if count else len(items)
        return struct.pack("<IQ", itype % 2**32, n % 2**64) + b"".join(
            _gguf_value(itype, v) for v in items)
    if vtype in fmt:
        try:
            return struct.pack(fmt[vtype], value)
        except (struct.error, TypeError):
            return struct.pack("<Q", 2**64 - 1)
    return b""


def gguf_bytes(kv: list[list[Any]], infos: list[list[Any]], *, version: int = 3,
               counts: tuple[int, int] | None = None, align: int = 32) -> bytes:
    out = bytearray(b"GGUF" + struct.pack("<I", version))
    n_t, n_kv = counts if counts is not None else (len(infos), len(kv))
    out += struct.pack("<QQ", n_t % 2**64, n_kv % 2**64)
    for key, vtype, value in kv:
        out += _gguf_str(key) + struct.pack("<I", vtype % 2**32) + _gguf_value(vtype, value)
    offset = 0
    data = bytearray()
    for name, dims, qtype, raw in infos:
        out += _gguf_str(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d % 2**64) for d in dims)
        out += struct.pack("<IQ", qtype % 2**32, offset)
        pad = -len(raw) % align
        data += raw + b"\0" * pad
        offset += len(raw) + pad
    out += b"\0" * (-len(out) % align)
    return bytes(out + data)


def _gguf(rnd: random.Random, folder: Path) -> list[str]:
    kv, infos, _ = gguf_parts()
    counts = None
    version = 3
    for _ in range(rnd.randint(1, 3)):
        roll = rnd.random()
        if roll < 0.2:                         # a string whose declared length lies
            i = rnd.randrange(len(kv))
            if kv[i][1] == _GGUF_STRING and isinstance(kv[i][2], str):
                kv[i][2] = (kv[i][2], rnd.choice([2**40, 2**63, 2**64 - 1, 10**9]))
            else:
                kv[i] = [kv[i][0], _GGUF_STRING, ("x" * rnd.choice([1, 3_000_000]), None)]
        elif roll < 0.35:                      # array counts that lie or are huge
            i = rnd.randrange(len(kv))
            itype = rnd.choice([_GGUF_STRING, _GGUF_U32, 10, _GGUF_ARRAY, 99])
            n = rnd.choice([2**40, 2**62, 10**7, 3])
            items = ["a", "b", "c"] if itype == _GGUF_STRING else [1, 2, 3]
            kv[i] = [kv[i][0], _GGUF_ARRAY, (itype, items if itype != _GGUF_ARRAY else [], n)]
        elif roll < 0.45:
            counts = (rnd.choice([0, 1, 2**40, 2**64 - 1, len(infos) + 1]),
                      rnd.choice([0, 2**40, 2**64 - 1, len(kv) + 1, len(kv)]))
        elif roll < 0.6:                       # tensor dims / types / data that disagree
            t = rnd.choice(infos)
            part = rnd.randrange(3)
            if part == 0:
                t[1] = rnd.choice([[2**40, 2**40], [2**63], [0], [16] * 5, [3, 16], [16, 0],
                                   [2**32, 2**32, 2**32, 2**32]])
            elif part == 1:
                t[2] = rnd.choice([2, 12, 14, 30, 99, 2**31])
            else:
                t[3] = t[3][: rnd.randrange(len(t[3]) + 1)]
        elif roll < 0.7:                       # metadata values of the wrong kind
            i = rnd.randrange(len(kv))
            kv[i][1:] = rnd.choice([[_GGUF_U32, 2**32 - 1], [_GGUF_STRING, ""],
                                    [12, 1e308], [99, 0], [_GGUF_ARRAY, (_GGUF_U32, [])],
                                    [_GGUF_ARRAY, (_GGUF_U32, [0] * 100_000)]])
        elif roll < 0.78:
            kv.append(rnd.choice(kv)[:])        # a duplicate key
        elif roll < 0.86:
            version = rnd.choice([1, 2, 4, 2**24, 0])
        elif roll < 0.93:
            kv.append(["general.alignment", _GGUF_U32, rnd.choice([0, 3, 2**31, 1])])
        else:
            # the architecture name (as a string: an earlier edit may have retyped kv[0])
            kv[0][1:] = [_GGUF_STRING, rnd.choice(["", "gpt2", "unknown-arch", "llama" * 1000,
                                                   "qwen2moe"])]
    data = gguf_bytes(kv, infos, version=version, counts=counts)
    if rnd.random() < 0.3:
        data = mutate_bytes(data, rnd)
    path = folder / "model.gguf"
    path.write_bytes(data)
    return ["fingerprint", str(path)]


# -- fingerprint files --------------------------------------------------------------------------
_FP_BASE: dict[str, Any] = {}


def base_fingerprint(folder: Path) -> dict[str, Any]:
    """The base model's fingerprint JSON (computed once per process, through the real
    ``Fingerprint`` writer)."""
    if not _FP_BASE:
        from modelprint.models import load_model

        view = load_model(str(write_model_dir(folder / "fp-base")), use_cache=False,
                          progress=None)
        _FP_BASE.update(view.fingerprint.to_json())
    return json.loads(json.dumps(_FP_BASE))


def _sketch_attack(fp: dict[str, Any], rnd: random.Random) -> None:
    """Sketches that lie about their size: the crashes issue 16 found."""
    sk = fp.setdefault("sketches", {})
    kinds = [k for k in sk if k != "version" and isinstance(sk[k], dict)]
    if not kinds:
        return
    section = sk[rnd.choice(kinds)]
    entries = [section] if "values" in section else list(section.values())
    if not entries:
        return
    e = rnd.choice(entries)
    what = rnd.randrange(5)
    if what == 0 and "shape" in e:
        e["shape"] = rnd.choice([[64, 100_000], [2**40, 2**40], [0, 0], [1]])
    elif what == 1 and "dims" in e:
        e["dims"] = rnd.choice([[64, 100_000], [2**40], [-1, 4], [4, 4, 4, 4, 4]])
    elif what == 2:
        e["values"] = base64.b64encode(b"\0" * rnd.choice([0, 2, 8192, 200_000])).decode()
    elif what == 3 and "rows" in e:
        e["rows"] = rnd.choice([list(range(100_000)), [5, 3, 1], [-1], ["a"], [2**40]])
    else:
        e["values"] = base64.b64encode(np.full(len(base64.b64decode(e.get("values", "")
                                                                     or "")) // 2,
                                               np.nan, dtype="<f2").tobytes()).decode()


def _fingerprint(rnd: random.Random, folder: Path) -> list[str]:
    fp = base_fingerprint(folder.parent)
    roll = rnd.random()
    if roll < 0.3:
        _sketch_attack(fp, rnd)
        data = dumps(fp).encode()
    elif roll < 0.4:
        arch = fp["architecture"]
        arch[rnd.choice(list(arch))] = rnd.choice([2**40, 0, -1, 100_000, 4096, "12", None])
        data = dumps(fp).encode()
    else:
        data = json_bytes(fp, rnd)
    folder.mkdir(parents=True, exist_ok=True)
    ref = folder / "reference.fp.json"
    ref.write_bytes(data)
    cand = folder / "candidate.fp.json"
    cand.write_text(dumps(base_fingerprint(folder.parent)))
    return ["compare", str(cand), str(ref)]


# -- audit YAML -----------------------------------------------------------------------------
_AUDIT_BASE = {"candidate": "./candidate.fp.json",
               "references": [{"model": "./reference.fp.json", "name": "ref"}],
               "expect": "independent",
               "checks": {"attention_std": {"threshold": 0.9}, "license": {}},
               "alpha": 0.01}


def _yaml_text(obj: Any) -> str:
    import yaml

    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True)


def audit_text(rnd: random.Random) -> bytes:
    roll = rnd.random()
    if roll < 0.2:
        text = _yaml_bomb(rnd) + "\ncandidate: ./candidate.fp.json\n"
    elif roll < 0.3:
        text = rnd.choice([
            "candidate: !!python/object/apply:os.system ['echo pwned']\n",
            "candidate: !!python/name:os.system\n",
            "!!binary AAAA\n",
            "candidate: &c ./candidate.fp.json\nreferences: [{model: *c}]\n",
            "base: &b {model: ./reference.fp.json}\nreferences: [{<<: *b}]\n",
            "candidate: ./candidate.fp.json\n---\ncandidate: x\n",
            "candidate: ./candidate.fp.json\ncandidate: ./reference.fp.json\n",
            "? [a, b]\n: c\n", "\tcandidate: x\n", "%YAML 9.9\n---\na: 1\n",
            "candidate: " + "x" * rnd.choice([100, 3_000_000]) + "\n",
            "alpha: 1e-3\nthreshold: .inf\n", "candidate: 0x" + "f" * 5000 + "\n",
        ])
    else:
        tree = mutate_tree(_AUDIT_BASE, rnd)
        tree = _unraw(tree, rnd)
        text = _yaml_text(tree)
    data = text.encode("utf-8", "surrogatepass")
    if rnd.random() < 0.25:
        data = mutate_bytes(data, rnd)
    return data


def _unraw(obj: Any, rnd: random.Random) -> Any:
    """YAML has no Raw: deep JSON nesting becomes a deep flow sequence (JSON is YAML)."""
    if isinstance(obj, Raw):
        return obj.text if len(obj.text) < 200 else [[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]
    if isinstance(obj, dict):
        return {k: _unraw(v, rnd) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unraw(v, rnd) for v in obj]
    return obj


def _audit(rnd: random.Random, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    base = dumps(base_fingerprint(folder.parent))
    (folder / "candidate.fp.json").write_text(base)
    (folder / "reference.fp.json").write_text(base)
    path = folder / "x.audit.yaml"
    path.write_bytes(audit_text(rnd))
    return ["collect", str(path)]


GENERATORS: dict[str, Callable[[random.Random, Path], list[str]]] = {
    "safetensors": _safetensors, "gguf": _gguf, "config": _config, "tokenizer": _tokenizer,
    "audit": _audit, "fingerprint": _fingerprint,
}


def write_case(kind: str, rnd: random.Random, folder: Path) -> list[str]:
    """Write one hostile input of ``kind`` below ``folder``; the entry point's arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    return GENERATORS[kind](rnd, folder)


# -- the committed corpus: one hostile file placed in an otherwise valid input ---------------
def place(kind: str, filename: str, data: bytes, folder: Path) -> list[str]:
    """Write the valid surroundings of ``kind`` below ``folder`` with ``filename`` replaced
    by ``data``; the entry point's arguments (as :func:`write_case`)."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "gguf":
        path = folder / filename
        path.write_bytes(data)
        return ["fingerprint", str(path)]
    if kind in ("fingerprint", "audit"):
        base = dumps(base_fingerprint(folder.parent))
        (folder / "candidate.fp.json").write_text(base)
        (folder / "reference.fp.json").write_text(base)
        (folder / filename).write_bytes(data)
        if kind == "audit":
            return ["collect", str(folder / filename)]
        return ["compare", str(folder / "candidate.fp.json"), str(folder / filename)]
    model = write_model_dir(folder / "model")
    (model / filename).write_bytes(data)
    return ["fingerprint", str(model)]

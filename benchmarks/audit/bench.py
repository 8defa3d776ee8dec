"""Wall time of a full audit (fingerprints + every check + verdict), real pairs and scaling.

    .venv/bin/python benchmarks/audit/bench.py                  # real pairs + scaling sweep
    .venv/bin/python benchmarks/audit/bench.py --only real      # real pairs only
    .venv/bin/python benchmarks/audit/bench.py --only scaling --configs 512x8,512x16
    .venv/bin/python benchmarks/audit/bench.py --report         # rewrite RESULTS.md from JSON

Each measurement runs in a fresh subprocess doing what ``modelprint compare`` does
(:class:`modelprint.engine.Engine`, ``pair.to_json()``):

* **cold**: an empty private ``MODELPRINT_CACHE_DIR`` -- both models are fingerprinted
  (statistics, hashes, sketches), then every registered check runs and the verdict is decided;
* **warm**: the same cache again (a second ``compare`` of the pair): fingerprints load from the
  cache, the checks run again (checks are not cached across processes).

The weight files are read once beforehand so the page cache holds them: the numbers are
compute, not disk. Every number is stored with ``os.getloadavg()`` at its end -- the machine
(2 cores) is shared with other jobs, so wall time is what the process got, and the CPU time of
the process is recorded alongside.

Scaling: synthetic llama-style BF16 checkpoints (Gaussian weights, head dim 64, GQA 4:1,
intermediate ~8/3 d, a shared 32k-token vocabulary so the embedding alignment runs), written
tensor by tensor into ``--synth-dir`` (outside the repository; a few GB each for the largest).
Per configuration two pairs: a *derived* copy (base + 1 % Gaussian noise) and an *independent*
model (another seed). The results go to ``results.json``; ``RESULTS.md`` is generated from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GENERATED = REPO / "audits" / ".generated"
VOCAB = 32000
DEFAULT_CONFIGS = ("256x16", "512x16", "1024x16", "2048x16", "512x8", "512x32", "512x64",
                   "2048x32", "4096x8")


# --- one measurement (child process) --------------------------------------------------------

def measure(candidate: str, reference: str, cache: str) -> dict[str, Any]:
    """What ``modelprint compare candidate reference`` does, timed phase by phase."""
    os.environ["MODELPRINT_CACHE_DIR"] = cache
    t0, c0 = time.perf_counter(), time.process_time()
    from modelprint.checks import all_checks
    from modelprint.engine import Engine, Target

    all_checks()
    out: dict[str, Any] = {"imports_s": time.perf_counter() - t0}
    engine = Engine(offline=True)
    pair = engine.pair(Target(candidate), Target(reference))
    # as compare does: the reference is fingerprinted in a child process meanwhile (cold)
    t = time.perf_counter()
    engine.preload(pair.candidate, pair.reference)
    out["fingerprints_s"] = time.perf_counter() - t  # both models, side by side
    out["fingerprints_loadavg"] = os.getloadavg()[0]
    t = time.perf_counter()
    result = pair.to_json()
    out["checks_s"] = time.perf_counter() - t
    out["checks_loadavg"] = os.getloadavg()[0]
    out["check_s"] = {name: c.get("seconds") for name, c in result["checks"].items()}
    out["applicable"] = {name: bool(c.get("applicable")) for name, c in result["checks"].items()}
    out["verdict"] = result["verdict"]
    out["total_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["loadavg"] = list(os.getloadavg())
    return out


def _child(candidate: str, reference: str, cache: Path) -> dict[str, Any]:
    t = time.perf_counter()
    res = subprocess.run([sys.executable, __file__, "--child", candidate, reference, str(cache)],
                         capture_output=True, text=True, cwd=REPO)
    if res.returncode != 0:
        raise RuntimeError(f"child failed for {candidate} vs {reference}:\n{res.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_s"] = time.perf_counter() - t  # interpreter start + imports + everything
    return out


def _warm_page_cache(path: Path) -> int:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 24):
                total += len(chunk)
    return total


def bench_pair(label: str, candidate: Path, reference: Path, warm_repeats: int = 2
               ) -> dict[str, Any]:
    size = _warm_page_cache(candidate.resolve()) + _warm_page_cache(reference.resolve())
    cache = Path(tempfile.mkdtemp(prefix="mp-audit-bench-"))
    try:
        cold = _child(str(candidate), str(reference), cache)
        warm = [_child(str(candidate), str(reference), cache) for _ in range(warm_repeats)]
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    row = {"label": label, "candidate": str(candidate), "reference": str(reference),
           "file_bytes": size, "cold": cold, "warm": warm}
    best = min(warm, key=lambda w: w["process_s"])
    print(f"{label}: cold {cold['process_s']:.1f} s, warm {best['process_s']:.1f} s "
          f"(checks {best['checks_s']:.2f} s, load {best['loadavg'][0]:.1f}) {cold['verdict']}",
          file=sys.stderr)
    return row


# --- real pairs --------------------------------------------------------------------------------

def real_pairs() -> list[tuple[str, Path, Path]]:
    """Pairs of the real models (shared/MODELS.md) and copies derived from SmolLM2 (built by
    ``audits/conftest.py`` into ``audits/.generated``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("audits_conftest", REPO / "audits" /
                                                  "conftest.py")
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    conftest.prepare()
    smol = next((GENERATED / "smollm2").glob("*.gguf"))
    gemma = next((GENERATED / "gemma3").glob("*.gguf"))
    return [
        ("SmolLM2 fine-tune (bf16, +1 % noise) vs SmolLM2 GGUF", GENERATED / "smollm2-tuned",
         smol),
        ("SmolLM2 pruned 30 -> 24 layers vs SmolLM2 GGUF", GENERATED / "smollm2-pruned", smol),
        ("independent SmolLM2-shaped model vs SmolLM2 GGUF", GENERATED / "release", smol),
        ("Gemma 3 270M GGUF vs SmolLM2 GGUF", gemma, smol),
        ("all-MiniLM-L6-v2 vs SmolLM2 GGUF", GENERATED / "minilm", smol),
    ]


# --- synthetic checkpoints -----------------------------------------------------------------

def shape_of(width: int, depth: int) -> dict[str, int]:
    heads = max(1, width // 64)
    kv = max(1, heads // 4)
    ff = -(-(8 * width) // 3 // 64) * 64
    return {"hidden": width, "layers": depth, "heads": heads, "kv_heads": kv, "ff": ff}


def n_params(width: int, depth: int) -> int:
    s = shape_of(width, depth)
    hd, d = 64, s["hidden"]
    per_layer = (d * s["heads"] * hd * 2 + d * s["kv_heads"] * hd * 2 + 3 * d * s["ff"] + 2 * d)
    return depth * per_layer + 2 * VOCAB * d + d


def synth_model(target: Path, width: int, depth: int, seed: int, noise_seed: int | None = None,
                noise: float = 0.01) -> Path:
    """A llama-shaped BF16 checkpoint written tensor by tensor (never whole in memory).

    ``noise_seed`` set: the model of ``seed`` plus ``noise`` relative Gaussian noise (the same
    draws as the base, chunk by chunk), standing in for a light fine-tune."""
    import ml_dtypes

    if (target / "model.safetensors").exists():
        return target
    s = shape_of(width, depth)
    d, hd = s["hidden"], 64
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (VOCAB, d)}
    for i in range(depth):
        p = f"model.layers.{i}."
        shapes.update({
            p + "self_attn.q_proj.weight": (s["heads"] * hd, d),
            p + "self_attn.k_proj.weight": (s["kv_heads"] * hd, d),
            p + "self_attn.v_proj.weight": (s["kv_heads"] * hd, d),
            p + "self_attn.o_proj.weight": (d, s["heads"] * hd),
            p + "mlp.gate_proj.weight": (s["ff"], d),
            p + "mlp.up_proj.weight": (s["ff"], d),
            p + "mlp.down_proj.weight": (d, s["ff"]),
            p + "input_layernorm.weight": (d,),
            p + "post_attention_layernorm.weight": (d,),
        })
    shapes["model.norm.weight"] = (d,)
    shapes["lm_head.weight"] = (VOCAB, d)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape in shapes.items():
        nbytes = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + nbytes]}
        off += nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    rng = np.random.default_rng(seed)
    nrng = np.random.default_rng(noise_seed) if noise_seed is not None else None
    tmp_dir = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    with (tmp_dir / "model.safetensors").open("wb") as fh:
        fh.write(struct.pack("<Q", len(text)) + text)
        for shape in shapes.values():
            n = int(np.prod(shape))
            std = np.float32(0.1 if len(shape) == 1 else 1.0 / np.sqrt(shape[-1]))
            for start in range(0, n, 1 << 22):
                k = min(1 << 22, n - start)
                x = rng.standard_normal(k, dtype=np.float32) * std
                if nrng is not None:
                    x += nrng.standard_normal(k, dtype=np.float32) * (std * np.float32(noise))
                if len(shape) == 1:
                    x += np.float32(1.0)
                fh.write(x.astype(ml_dtypes.bfloat16).tobytes())
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
           "num_hidden_layers": depth, "hidden_size": d, "intermediate_size": s["ff"],
           "num_attention_heads": s["heads"], "num_key_value_heads": s["kv_heads"],
           "head_dim": hd, "vocab_size": VOCAB, "torch_dtype": "bfloat16",
           "rms_norm_eps": 1e-5, "tie_word_embeddings": False}
    (tmp_dir / "config.json").write_text(json.dumps(cfg, indent=1))
    vocab = {f"tok{i:05d}": i for i in range(VOCAB)}
    (tmp_dir / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {
        "type": "BPE", "vocab": vocab}}))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp_dir, target)
    return target


def scaling(configs: list[str], synth_dir: Path, keep: bool) -> list[dict[str, Any]]:
    rows = []
    for cfg in configs:
        width, depth = (int(x) for x in cfg.split("x"))
        base_dir = synth_dir / f"w{width}-l{depth}"
        t = time.perf_counter()
        base = synth_model(base_dir / "base", width, depth, seed=0)
        derived = synth_model(base_dir / "derived", width, depth, seed=0, noise_seed=1)
        indep = synth_model(base_dir / "independent", width, depth, seed=2)
        print(f"{cfg}: models ready in {time.perf_counter() - t:.0f} s "
              f"({n_params(width, depth) / 1e9:.2f} B parameters each)", file=sys.stderr)
        for kind, cand in (("derived", derived), ("independent", indep)):
            row = bench_pair(f"synthetic {cfg} {kind}", cand, base, warm_repeats=1)
            row.update(width=width, depth=depth, kind=kind, params=n_params(width, depth))
            rows.append(row)
        if not keep:
            shutil.rmtree(base_dir, ignore_errors=True)
    return rows


# --- results ----------------------------------------------------------------------------------

def _load(path: Path) -> dict[str, Any]:
    if path.is_file():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    return {}


def _machine() -> dict[str, Any]:
    return {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(), "loadavg": list(os.getloadavg()),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--only", choices=("real", "scaling"))
    ap.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                    help="WIDTHxDEPTH list for the scaling sweep")
    ap.add_argument("--synth-dir", type=Path, default=None,
                    help="where the synthetic checkpoints go (default: user cache)")
    ap.add_argument("--keep", action="store_true", help="keep the synthetic checkpoints")
    ap.add_argument("--report", action="store_true", help="only rewrite RESULTS.md")
    ap.add_argument("--json", type=Path, default=HERE / "results.json")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    data = _load(args.json)
    if not args.report:
        if args.only in (None, "real"):
            data["real"] = {"machine": _machine(),
                            "pairs": [bench_pair(*p) for p in real_pairs()]}
            args.json.write_text(json.dumps(data, indent=1) + "\n")
        if args.only in (None, "scaling"):
            from platformdirs import user_cache_dir

            synth_dir = args.synth_dir or Path(user_cache_dir("modelprint")) / "bench-audit"
            configs = [c for c in args.configs.split(",") if c]
            old = {(r["width"], r["depth"], r["kind"]): r
                   for r in data.get("scaling", {}).get("pairs", [])}
            for cfg in configs:  # saved after each configuration: a long sweep can stop
                for r in scaling([cfg], synth_dir, args.keep):
                    old[(r["width"], r["depth"], r["kind"])] = r
                data["scaling"] = {"machine": _machine(), "pairs": sorted(
                    old.values(), key=lambda r: (r["width"], r["depth"], r["kind"]))}
                args.json.write_text(json.dumps(data, indent=1) + "\n")
    from report import write_results  # type: ignore[import-not-found,unused-ignore]

    write_results(data, HERE / "RESULTS.md")
    print(f"wrote {HERE / 'RESULTS.md'}", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()

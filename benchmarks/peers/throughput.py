"""Fingerprint throughput, whole process, against the page-cache limit; and the 7B-class pair.

    PYTHONPATH=src:. .venv/bin/python -m benchmarks.peers.throughput [--big] [--repeats 3]

Throughput: ``modelprint fingerprint MODEL -o FILE`` in a fresh process with an empty
``MODELPRINT_CACHE_DIR`` (statistics from every value, a hash of every tensor, the sha256 of
every weight file, sketches), on a synthetic llama-shaped BF16 checkpoint and its float32
twin (the same values widened, written here tensor by tensor), and on SmolLM2 in F32 (real
weights). GB/s = stored tensor bytes / wall time of the whole process. Beside it, the
physical limit on this machine: reading the same file from the page cache with ``cat FILE >
/dev/null`` and with a numpy ``readinto`` loop (16 MB buffer), both after a warm-up read.

``--big``: the 7B-class pair, d = 4096, L = 32 (5.9 B parameters, 11.8 GB BF16 each),
synthetic (no 7B weights are available offline here): a base model and a derived copy (base +
1 % noise), built by the audit benchmark's ``synth_model``; both tools compare the pair
cold and warm as in ``run.py``. Needs ~24 GB of disk under ``cache/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchmarks.peers import build as B
from benchmarks.peers import run as R

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
SYNTH = CACHE / "synth"


def widen_to_f32(src: Path, dst: Path) -> Path:
    """The BF16 checkpoint ``src`` stored as float32 (values exactly equal), tensor by tensor."""
    if (dst / "model.safetensors").exists():
        return dst
    import ml_dtypes

    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    raw = (src / "model.safetensors").open("rb")
    n = int.from_bytes(raw.read(8), "little")
    header = json.loads(raw.read(n))
    base = 8 + n
    out_header: dict[str, Any] = {"__metadata__": header.pop("__metadata__", {})}
    off = 0
    for name, info in header.items():
        a, b = info["data_offsets"]
        size = (b - a) * 2
        out_header[name] = {"dtype": "F32", "shape": info["shape"],
                            "data_offsets": [off, off + size]}
        off += size
    text = json.dumps(out_header).encode()
    text += b" " * (-len(text) % 8)
    mm = np.memmap(src / "model.safetensors", dtype=np.uint8, mode="r")
    with (tmp / "model.safetensors").open("wb") as fh:
        fh.write(len(text).to_bytes(8, "little") + text)
        for info in header.values():
            a, b = info["data_offsets"]
            for s in range(a, b, 1 << 26):
                e = min(b, s + (1 << 26))
                chunk = np.asarray(mm[base + s: base + e]).view(ml_dtypes.bfloat16)
                fh.write(chunk.astype(np.float32).tobytes())
    cfg = json.loads((src / "config.json").read_text())
    cfg["torch_dtype"] = "float32"
    (tmp / "config.json").write_text(json.dumps(cfg, indent=1))
    shutil.copy(src / "tokenizer.json", tmp / "tokenizer.json")
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)
    return dst


def _weight_files(model: Path) -> list[Path]:
    return [model] if model.is_file() else sorted(model.glob("*.safetensors"))


def page_cache_limit(model: Path) -> tuple[float, float]:
    """GB/s reading the model's weight files from the page cache: ``cat`` and numpy."""
    files = _weight_files(model)
    total = sum(f.stat().st_size for f in files)
    R.warm_page_cache(model)
    cats, loops = [], []
    for _ in range(3):
        t = time.perf_counter()
        for f in files:
            subprocess.run(["sh", "-c", f"cat '{f}' > /dev/null"], check=True)
        cats.append(total / (time.perf_counter() - t) / 1e9)
        buf = bytearray(1 << 24)
        t = time.perf_counter()
        for f in files:
            with open(f, "rb", buffering=0) as fh:
                while fh.readinto(buf):
                    pass
        loops.append(total / (time.perf_counter() - t) / 1e9)
    return statistics.median(cats), statistics.median(loops)


def fingerprint_once(model: Path) -> dict[str, Any]:
    cache = Path(tempfile.mkdtemp(prefix="mp-tp-", dir=CACHE))
    try:
        out = cache / "out.fp.json"
        cmd = [sys.executable, "-c", "import sys; from modelprint.cli import main; "
               "sys.exit(main())", "fingerprint", str(model), "-o", str(out)]
        m = R.metered(cmd, R.env_for_modelprint(cache))
        if m["returncode"] != 0:
            raise RuntimeError(m["stderr"])
        doc = json.loads(out.read_text())
        m["stored_bytes"] = int(doc["metadata"]["stored_bytes"])
        m.pop("stdout", None)
        return m
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def throughput(models: list[tuple[str, Path, str]], repeats: int,
               log: Any) -> dict[str, Any]:
    rows = []
    for label, path, dtype in models:
        cat, loop = page_cache_limit(path)
        runs = [fingerprint_once(path) for _ in range(repeats)]
        wall = statistics.median(r["wall_s"] for r in runs)
        n = runs[0]["stored_bytes"]
        row = {"label": label, "path": str(path), "dtype": dtype, "bytes": n, "wall_s": wall,
               "gbps": n / wall / 1e9,
               "cpu_s": statistics.median(r["user_s"] + r["sys_s"] for r in runs),
               "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
               "loadavg": statistics.median(r["loadavg"][0] for r in runs),
               "cat_gbps": cat, "numpy_gbps": loop, "runs": runs}
        log(f"{label}: {row['gbps']:.2f} GB/s ({wall:.2f} s, load {row['loadavg']:.1f}); "
            f"page cache: cat {cat:.2f} GB/s, numpy {loop:.2f} GB/s")
        rows.append(row)
    return {"rows": rows, "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "note": "Cold fingerprint in a fresh process (empty cache: statistics, a hash of "
                    "every tensor, sha256 of every weight file, sketches), median of "
                    f"{repeats}; page-cache columns: the same files read from RAM."}


def big_pair(repeats: int, log: Any) -> dict[str, Any]:
    ab = R.audit_bench()
    t = time.perf_counter()
    base = ab.synth_model(SYNTH / "w4096-l32" / "base", 4096, 32, seed=0)
    derived = ab.synth_model(SYNTH / "w4096-l32" / "derived", 4096, 32, seed=0, noise_seed=1)
    log(f"7B-class models ready in {time.perf_counter() - t:.0f} s")
    exe = R.ensure_modeldna()
    row = R.bench_pair(exe, "synthetic d=4096 L=32 (5.9 B params, BF16): +1 % noise copy vs "
                       "base", derived, base, "derived", repeats, log)
    return {"pairs": [row],
            "note": "Synthetic (no 7B weights are available offline here): llama shapes "
                    "d = 4096, 32 layers, head dim 64, GQA 4:1, intermediate 10944, vocabulary "
                    "32000, Gaussian BF16 weights, 11.8 GB per model "
                    "(`benchmarks/audit/bench.py` synth_model). The two models (23.6 GB) do "
                    "not both fit in this machine's free page cache next to other jobs, so "
                    "cold and warm runs may include disk reads."}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big", action="store_true", help="also the 7B-class pair")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--json", type=Path, default=HERE / "results.json")
    a = ap.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    data: dict[str, Any] = json.loads(a.json.read_text()) if a.json.is_file() else {}
    R.compile_modelprint()
    if not a.skip_throughput:
        ab = R.audit_bench()
        bf16 = ab.synth_model(SYNTH / "w2048-l16" / "base", 2048, 16, seed=0)
        f32 = widen_to_f32(bf16, SYNTH / "w2048-l16" / "base-f32")
        B.build(log)
        data["throughput"] = throughput([
            ("synthetic llama d=2048 L=16, BF16", bf16, "BF16"),
            ("the same values stored as F32", f32, "F32"),
            ("SmolLM2-135M in F32 (real weights)", B.model_path("smol-hf-f32"), "F32"),
        ], a.repeats, log)
        data["throughput"]["loadavg_end"] = list(os.getloadavg())
        a.json.write_text(json.dumps(data, indent=1) + "\n")
    if a.big:
        data["big"] = big_pair(a.repeats, log)
        a.json.write_text(json.dumps(data, indent=1) + "\n")
    from benchmarks.peers.report import write_results

    write_results(data, HERE / "RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

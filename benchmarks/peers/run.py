"""modelprint against its closest peer, modeldna 0.1.0, on the same pairs in one run.

    PYTHONPATH=src:. .venv/bin/python -m benchmarks.peers.run [--repeats 3] [--pairs 0,3]
    PYTHONPATH=src:. .venv/bin/python -m benchmarks.peers.run --report   # RESULTS.md from JSON

Per pair and repetition, interleaved so both tools see the same machine load:

* **modeldna** ``compare SUSPECT CANDIDATE --json`` (its default "fast" mode, sampled slices;
  it keeps no fingerprint cache, so every run reads the models);
* **modelprint cold** ``compare CANDIDATE REFERENCE`` with ``MODELPRINT_CACHE_DIR`` pointing
  to a fresh, empty directory: no fingerprint and no file-digest memo, every statistic computed
  from every stored value (float64 std, a hash of every tensor, sha256 of every file);
* **modelprint warm** the same command again on that cache (both fingerprints cached).

Each command runs in its own metering process (:mod:`.meter`): wall time of the whole process
(interpreter start and imports included), CPU time and peak RSS of it and every process it
started, the load average at its end. The weight files are read once beforehand so the page
cache holds them (the numbers are compute, not disk). Medians over ``--repeats``.

modeldna runs in its own venv (``cache/modeldna-venv``, created here with
``pip install modeldna==0.1.0``; it needs numpy/gguf/typer/rich, not torch). Its verdict
classes map to lineage as: EXACT_COPY, QUANTIZED_COPY, FINE_TUNE, SAME_LINEAGE, LIKELY_MERGE ->
derived; NO_MATCH -> independent; SAME_FAMILY_UNRESOLVED (its abstention band) and
INSUFFICIENT -> inconclusive.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.peers import build as B

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = HERE / "cache"
SRC = REPO / "src" / "modelprint"
VENV = CACHE / "modeldna-venv"
MODELDNA = "modeldna==0.1.0"

DERIVED = {"EXACT_COPY", "QUANTIZED_COPY", "FINE_TUNE", "SAME_LINEAGE", "LIKELY_MERGE"}
INDEPENDENT = {"NO_MATCH"}


def modeldna_lineage(cls: str) -> str:
    """modeldna's verdict class as derived / independent / inconclusive."""
    if cls in DERIVED:
        return "derived"
    if cls in INDEPENDENT:
        return "independent"
    return "inconclusive"


def compile_modelprint() -> None:
    """Write modelprint's bytecode before timing it. An installed package has it (pip compiles
    at install time, as it did for modeldna), but this repository's editable install would
    compile every module at every start here, where PYTHONDONTWRITEBYTECODE=1 is set: about
    0.1-0.15 s per process that a user does not pay."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(SRC)], check=True)


def ensure_modeldna() -> Path:
    exe = VENV / "bin" / "modeldna"
    if not exe.exists():
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", MODELDNA], check=True)
    return exe


def env_for_modelprint(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{REPO / 'src'}:{REPO}"
    env["MODELPRINT_CACHE_DIR"] = str(cache)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def metered(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    res = subprocess.run([sys.executable, "-m", "benchmarks.peers.meter", *cmd],
                         capture_output=True, text=True, env=env, cwd=REPO)
    if res.returncode != 0:
        raise RuntimeError(f"meter failed: {res.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def run_modelprint(cand: Path, ref: Path, cache: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-c", "import sys; from modelprint.cli import main; "
           "sys.exit(main())", "compare", str(cand), str(ref), "--offline"]
    m = metered(cmd, env_for_modelprint(cache))
    verdict = "error"
    for line in m["stdout"].splitlines():
        if line.startswith("verdict: "):
            verdict = line.split()[1]
    if m["returncode"] not in (0, 1):
        raise RuntimeError(f"modelprint failed on {cand} vs {ref}: {m['stderr']}")
    m["verdict"] = verdict
    m["reason"] = m["stdout"].split("verdict: ", 1)[-1].strip()[:600]
    del m["stdout"]
    return m


def run_modeldna(exe: Path, cand: Path, ref: Path, home: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(HOME=str(home), MODELDNA_DB=str(home / "db"), HF_HUB_OFFLINE="1")
    m = metered([str(exe), "compare", str(cand), str(ref), "--json"], env)
    try:
        doc = json.loads(m["stdout"])
        cls = doc["verdict"]["verdict"]
        m["probability"] = doc["verdict"].get("probability")
        best = (doc["verdict"].get("candidates") or [{}])[0]
        m["ruled_out"] = best.get("ruled_out")
    except (ValueError, KeyError) as exc:
        cls = f"ERROR ({type(exc).__name__}: {m['stderr'][-300:]})"
    m["class"] = cls
    m["verdict"] = modeldna_lineage(cls)
    del m["stdout"]
    return m


def audit_bench() -> ModuleType:
    """``benchmarks/audit/bench.py`` (a script, not a package): its page-cache warm-up and its
    synthetic checkpoints."""
    spec = importlib.util.spec_from_file_location("audit_bench",
                                                  REPO / "benchmarks" / "audit" / "bench.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def warm_page_cache(path: Path) -> int:
    """Read every file of the model once (the numbers are then compute, not disk)."""
    return int(audit_bench()._warm_page_cache(path))


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tool, rows in runs.items():
        out[tool] = {"wall_s": _median(rows, "wall_s"),
                     "cpu_s": statistics.median(r["user_s"] + r["sys_s"] for r in rows),
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
                     "loadavg": statistics.median(r["loadavg"][0] for r in rows),
                     "verdict": rows[0]["verdict"],
                     "verdicts": sorted({r["verdict"] for r in rows})}
        if tool == "modeldna":
            out[tool]["class"] = rows[0]["class"]
    md = out["modeldna"]["wall_s"]
    out["ratio_cold"] = out["modelprint_cold"]["wall_s"] / md
    out["ratio_warm"] = out["modelprint_warm"]["wall_s"] / md
    return out


def bench_pair(exe: Path, label: str, cand: Path, ref: Path, truth: str, repeats: int,
               log: Any) -> dict[str, Any]:
    size = warm_page_cache(cand.resolve()) + warm_page_cache(ref.resolve())
    runs: dict[str, list[dict[str, Any]]] = {"modeldna": [], "modelprint_cold": [],
                                             "modelprint_warm": []}
    home = Path(tempfile.mkdtemp(prefix="modeldna-home-", dir=CACHE))
    try:
        for _ in range(repeats):
            runs["modeldna"].append(run_modeldna(exe, cand, ref, home))
            cache = Path(tempfile.mkdtemp(prefix="mp-cache-", dir=CACHE))
            try:
                runs["modelprint_cold"].append(run_modelprint(cand, ref, cache))
                runs["modelprint_warm"].append(run_modelprint(cand, ref, cache))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    row = {"label": label, "candidate": str(cand.relative_to(REPO) if cand.is_relative_to(REPO)
                                            else cand),
           "reference": str(ref.relative_to(REPO) if ref.is_relative_to(REPO) else ref),
           "truth": truth, "file_bytes": size, "runs": runs, "summary": summarise(runs)}
    s = row["summary"]
    log(f"{label}: modeldna {s['modeldna']['wall_s']:.1f} s ({s['modeldna']['class']}), "
        f"modelprint cold {s['modelprint_cold']['wall_s']:.1f} s "
        f"({s['modelprint_cold']['verdict']}), warm {s['modelprint_warm']['wall_s']:.1f} s; "
        f"ratios {s['ratio_cold']:.2f} / {s['ratio_warm']:.2f}; "
        f"load {s['modeldna']['loadavg']:.1f}")
    return row


def _commit() -> str:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=REPO)
    dirty = subprocess.run(["git", "status", "--short", "--", "src"], capture_output=True,
                           text=True, cwd=REPO).stdout.strip()
    return res.stdout.strip() + (" (src modified)" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pairs", help="comma-separated pair indices (default: all)")
    ap.add_argument("--report", action="store_true", help="only rewrite RESULTS.md")
    ap.add_argument("--json", type=Path, default=HERE / "results.json")
    a = ap.parse_args(argv)
    from benchmarks.peers.report import write_results

    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    data: dict[str, Any] = json.loads(a.json.read_text()) if a.json.is_file() else {}
    if not a.report:
        exe = ensure_modeldna()
        compile_modelprint()
        B.build(log)
        chosen = ([int(i) for i in a.pairs.split(",")] if a.pairs
                  else list(range(len(B.PAIRS))))
        old = {r["label"]: r for r in data.get("pairs", [])}
        data["machine"] = {"cores": os.cpu_count(), "python": sys.version.split()[0],
                           "loadavg_start": list(os.getloadavg()),
                           "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                           "commit": _commit(), "repeats": a.repeats}
        for i in chosen:
            label, cand, ref, truth = B.PAIRS[i]
            row = bench_pair(exe, label, B.model_path(cand), B.model_path(ref), truth,
                             a.repeats, log)
            row["index"] = i
            old[label] = row
            data["pairs"] = sorted(old.values(), key=lambda r: r.get("index", 99))
            data["machine"]["loadavg_end"] = list(os.getloadavg())
            a.json.write_text(json.dumps(data, indent=1) + "\n")
    write_results(data, HERE / "RESULTS.md")
    log(f"wrote {HERE / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

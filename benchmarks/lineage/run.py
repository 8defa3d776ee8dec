"""Score every check and the verdict on every labelled zoo pair:
``python -m benchmarks.lineage.run [--zoo DIR] [--small]``.

Three ways in, so the numbers are those a user gets:
  engine  ``modelprint.engine.Engine`` (what ``modelprint compare`` and the plugin call);
  audit   one generated ``*.audit.yaml`` per pair, run by pytest with the modelprint plugin;
  cli     ``modelprint compare --json`` on a deterministic sample of pairs (one process per
          pair is slow), checked for agreement with the engine.
Only pairs of the ``evaluation`` split are scored: the null panels the checks use are built
by ``build_nulls.py`` from the ``calibration`` split (disjoint models, see labels.py).
Writes ``results.json`` and ``RESULTS.md`` (see report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .report import write_results
from .zoo import DEFAULT_CACHE, HERE

Record = dict[str, Any]


def load_manifest(zoo: Path) -> dict[str, Any]:
    m = json.loads((zoo / "manifest.json").read_text())
    m["_root"] = zoo
    return m


def model_path(m: dict[str, Any], name: str) -> str:
    p = Path(m["models"][name]["path"])
    return str(p if p.is_absolute() else (m["_root"] / p).resolve())


def oriented(pair: dict[str, Any]) -> tuple[str, str]:
    """(candidate, reference): the descendant is the candidate of an ancestor pair."""
    if pair["relation"] == "ancestor":
        return pair["b"], pair["a"]
    if pair["relation"] == "descendant":
        return pair["a"], pair["b"]
    return pair["b"], pair["a"]


def select(m: dict[str, Any], split: str) -> list[dict[str, Any]]:
    return [p for p in m["pairs"] if p["split"] == split]


def _flat(pair: dict[str, Any], js: dict[str, Any] | None, seconds: float,
          error: str | None = None) -> Record:
    cand, ref = oriented(pair)
    rec: Record = {"a": pair["a"], "b": pair["b"], "candidate": cand, "reference": ref,
                   "label": pair["label"], "kind": pair["kind"], "seconds": round(seconds, 3),
                   "roots": list(pair.get("roots") or [pair.get("root")] * 2),
                   "checks": {}, "verdict": None, "verdict_reason": error}
    if js is None:
        return rec
    rec["verdict"] = js.get("verdict")
    rec["verdict_reason"] = js.get("verdict_reason")
    for name, c in (js.get("checks") or {}).items():
        rec["checks"][name] = {k: c.get(k) for k in (
            "strength", "applicable", "score", "threshold", "p_value",
            "indicates_derivation", "seconds", "error", "summary")}
    return rec


def run_engine(m: dict[str, Any], pairs: list[dict[str, Any]], log: Any,
               fp_dir: Path | None = None) -> list[Record]:
    """Every pair through one Engine (models loaded once, fingerprints cached). With
    ``fp_dir``, each reference is given as its ``*.fp.json`` fingerprint there instead of its
    weights (what a user does who has no copy of a 14B reference): the candidate keeps its
    weights, the reference only has the fingerprint's sketches."""
    from modelprint.engine import Engine, Target
    from modelprint.errors import ModelprintError

    engine = Engine(offline=True)
    out: list[Record] = []

    def ref_path(name: str) -> str:
        if fp_dir is None:
            return model_path(m, name)
        path = fp_dir / f"{name}.fp.json"
        if not path.exists():
            engine.model(Target(model_path(m, name), name=name)).fingerprint.save(path)
        return str(path)

    for i, pair in enumerate(pairs):
        cand, ref = oriented(pair)
        t0 = time.perf_counter()
        try:
            p = engine.pair(Target(model_path(m, cand), name=cand),
                            Target(ref_path(ref), name=ref), expect=pair["label"])
            js = p.to_json()
            out.append(_flat(pair, js, time.perf_counter() - t0))
        except ModelprintError as exc:
            out.append(_flat(pair, None, time.perf_counter() - t0, f"error: {exc}"))
        if (i + 1) % 25 == 0:
            log(f"  engine{' (fingerprint-only references)' if fp_dir else ''}: "
                f"{i + 1}/{len(pairs)} pairs")
    return out


def run_audit(m: dict[str, Any], pairs: list[dict[str, Any]], work: Path, jobs: int,
              log: Any) -> tuple[list[Record], dict[str, Any]]:
    """One ``*.audit.yaml`` per pair, run by pytest + the modelprint plugin."""
    d = work / "audits"
    d.mkdir(parents=True, exist_ok=True)
    for f in d.glob("*.audit.yaml"):
        f.unlink()
    files: dict[str, dict[str, Any]] = {}
    for i, pair in enumerate(pairs):
        cand, ref = oriented(pair)
        f = d / f"p{i:04d}.audit.yaml"
        f.write_text(f"candidate: {json.dumps(model_path(m, cand))}\n"
                     f"references:\n  - model: {json.dumps(model_path(m, ref))}\n"
                     f"    name: {ref}\n"
                     f"expect: {pair['label']}\n")
        files[f.name] = pair
    out_json = work / "audit.json"
    cmd = [sys.executable, "-m", "pytest", str(d), "-q", "-p", "no:cacheprovider",
           "--modelprint-json", str(out_json), "--modelprint-offline"]
    if jobs > 1:
        cmd += ["-n", str(jobs)]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(work))
    info = {"command": cmd, "returncode": proc.returncode,
            "seconds": round(time.time() - t0, 1), "tail": proc.stdout.strip().splitlines()[-3:]}
    log(f"  audit: pytest exit {proc.returncode} in {info['seconds']} s")
    if not out_json.exists():
        info["stderr"] = proc.stderr[-2000:]
        return [], info
    run = json.loads(out_json.read_text())
    recs = []
    for js in run["pairs"]:
        # the plugin writes the audit path relative to pytest's rootdir: match on the name
        src = files.get(Path(js.get("audit") or "-").name)
        if src is not None:
            recs.append(_flat(src, js, 0.0))
    return recs, info


def run_cli(m: dict[str, Any], pairs: list[dict[str, Any]], work: Path, n: int,
            log: Any) -> tuple[list[Record], dict[str, Any]]:
    """``modelprint compare --json`` on ``n`` pairs spread evenly over the list."""
    try:
        import modelprint.commands.compare  # noqa: F401
    except ImportError:
        return [], {"skipped": "modelprint compare is not available"}
    step = max(1, len(pairs) // max(1, n))
    sample = pairs[::step][:n]
    recs: list[Record] = []
    info: dict[str, Any] = {"pairs": len(sample), "failures": []}
    for pair in sample:
        cand, ref = oriented(pair)
        out = work / "cli.json"
        cmd = [sys.executable, "-m", "modelprint.cli", "compare", model_path(m, cand),
               model_path(m, ref), "--json", str(out), "--offline"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if not out.exists():
            info["failures"].append({"pair": [cand, ref], "returncode": proc.returncode,
                                     "stderr": proc.stderr[-500:]})
            continue
        js = json.loads(out.read_text())["pairs"][0]
        out.unlink()
        recs.append(_flat(pair, js, time.perf_counter() - t0))
    log(f"  cli: {len(recs)}/{len(sample)} pairs")
    return recs, info


def agreement(a: list[Record], b: list[Record]) -> dict[str, Any]:
    """Do two paths give the same verdicts and scores on the pairs both ran?"""
    idx = {(r["candidate"], r["reference"]): r for r in a}
    same = diff = 0
    examples = []
    for r in b:
        o = idx.get((r["candidate"], r["reference"]))
        if o is None:
            continue
        differs = [c for c, v in r["checks"].items()
                   if any(o["checks"].get(c, {}).get(k) != v.get(k)
                          for k in ("score", "p_value", "indicates_derivation"))]
        if o["verdict"] == r["verdict"] and not differs:
            same += 1
        else:
            diff += 1
            examples.append({"pair": [r["candidate"], r["reference"]],
                             "verdicts": [o["verdict"], r["verdict"]],
                             "checks": {c: [[o["checks"].get(c, {}).get(k), r["checks"][c].get(k)]
                                            for k in ("score", "p_value")] for c in differs}})
    return {"compared": same + diff, "identical": same, "different": diff,
            "examples": examples[:10]}


def check_profile(nulls: Path, profile: str) -> None:
    """Refuse panels built from another zoo profile (their models are not this zoo's
    calibration split, and their scale differs)."""
    if not nulls.exists():
        return
    doc = json.loads(nulls.read_text())
    # build_nulls writes each panel's source as "lineage zoo (<profile> profile): ..."
    found = {m.group(1) for by in doc.get("panels", {}).values() for e in by.values()
             if (m := re.match(r"lineage zoo \((\w+) profile\)", e.get("source", "")))}
    if found - {profile}:
        raise SystemExit(f"{nulls}: null panels from the {', '.join(sorted(found))} zoo "
                         f"profile; rebuild them with build_nulls for the {profile} profile")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path, help="directory of manifest.json "
                    "(default benchmarks/lineage/cache/full, or .../small with --small)")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE, help="where RESULTS.md/results.json go")
    ap.add_argument("--jobs", type=int, default=2, help="pytest-xdist workers for the audits")
    ap.add_argument("--cli-pairs", type=int, default=12)
    ap.add_argument("--no-audit", action="store_true")
    ap.add_argument("--no-fp-only", action="store_true",
                    help="skip the second engine pass with fingerprint-only references")
    ap.add_argument("--nulls", type=Path, help="null-panel file the checks use (default: "
                    "benchmarks/lineage/nulls.json from build_nulls.py if present, else the "
                    "package's shipped file)")
    a = ap.parse_args(argv)
    zoo = a.zoo or DEFAULT_CACHE / ("small" if a.small else "full")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    m = load_manifest(zoo)
    from .build_nulls import default_out

    nulls = a.nulls or (default_out(m["profile"]) if default_out(m["profile"]).exists()
                        else None)
    if nulls:
        check_profile(nulls, m["profile"])
        os.environ["MODELPRINT_NULLS"] = str(nulls.resolve())
    pairs = select(m, "evaluation")
    work = Path(tempfile.mkdtemp(prefix="run-", dir=zoo))
    os.environ.setdefault("MODELPRINT_CACHE_DIR", str(DEFAULT_CACHE / "mp-cache"))
    log(f"{len(pairs)} evaluation pairs from {zoo / 'manifest.json'}")
    t0 = time.time()
    engine = run_engine(m, pairs, log)
    t_engine = time.time() - t0
    fp_only: list[Record] = []
    t_fp = 0.0
    if not a.no_fp_only:
        (work / "fp").mkdir(exist_ok=True)
        t0 = time.time()
        fp_only = run_engine(m, pairs, log, fp_dir=work / "fp")
        t_fp = time.time() - t0
    audit, audit_info = ([], {"skipped": "--no-audit"}) if a.no_audit else run_audit(
        m, pairs, work, a.jobs, log)
    cli, cli_info = run_cli(m, pairs, work, a.cli_pairs, log)
    write_results(a.out, m, engine, fp_only=fp_only, info={
        "engine_seconds": round(t_engine, 1),
        "fingerprint_only": {"seconds": round(t_fp, 1), "pairs": len(fp_only)} if fp_only
        else {"skipped": "--no-fp-only"},
        "audit": {**audit_info, "agreement": agreement(engine, audit) if audit else None},
        "cli": {**cli_info, "agreement": agreement(engine, cli) if cli else None},
        "zoo": str(zoo), "work": str(work),
        "nulls": os.environ.get("MODELPRINT_NULLS", "shipped nulls.json"),
    })
    log(f"wrote {a.out / 'RESULTS.md'} and results.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

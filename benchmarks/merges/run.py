"""Decompose every benchmark merge and score it: ``python -m benchmarks.merges.run``.

Per case and path (full weights, fingerprint sketches only): the largest error of a true
parent's weight (per layer for gradient merges), whether the method is named right, the
weight and flag of the unrelated model offered beside the true parents, and the seconds.
Then a whole-process timing of ``modelprint decompose`` on a SmolLM2 merge with the
fingerprints cached (warm). Writes ``results.json`` and ``RESULTS.md`` beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .build import CACHE, build
from .report import write_results

HERE = Path(__file__).resolve().parent
FP_CACHE = CACHE / "fingerprints"


def truth_weights(truth: dict[str, Any]) -> list[float] | None:
    w = truth["weights"]
    if w == "gradient":
        return None
    if truth["method"] in ("linear", "ties"):
        s = sum(w)
        return [x / s for x in w]
    return list(w)


def score(d: Any, truth: dict[str, Any]) -> dict[str, Any]:
    n = len(truth["parents"])
    got = [p.weight.value for p in d.parents]
    tw = truth_weights(truth)
    if tw is not None:
        err = max(abs(a - b) for a, b in zip(got[:n], tw, strict=True))
    else:
        err = max(abs(d.per_layer[layer][i].value - truth["per_layer"][layer][i])
                  for layer in d.per_layer for i in range(n))
    u = d.parents[n]
    expected = truth["method"]
    if expected == "slerp" and truth.get("lerped_fraction", 0.0) > 0.99:
        # mergekit's slerp interpolated linearly: the parents' tensors are near-parallel
        expected = "linear"
    return {
        "expected_method": expected, "lerped_fraction": truth.get("lerped_fraction"),
        "median_angle_deg": d.evidence.get("slerp", {}).get("median_angle_deg"),
        "fitted": got, "sd": [p.weight.sd for p in d.parents], "truth": tw,
        "max_weight_error": err, "method": d.method, "method_right": d.method == expected,
        "parents_found": all(p.is_parent for p in d.parents[:n]),
        "unrelated_weight": u.weight.value, "unrelated_ci": [u.weight.lo, u.weight.hi],
        "unrelated_flagged": not u.is_parent, "unrelated_alone": u.alone,
        "density": None if d.density is None else d.density.value,
        "seconds": round(d.seconds, 3), "summary": d.summary,
    }


def run_family(family: str, log: Any) -> list[dict[str, Any]]:
    from modelprint.merges import decompose
    from modelprint.models import load_model

    man = build(family, log)
    models = man["models"]

    def view(p: str) -> Any:
        return load_model(p, weights=True)

    rows = []
    for name, case in man["cases"].items():
        truth = case["truth"]
        parents = [models[p] for p in truth["parents"]] + [models["U"]]
        names = [*truth["parents"], "U"]
        base = view(models["base"]) if truth.get("base") else None
        cand = view(case["path"])
        pv = [view(p) for p in parents]
        for path in ("weights", "sketches"):
            d = decompose(cand, pv, base, names=names, base_name="base", candidate_name=name,
                          use_weights=path == "weights")
            row = {"family": family, "case": name, "path": path, **score(d, truth)}
            rows.append(row)
            log(f"{family} {name} {path}: {row['method']} err {row['max_weight_error']:.3f} "
                f"U {row['unrelated_weight']:.3f} ({d.seconds:.1f} s)")
    return rows


def cli_timing(log: Any) -> dict[str, Any]:
    """Whole-process ``modelprint decompose`` on a SmolLM2 TIES merge (A, B, U offered and
    the base), three runs; the per-case pass before it has cached every fingerprint, so all
    three are warm."""
    man = json.loads((CACHE / "smol" / "manifest.json").read_text())
    m = man["models"]
    case = man["cases"]["ties_60_40_d50"]["path"]
    cmd = [sys.executable, "-m", "modelprint.cli", "decompose", case, m["A"], m["B"], m["U"],
           "--base", m["base"]]
    env = dict(os.environ, MODELPRINT_CACHE_DIR=str(FP_CACHE))
    out = {}
    for label in ("run1", "run2", "run3"):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        out[label] = round(time.perf_counter() - t, 2)
    log(f"cli timing: {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("zoo", "smol"), action="append")
    a = ap.parse_args(argv)
    os.environ.setdefault("MODELPRINT_CACHE_DIR", str(FP_CACHE))
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    rows: list[dict[str, Any]] = []
    for fam in a.only or ["zoo", "smol"]:
        rows += run_family(fam, log)
    timing = cli_timing(log) if "smol" in (a.only or ["zoo", "smol"]) else {}
    results = {"format": "modelprint.merge-benchmark/1", "rows": rows, "cli_seconds": timing}
    (HERE / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    write_results(results, HERE / "RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

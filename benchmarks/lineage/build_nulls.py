"""Write the calibration null panels from the zoo's *calibration* split:
``python -m benchmarks.lineage.build_nulls [--zoo DIR] [--out PATH]``.

Only independent pairs whose two roots are both calibration base models (labels.py) enter a
panel; those models are never scored by run.py, so no pair that calibrates a null is judged
against it. Panels are written in the format of ``modelprint.calibration.nulls`` (engineer D)
for every weak check (the ones without an exact null of their own) and every check whose
module reads panels, with the statistics the checks look up: ``score`` (``Evidence.score``)
and the detail statistics below when a check reports them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import inspect
import math
import os
import sys
from pathlib import Path
from typing import Any

from .run import load_manifest, model_path, oriented, select
from .zoo import DEFAULT_CACHE

#: Statistics checks report at the top level of ``Evidence.details`` and look up in panels.
DETAIL_STATS = ("r_detrended", "r_residual", "vector_centred_r")
REPO = Path(__file__).resolve().parents[2]
#: Written here, next to RESULTS.md (``nulls.json`` for the full zoo, ``nulls-<profile>.json``
#: otherwise, so a --small run never replaces the full panels); shipping one means copying it
#: to src/modelprint/calibration/nulls.json (the package default, owned by the checks).
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "nulls.json"


def default_out(profile: str) -> Path:
    return DEFAULT_OUT if profile == "full" else HERE / f"nulls-{profile}.json"
SHIPPED = REPO / "src" / "modelprint" / "calibration" / "nulls.json"


def panel_checks() -> list[str]:
    """Weak checks, and any check whose module calls ``null_scores``."""
    from modelprint.checks import _MODULES, all_checks

    out = []
    for name, check in all_checks().items():
        src = inspect.getsource(importlib.import_module(_MODULES[name]))
        if getattr(check, "strength", "") == "weak" or "null_scores" in src:
            out.append(name)
    return out


def collect(m: dict[str, Any], pairs: list[dict[str, Any]], checks: list[str],
            log: Any) -> dict[tuple[str, str], list[tuple[float, tuple[str, str]]]]:
    from modelprint.engine import Engine, Target

    engine = Engine(offline=True)
    values: dict[tuple[str, str], list[tuple[float, tuple[str, str]]]] = {}
    for pair in pairs:
        cand, ref = oriented(pair)
        p = engine.pair(Target(model_path(m, cand), name=cand),
                        Target(model_path(m, ref), name=ref),
                        checks={c: {} for c in checks}, expect="independent")
        for c in checks:
            ev = p.evidence(c)
            if not ev.applicable:
                continue
            stats = {"score": ev.score}
            for k in DETAIL_STATS:
                stats[k] = (ev.details or {}).get(k)
            for k, v in stats.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    values.setdefault((c, k), []).append((float(v), (cand, ref)))
    log(f"  {len(pairs)} calibration pairs, {len(values)} (check, statistic) panels")
    return values


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", type=Path)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"default {DEFAULT_OUT} (nulls-<profile>.json for other profiles); "
                    f"use --out {SHIPPED} to ship the panels")
    a = ap.parse_args(argv)
    zoo = a.zoo or DEFAULT_CACHE / ("small" if a.small else "full")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    # statistics must not depend on an existing panel: read none while collecting
    os.environ["MODELPRINT_NULLS"] = str(zoo / "no-nulls.json")
    os.environ.setdefault("MODELPRINT_CACHE_DIR", str(DEFAULT_CACHE / "mp-cache"))
    from modelprint.calibration.nulls import NullPanel, write_nulls

    m = load_manifest(zoo)
    pairs = [p for p in select(m, "calibration") if p["label"] == "independent"]
    if not pairs:
        raise SystemExit(f"{zoo}: no calibration pairs in this zoo profile")
    roots = sorted({r for p in pairs for r in p["roots"]})
    checks = panel_checks()
    values = collect(m, pairs, checks, log)
    steps = {n: e.get("losses", {}).get("steps") for n, e in m["models"].items() if n in roots}
    source = (f"lineage zoo ({m['profile']} profile): {len(roots)} independently initialised "
              f"and trained calibration models ({', '.join(roots)})")
    method = ("every pair of calibration models (different init seed and data order; same or "
              "different shape); trained from scratch on Python stdlib sources with the zoo's "
              f"byte-level BPE, steps {steps}; benchmarks/lineage/recipes.py. These models "
              "are never scored in benchmarks/lineage/RESULTS.md.")
    panels = [NullPanel(check=c, statistic=s, scores=tuple(v for v, _ in vals),
                        pairs=tuple(p for _, p in vals), source=source, method=method)
              for (c, s), vals in sorted(values.items())]
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    out = a.out or default_out(m["profile"])
    write_nulls(panels, out, created=created, generator="benchmarks/lineage/build_nulls.py",
                note=f"hold-out split: calibration roots {roots}; scored pairs never touch them")
    log(f"wrote {out}: " + ", ".join(f"{p.check}/{p.statistic} n={p.size}" for p in panels))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

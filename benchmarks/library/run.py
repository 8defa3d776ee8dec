"""The reference-library benchmark (issue 13): build throughput, prefilter recall, identify's
verdicts on the zoo as a library, identify's speed at 100 / 1,000 / 10,000 entries, and
bytes per entry. Results: ``results.json`` and ``RESULTS.md`` beside this file.

    python -m benchmarks.library.run [--work DIR] [--zoo DIR] [--steps build,recall,...]

Needs the lineage zoo (``benchmarks/lineage/cache/full/manifest.json``; read, never written).
Libraries and fingerprint caches go under ``--work`` (default ``cache/`` here, gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from benchmarks.lineage.labels import make_pairs

from modelprint.library import ModelLibrary
from modelprint.library.descriptors import probe, rank, score

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ZOO = ROOT / "benchmarks" / "lineage" / "cache" / "full"
NULLS = ROOT / "benchmarks" / "lineage" / "nulls.json"
SIZES = (100, 1000, 10000)


def zoo_models() -> dict[str, dict[str, Any]]:
    return json.loads((ZOO / "manifest.json").read_text())["models"]


def write_list(path: Path) -> Path:
    lines = []
    for name, m in zoo_models().items():
        p = m["path"] if os.path.isabs(m["path"]) else os.path.normpath(ZOO / m["path"])
        lines.append(f"{p} {name}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _env(work: Path, cache: str) -> dict[str, str]:
    return {**os.environ, "MODELPRINT_CACHE_DIR": str(work / cache),
            "MODELPRINT_NULLS": str(NULLS), "HF_HUB_OFFLINE": "1"}


def model_bytes(path: Path) -> int:
    """Bytes of weights a build reads for one model (safetensors / gguf files)."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.glob("*.safetensors"))


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def step_build(work: Path, out: dict[str, Any]) -> None:
    listing = write_list(work / "zoo.list")
    total = sum(model_bytes(Path(line.rsplit(" ", 1)[0]))
                for line in listing.read_text().splitlines())
    rows = []
    for workers in (1, 2):
        lib = work / f"build-{workers}"
        shutil.rmtree(lib, ignore_errors=True)
        shutil.rmtree(work / f"cache-build-{workers}", ignore_errors=True)
        before = load()
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "modelprint.cli", "library", "-L", str(lib), "build",
             str(listing), "--workers", str(workers), "--no-progress"],
            env=_env(work, f"cache-build-{workers}"), capture_output=True, text=True)
        seconds = time.perf_counter() - t
        with ModelLibrary(lib) as opened:
            n = opened.index.count()
            stored = sum(e.stored_bytes for e in opened.entries())
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
        rows.append({"workers": workers, "models": n, "seconds": round(seconds, 1),
                     "models_per_s": round(n / seconds, 3),
                     "weight_bytes_read": total, "gb_per_s": round(total / seconds / 1e9, 4),
                     "summary": summary, "stored_bytes": stored,
                     "returncode": proc.returncode, "load_before": before, "load_after": load()})
        print(rows[-1], flush=True)
    out["build"] = rows
    final = work / "zoo-lib"
    shutil.rmtree(final, ignore_errors=True)
    shutil.copytree(work / "build-2", final)


def _derived_library(lib: Path, source: Path, edit: Callable[[ModelLibrary], None]) -> Path:
    """``lib`` as a copy of ``source`` changed by ``edit``, built once: in a temporary copy
    renamed into place, so an interrupted build is redone rather than half used."""
    if (lib / "library.sqlite").exists():
        return lib
    tmp = lib.with_name(lib.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    with ModelLibrary(tmp) as opened:
        edit(opened)
    tmp.rename(lib)
    return lib


def _library_with_distractors(work: Path, n_total: int) -> Path:
    from benchmarks.library.distractors import add_distractors

    def edit(opened: ModelLibrary) -> None:
        vocabs = [list(opened.fingerprint(name).sketches["embedding"]["tokens"])
                  for name in ("llama-s.seed0", "real.smollm2")]
        add_distractors(opened, n_total - opened.index.count(), vocabs, seed=n_total)

    return _derived_library(work / f"lib-{n_total}", work / "zoo-lib", edit)


def _relatives(models: dict[str, Any]) -> dict[str, set[str]]:
    rel: dict[str, set[str]] = {n: set() for n in models}
    for p in make_pairs(models):
        if p["label"] == "derived":
            rel[p["a"]].add(p["b"])
            rel[p["b"]].add(p["a"])
    return rel


def step_recall(work: Path, out: dict[str, Any]) -> None:
    from benchmarks.library import disguises

    models = zoo_models()
    rel = _relatives(models)
    lib_path = _library_with_distractors(work, 10_000)
    with ModelLibrary(lib_path) as lib:
        screen = lib.screen()
        names = [e.name for e in screen.entries]
        index = {n: i for i, n in enumerate(names)}
        fps = {n: lib.fingerprint(n) for n in models}
    rows = []
    for cand in models:
        p = probe(fps[cand])
        assert p is not None
        scores, _ = score(p, screen.library)
        scores[index[cand]] = np.nan  # the candidate itself is not in its own library
        order = rank(scores)
        pos = {names[i]: r for r, i in enumerate(order)}
        unrelated_above = np.cumsum([names[i] not in rel[cand] and names[i] != cand
                                     for i in order])
        for other in sorted(rel[cand]):
            r = pos[other]
            rows.append({"candidate": cand, "entry": other,
                         "parent": other in models[cand]["parents"],
                         "rank": r + 1, "unrelated_above": int(unrelated_above[r]),
                         "score": float(scores[index[other]])})
    for r in rows:
        r["ancestor"] = r["entry"] in _ancestors(r["candidate"], models)
    hits = [r["unrelated_above"] < 10 for r in rows]
    parent_rows = [r for r in rows if r["parent"]]
    anc_rows = [r for r in rows if r["ancestor"]]
    out["recall"] = {
        "entries": len(names), "related_pairs": len(rows),
        "related_top10_among_unrelated": sum(hits),
        "recall_top10_among_unrelated": sum(hits) / len(rows),
        "parent_pairs": len(parent_rows),
        "parent_top10": sum(r["rank"] <= 10 for r in parent_rows),
        "parent_recall_top10_plain_rank": sum(r["rank"] <= 10 for r in parent_rows)
        / max(1, len(parent_rows)),
        "ancestor_pairs": len(anc_rows),
        "ancestor_top10": sum(r["rank"] <= 10 for r in anc_rows),
        "misses": [r for r in rows if r["unrelated_above"] >= 10
                   or (r["ancestor"] and r["rank"] > 10)],
        "worst": sorted(rows, key=lambda r: -r["unrelated_above"])[:5],
        "worst_parent_ranks": sorted(parent_rows, key=lambda r: -r["rank"])[:5],
        "worst_ancestor_ranks": sorted(anc_rows, key=lambda r: -r["rank"])[:5]}
    print(json.dumps(out["recall"], indent=1)[:1500], flush=True)
    out["disguise_recall"] = disguises.recall(fps, screen, names)
    print(json.dumps(out["disguise_recall"], indent=1)[:2500], flush=True)


def step_disguise(work: Path, out: dict[str, Any]) -> None:
    """Whole-model disguises of library entries, fingerprinted and ranked (disguises.py)."""
    from benchmarks.library import disguises

    with ModelLibrary(_library_with_distractors(work, 10_000)) as lib:
        screen = lib.screen()
    names = [e.name for e in screen.entries]
    out["disguise_recall_models"] = disguises.real_recall(
        work, zoo_models(), ZOO, screen, names, work / "cache-disguise")
    print({k: v for k, v in out["disguise_recall_models"].items() if k != "rows"}, flush=True)


def _family(name: str, models: dict[str, Any]) -> set[str]:
    """Every model of ``name``'s lineage (its root and all the root's descendants)."""
    root = name
    while models[root]["parents"]:
        root = models[root]["parents"][0]
    fam = {root}
    grew = True
    while grew:
        new = {n for n, m in models.items() if n not in fam and set(m["parents"]) & fam}
        fam |= new
        grew = bool(new)
    return fam


def _row(ident: Any, name: str, models: dict[str, Any], seconds: float) -> dict[str, Any]:
    found = {x.name: x for x in ident.matches if x.related}
    parents = models[name]["parents"]
    anc = _ancestors(name, models)
    merge = getattr(ident, "merge", None)
    return {
        "model": name, "parents": parents,
        "parents_found": [p for p in parents if p in found],
        "parents_called_child": [p for p in parents if p in found
                                 and found[p].relation == "child"],
        "counted_as_parent": [x.name for x in ident.parents],
        "counted_as_parent_not_ancestor": [x.name for x in ident.parents if x.name not in anc],
        "direction_parent": [x.name for x in ident.matches if x.related
                             and x.relation == "parent"],
        "direction_child": [x.name for x in ident.matches if x.related
                            and x.relation == "child"],
        "related_direction_unknown": [x.name for x in ident.matches
                                      if x.related and x.relation is None],
        "merge": merge.to_json() if merge is not None else None,
        "compared_on_weights": sum(x.basis == "weights" for x in ident.matches),
        "verdict": ident.verdict(), "seconds": round(seconds, 2)}


def step_verdicts(work: Path, out: dict[str, Any], weights: bool = False) -> None:
    """identify on the zoo as a library. Every derived model against the zoo without itself
    (are its parents found?); every root model against the zoo without its whole lineage
    (an independent model: is it given a parent?); and every root against the zoo without
    itself (its descendants are there: are they told apart from parents?). ``weights``:
    ``identify --weights`` (the zoo's folders are at hand), results under
    ``verdicts_weights``."""
    os.environ["MODELPRINT_NULLS"] = str(NULLS)
    os.environ["MODELPRINT_CACHE_DIR"] = str(work / "cache-build-2")
    from modelprint.library.identify import identify

    models = zoo_models()
    derived, independent, roots_with_family = [], [], []
    with ModelLibrary(work / "zoo-lib") as lib:
        entries = {e.name: e for e in lib.entries()}
        for name, m in models.items():
            runs = [("derived", [name])] if m["parents"] else [
                ("independent", sorted(_family(name, models)))]
            if not m["parents"] and len(_family(name, models)) > 1:
                runs.append(("root_with_family", [name]))
            for kind, exclude in runs:
                t = time.perf_counter()
                ident = identify(entries[name].reference, lib, exclude=exclude, top=10,
                                 weights=weights)
                row = _row(ident, name, models, time.perf_counter() - t)
                row["excluded"] = len(exclude)
                {"derived": derived, "independent": independent,
                 "root_with_family": roots_with_family}[kind].append(row)
                print(kind, row, flush=True)
    merges = [r for r in derived if len(r["parents"]) > 1]
    out["verdicts_weights" if weights else "verdicts"] = {
        "derived_models": len(derived),
        "derived_with_every_parent_found": sum(len(r["parents_found"]) == len(r["parents"])
                                               for r in derived),
        "derived_missing_a_parent": [r["model"] for r in derived
                                     if len(r["parents_found"]) < len(r["parents"])],
        "parents_wrongly_called_children": sum(len(r["parents_called_child"])
                                               for r in derived),
        "merges": len(merges),
        "merges_with_every_parent_weighted": sum(
            r["merge"] is not None and set(r["parents"]) <= {
                p["name"] for p in r["merge"]["parents"] if p["is_parent"]} for r in merges),
        "independent_models": len(independent),
        "independent_given_a_parent": [r["model"] for r in independent
                                       if r["counted_as_parent"]],
        "independent_verdicts": {v: sum(r["verdict"] == v for r in independent)
                                 for v in ("original", "inconclusive", "derived")},
        "roots_with_family_in_library": len(roots_with_family),
        "roots_descendants_found": sum(len(r["direction_child"])
                                       + len(r["related_direction_unknown"])
                                       + len(r["direction_parent"]) for r in roots_with_family),
        "roots_descendants_called_child": sum(len(r["direction_child"])
                                              for r in roots_with_family),
        "roots_descendant_direction_unknown": sum(len(r["related_direction_unknown"])
                                                  for r in roots_with_family),
        "roots_descendant_called_parent": sum(len(r["direction_parent"])
                                              for r in roots_with_family),
        "derived_rows": derived, "independent_rows": independent,
        "root_with_family_rows": roots_with_family}


def _ancestors(name: str, models: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    todo = list(models[name]["parents"])
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(models[p]["parents"])
    return out


#: identify's timing candidates: not in the timed libraries, their parents are
SPEED_CANDIDATES = {"llama-s.seed0.sft_a": "zoo llama-s fine-tune (d 128, 4 layers)",
                    "smollm2.sft": "SmolLM2-135M fine-tune (d 576, 30 layers)"}


def _speed_library(work: Path, n: int) -> Path:
    """lib-N without the timing candidates (so each is screened as a new release)."""
    def edit(opened: ModelLibrary) -> None:
        for name in SPEED_CANDIDATES:
            opened.remove(name)

    return _derived_library(work / f"speed-{n}", _library_with_distractors(work, n), edit)


def step_speed(work: Path, out: dict[str, Any]) -> None:
    """``modelprint identify`` as a whole process (interpreter start, imports, library open,
    candidate fingerprint from the warm cache, prefilter, checks on the top 10), warm: the
    first of four runs warms the page cache and is not counted."""
    rows = []
    with ModelLibrary(work / "zoo-lib") as lib:
        refs = {e.name: e.reference for e in lib.entries()}
    libs = {n: _speed_library(work, n) for n in SIZES}
    for n in SIZES:
        for cand, label in SPEED_CANDIDATES.items():
            times, loads = [], []
            for _ in range(4):
                loads.append(load())
                t = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-m", "modelprint.cli", "identify", refs[cand], "-L",
                     str(libs[n]), "--json", str(work / "id.json")],
                    env=_env(work, "cache-build-2"), capture_output=True, text=True)
                times.append(time.perf_counter() - t)
            doc = json.loads((work / "id.json").read_text())["library"][0]
            rows.append({"entries": doc["entries"], "library": n, "candidate": label,
                         "returncode": proc.returncode,
                         "seconds_median": round(statistics.median(times[1:]), 2),
                         "seconds_runs": [round(x, 2) for x in times[1:]],
                         "load_1min_before_runs": loads[1:], "load_after": load(),
                         "phases_last_run": doc["seconds"], "verdict": doc["verdict"],
                         "parents": [m["name"] for m in doc["matches"] if m["parent"]]})
            print(rows[-1], flush=True)
    out["speed"] = rows


def step_size(work: Path, out: dict[str, Any]) -> None:
    from benchmarks.library.disguises import synthetic_fingerprint

    lib_path = work / "size-lib"
    shutil.rmtree(lib_path, ignore_errors=True)
    rows = []
    with ModelLibrary(lib_path, create=True) as lib:
        for d in (576, 1024, 2048, 4096):
            for layers in (12, 24, 32):
                fp = synthetic_fingerprint(d, layers, seed=d * 100 + layers)
                added = lib.add(fp, name=f"d{d}-L{layers}")
                json_bytes = len(json.dumps(fp.to_json(), separators=(",", ":")))
                rows.append({"hidden": d, "layers": layers, "stored_bytes": added.stored_bytes,
                             "fp_json_bytes": json_bytes})
                print(rows[-1], flush=True)
    with ModelLibrary(work / "zoo-lib") as lib:
        real = [{"name": e.name, "hidden": e.hidden_size, "layers": e.num_layers,
                 "stored_bytes": e.stored_bytes}
                for e in lib.entries() if e.name.startswith(("real.", "llama-s.seed0",
                                                             "qwen2-m.seed0", "llama-w.seed0"))
                and "." not in e.name.split("seed0")[-1]]
    index_bytes = {}
    for n in SIZES:
        p = work / f"lib-{n}" / "library.sqlite"
        if p.exists():
            index_bytes[n] = p.stat().st_size
    out["size"] = {"synthetic": rows, "real": real, "index_bytes": index_bytes}


def step_libs(work: Path, out: dict[str, Any]) -> None:
    """The zoo library filled with distractors to 100, 1,000 and 10,000 entries."""
    for n in SIZES:
        t = time.perf_counter()
        _library_with_distractors(work, n)
        print(f"lib-{n}: {time.perf_counter() - t:.1f} s", flush=True)


def step_verdicts_weights(work: Path, out: dict[str, Any]) -> None:
    step_verdicts(work, out, weights=True)


STEPS = {"build": step_build, "libs": step_libs, "recall": step_recall,
         "disguise": step_disguise, "verdicts": step_verdicts,
         "verdicts_weights": step_verdicts_weights, "speed": step_speed, "size": step_size}


def main() -> None:
    global ZOO
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=HERE / "cache")
    ap.add_argument("--steps", default=",".join(STEPS))
    ap.add_argument("--zoo", type=Path, default=ZOO,
                    help="the lineage zoo's folder holding manifest.json (read only)")
    args = ap.parse_args()
    ZOO = args.zoo.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    results_path = HERE / "results.json"
    out = json.loads(results_path.read_text()) if results_path.exists() else {}
    for step in args.steps.split(","):
        STEPS[step](args.work, out)
        out["machine"] = {"cores": os.cpu_count(), "load": os.getloadavg()}
        results_path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

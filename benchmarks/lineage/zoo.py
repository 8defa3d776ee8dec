"""Build the lineage zoo: ``python -m benchmarks.lineage.zoo [--small] [--out DIR]``.

Deterministic from seeds; every model is cached in a content-addressed store under
``benchmarks/lineage/cache/store`` keyed by its recipe, its parents' keys, the corpus
fingerprint and the tokenizer, so re-runs reuse what is unchanged. The output directory gets
``manifest.json``: every model (path, recipe, seeds, data, losses, unigram baseline) and every
labelled pair (derived with its derivation kind, or independent).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from .bpe import Encoder, train_merges
from .corpus import SPLITS, load_corpus, unigram_baseline
from .labels import make_pairs
from .ops import build
from .recipes import PROFILES, Recipe, zoo_recipes

#: Bump when a change to the code changes what a recipe produces.
CODE_VERSION = 1
HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / "cache"


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _atomic_dir(final: Path) -> Path:
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _commit_dir(tmp: Path, final: Path) -> None:
    try:
        os.rename(tmp, final)
    except OSError:           # another builder won the race: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


def prepare(profile: str, store: Path, log: Any) -> dict[str, Any]:
    """Corpus, tokenizer and token streams (all cached); returns the worker context."""
    p = PROFILES[profile]
    corpus = load_corpus(p["chars"])
    tok_key = _hash({"corpus": corpus.fingerprint, "merges": p["merges"], "v": CODE_VERSION})
    tok_dir = store / f"tokenizer-{p['merges']}-{tok_key[:12]}"
    if not (tok_dir / "tokenizer.json").exists():
        log(f"training tokenizer ({p['merges']} merges)")
        tmp = _atomic_dir(tok_dir)
        budget, texts = 0, []
        for t in corpus.texts["pretrain"]:      # a 2 MB sample of the pretraining split
            if budget > 2_000_000:
                break
            texts.append(t)
            budget += len(t)
        Encoder(train_merges(texts, p["merges"])).save(tmp)
        _commit_dir(tmp, tok_dir)
    enc = Encoder.load(tok_dir / "tokenizer.json")
    tok_dir_streams = store / f"tokens-{_hash([tok_key, corpus.fingerprint])[:12]}"
    streams: dict[str, str] = {}
    if not all((tok_dir_streams / f"{s}.npy").exists() for s in SPLITS):
        log("encoding corpus")
        tmp = _atomic_dir(tok_dir_streams)
        for s in SPLITS:
            ids: list[int] = []
            for t in corpus.texts[s]:
                ids.extend(enc.encode(t))
                ids.append(enc.eot)
            np.save(tmp / f"{s}.npy", np.asarray(ids, dtype=np.int32))
        _commit_dir(tmp, tok_dir_streams)
    split_info = {}
    arrays = {}
    for s in SPLITS:
        streams[s] = str(tok_dir_streams / f"{s}.npy")
        arrays[s] = np.load(streams[s])
        split_info[s] = {"files": len(corpus.files[s]), "chars": corpus.chars(s),
                         "tokens": len(arrays[s]), "first_files": corpus.files[s][:3]}
    return {
        "profile": profile, "tok_dir": str(tok_dir), "tok_key": tok_key,
        "streams": streams, "vocab": len(enc),
        "unigram_baseline": round(unigram_baseline(arrays["pretrain"], arrays["eval"],
                                                   len(enc)), 4),
        "corpus": {"fingerprint": corpus.fingerprint, "splits": split_info},
        "dirs": {}, "real_paths": {},
    }


def _real_path(which: str) -> Path:
    from modelprint import realmodels
    return {"smollm2": realmodels.smollm2_gguf, "gemma3": realmodels.gemma3_gguf,
            "minilm": realmodels.minilm_dir}[which]()


def plan(recipes: list[Recipe], ctx: dict[str, Any], store: Path) -> dict[str, str]:
    """Cache key of every recipe (parents first); fills ``ctx['dirs']`` and real paths."""
    p = PROFILES[ctx["profile"]]
    keys: dict[str, str] = {}
    for r in recipes:
        if r["op"] == "real":
            path = _real_path(r["which"])
            ctx["real_paths"][r["name"]] = str(path)
            keys[r["name"]] = _hash({"real": str(path)})
            continue
        keys[r["name"]] = _hash({
            "recipe": r, "parents": [keys[q] for q in r.get("parents", [])],
            "tok": ctx["tok_key"], "corpus": ctx["corpus"]["fingerprint"],
            "consts": {k: p[k] for k in ("seq", "batch", "eval_windows")},
            "v": CODE_VERSION})
        ctx["dirs"][r["name"]] = str(store / "models" / f"{r['name']}-{keys[r['name']][:12]}")
    return keys


def _run_one(r: Recipe, ctx: dict[str, Any], threads: int) -> dict[str, Any]:
    final = Path(ctx["dirs"][r["name"]])
    tmp = _atomic_dir(final)
    build(r, ctx, tmp, threads)
    _commit_dir(tmp, final)
    return _entry(final)


def _entry(d: Path) -> dict[str, Any]:
    """A built model's manifest entry; ``path`` is the directory or its GGUF file."""
    e = json.loads((d / "zoo.json").read_text())
    e["path"] = str(d / e["file"]) if e["file"] else str(d)
    return e


def build_zoo(profile: str, out: Path, store: Path, jobs: int = 2, threads: int = 1,
              only: list[str] | None = None, log: Any = print) -> dict[str, Any]:
    """Build (or reuse) every model of ``profile`` and write ``out/manifest.json``."""
    t0 = time.time()
    store.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    recipes = zoo_recipes(profile)
    if only:
        wanted = set()
        by = {r["name"]: r for r in recipes}
        todo = list(only)
        while todo:
            n = todo.pop()
            if n not in by:
                raise SystemExit(f"--only: no model named {n!r} in profile {profile}")
            if n not in wanted:
                wanted.add(n)
                todo.extend(by[n].get("parents", []))
        recipes = [r for r in recipes if r["name"] in wanted]
    ctx = prepare(profile, store, log)
    keys = plan(recipes, ctx, store)
    entries: dict[str, dict[str, Any]] = {}
    pending: list[Recipe] = []
    reused: list[str] = []
    for r in recipes:
        if r["op"] == "real":
            path = ctx["real_paths"][r["name"]]
            entries[r["name"]] = {"name": r["name"], "kind": "real", "recipe": r, "parents": [],
                                  "path": path,
                                  "format": "gguf" if path.endswith(".gguf") else "hf"}
            continue
        marker = Path(ctx["dirs"][r["name"]]) / "zoo.json"
        if marker.exists():
            entries[r["name"]] = _entry(marker.parent)
            reused.append(r["name"])
        else:
            pending.append(r)
    log(f"{len(reused)} models cached, {len(pending)} to build (jobs={jobs})")
    _schedule(pending, entries, ctx, jobs, threads, log)
    manifest = _manifest(profile, out, ctx, recipes, entries, keys)
    manifest["build"] = {"seconds": round(time.time() - t0, 1), "jobs": jobs,
                         "threads_per_job": threads, "reused": reused,
                         "built": [r["name"] for r in pending]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    log(f"wrote {out / 'manifest.json'}: {len(entries)} models, "
        f"{len(manifest['pairs'])} pairs, {manifest['build']['seconds']} s")
    return manifest


def _schedule(pending: list[Recipe], entries: dict[str, dict[str, Any]], ctx: dict[str, Any],
              jobs: int, threads: int, log: Any) -> None:
    if jobs <= 1:
        for r in pending:
            entries[r["name"]] = _run_one(r, ctx, threads)
            log(f"  built {r['name']} ({entries[r['name']]['build_seconds']} s)")
        return
    waiting = list(pending)
    running: dict[Future[dict[str, Any]], str] = {}
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        while waiting or running:
            for r in list(waiting):
                if len(running) >= jobs:
                    break
                if all(q in entries for q in r.get("parents", [])):
                    waiting.remove(r)
                    running[pool.submit(_run_one, r, ctx, threads)] = r["name"]
            if not running:
                raise RuntimeError(f"unbuildable recipes: {[r['name'] for r in waiting]}")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                name = running.pop(f)
                entries[name] = f.result()
                log(f"  built {name} ({entries[name]['build_seconds']} s)")


def _manifest(profile: str, out: Path, ctx: dict[str, Any], recipes: list[Recipe],
              entries: dict[str, dict[str, Any]], keys: dict[str, str]) -> dict[str, Any]:
    models: dict[str, dict[str, Any]] = {}
    calib = PROFILES[profile].get("calibration_seeds", {})
    for r in recipes:
        e = dict(entries[r["name"]])
        e["cache_key"] = keys[r["name"]]
        if r["op"] == "pretrain":
            held = r["index"] in calib.get(r["shape"], [])
            e["role"] = "calibration" if held else "evaluation"
        if e["kind"] != "real":
            e["path"] = os.path.relpath(e["path"], out)
        models[r["name"]] = e
    return {
        "format": "modelprint.lineage-zoo/1", "profile": profile, "code_version": CODE_VERSION,
        "corpus": ctx["corpus"],
        "tokenizer": {"path": os.path.relpath(ctx["tok_dir"], out), "vocab": ctx["vocab"],
                      "merges": PROFILES[profile]["merges"]},
        "unigram_baseline": ctx["unigram_baseline"],
        "notes": ("Model cards never name a parent; derivatives are labelled only here. "
                  "Paths are relative to this file except real models (absolute)."),
        "models": models,
        "pairs": make_pairs(models),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--small", action="store_true", help="the few-minute variant")
    g.add_argument("--profile", choices=sorted(PROFILES), help="full | small | tiny")
    ap.add_argument("--out", type=Path, help="where manifest.json goes "
                    "(default benchmarks/lineage/cache/<profile>)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE / "store",
                    help="content-addressed model store")
    ap.add_argument("--jobs", type=int, default=2, help="parallel worker processes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--only", nargs="*", help="build only these models (and their parents)")
    a = ap.parse_args(argv)
    profile = a.profile or ("small" if a.small else "full")
    out = a.out or DEFAULT_CACHE / profile
    build_zoo(profile, out, a.cache, a.jobs, a.threads, a.only,
              log=lambda m: print(m, file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

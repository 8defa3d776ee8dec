"""Disguise benchmark: ``python -m benchmarks.disguise.run [--quick] [--bases ...]``.

For every base model, every disguise of ``transforms.py`` is applied alone and composed with
a derivation (a short fine-tune, a 4-bit GGUF round trip, a layer drop, an MoE upcycle); each
pure disguise is verified function-preserving by a torch forward pass (max |logit diff|, in
float64 for the arithmetic and in float32 from the stored file); each candidate is then
audited by the modelprint engine against its base (expected: ``derived``) and the disguises
alone also against an independent base of the same shape (expected: not ``derived``).
Writes ``results.json`` and ``RESULTS.md`` beside this file.

Bases: ``--quick`` uses the lineage zoo's ``tiny`` profile (seconds); the default uses the
``small`` profile's ``llama-s`` and ``qwen2-m`` (trained on CPU, a few minutes, cached) and
SmolLM2-135M dequantised from its real GGUF to a HF directory. Models are built into
``benchmarks/disguise/cache/`` with the lineage builder, never into the lineage cache.
No null panel is used (``MODELPRINT_NULLS`` points at an empty file): the verdicts are those
of a user's first audit, decided by the checks with valid p-values.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmarks.lineage.bpe import Encoder
from benchmarks.lineage.corpus import load_corpus
from benchmarks.lineage.recipes import PROFILES
from benchmarks.lineage.tiny_lm import load_model
from benchmarks.lineage.zoo import build_zoo

from . import compose as C
from . import transforms as T
from .report import COMPOSITIONS, write_report

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
KEPT = ("applicable", "indicates_derivation", "p_value", "score", "summary", "strength")


@dataclass(frozen=True)
class Base:
    """One base model: where it is, its independent same-shape control, how it is stored."""

    name: str
    zoo_name: str
    control: str | None
    dtype: str
    budget: C.Budget


def bases(quick: bool) -> tuple[str, list[Base]]:
    if quick:
        b = C.Budget(ft_steps=10, ft_batch=8, ft_lr=1e-3, drop=(1,), experts=4, moe_steps=10,
                     gguf_qtype="Q4_0")
        q = C.Budget(ft_steps=10, ft_batch=8, ft_lr=1e-3, drop=(), experts=4, moe_steps=10,
                     gguf_qtype="Q4_K")
        return "tiny", [Base("llama-t", "llama-t.seed0", "llama-t.seed1", "float32", b),
                        Base("qwen2-t", "qwen2-t.seed0", None, "bfloat16", q)]
    zoo = C.Budget(ft_steps=25, ft_batch=8, ft_lr=5e-4, drop=(2,), experts=4, moe_steps=40,
                   gguf_qtype="Q4_0")
    return "small", [
        Base("llama-s", "llama-s.seed0", "llama-s.seed1", "float32", zoo),
        Base("qwen2-m", "qwen2-m.seed0", "qwen2-m.seed1", "bfloat16",
             C.Budget(**{**zoo.__dict__, "gguf_qtype": "Q4_K"})),
        Base("smollm2-135m", "smollm2.hf", None, "bfloat16",
             C.Budget(ft_steps=4, ft_batch=4, ft_lr=1e-4, drop=(20, 22, 24, 26), experts=2,
                      moe_steps=0, gguf_qtype="Q4_0")),
    ]


def _engine_pair(cand: Path, ref: Path) -> tuple[dict[str, Any], float]:
    """The engine's full result for one pair (a fresh Engine: nothing held open between
    pairs, so deleted candidates free their disk), and its wall time."""
    from modelprint.audit import Engine, Target

    t0 = time.perf_counter()
    js = Engine(offline=True).pair(Target(str(cand)), Target(str(ref)), expect=None).to_json()
    return js, time.perf_counter() - t0


def _flat(js: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {"verdict": js["verdict"], "verdict_reason": js["verdict_reason"],
            "seconds": round(seconds, 2),
            "checks": {n: {k: c.get(k) for k in KEPT} for n, c in js["checks"].items()}}


class Runner:
    """Applies, verifies, stores and audits; one instance per run."""

    def __init__(self, profile: str, work: Path, keep: bool, log: Any) -> None:
        self.profile = profile
        self.work = work
        self.keep = keep
        self.log = log
        corpus = load_corpus(PROFILES[profile]["chars"])
        self.texts = corpus.texts["sft_a"]
        self.ft_text = "".join(self.texts)[:300_000]
        self.new_tokens = PROFILES[profile]["vocab_ext"]

    def ids(self, s: T.Subject) -> torch.Tensor:
        """A fixed batch of real text (eval split) for the forward-pass checks."""
        toks = s.enc.encode("".join(load_corpus(PROFILES[self.profile]["chars"])
                                    .texts["eval"])[:20_000])
        return torch.tensor(np.asarray(toks[:4 * 64]).reshape(4, 64))

    def candidate(self, base: Base, s: T.Subject, comp: str, seed: int, out: Path
                  ) -> tuple[Path, dict[str, Any]]:
        """Compose the disguised ``s`` with ``comp`` and store it; returns the candidate path
        and what the composition recorded."""
        info: dict[str, Any] = {}
        b = base.budget
        if comp == "finetune":
            s, info = C.finetune(s, self.ft_text, b, seed)
        elif comp == "layer_drop":
            s = C.layer_drop(s, b)
        elif comp == "moe":
            s, info = C.moe_upcycle(s, b, self.ft_text, seed)
        elif comp == "gguf":
            out.mkdir(parents=True, exist_ok=True)
            gpath = out / "model.gguf"
            s, info = C.gguf_round_trip(s, gpath, b.gguf_qtype, out.name)
            if not s.fused:
                info["format"] = "gguf"
                return gpath, info
            gpath.unlink()
        T.save(s, out, out.name, base.dtype)
        info["format"] = "phi3 (fused)" if s.fused else "hf"
        info["steps"] = s.steps
        return out, info

    def run_base(self, base: Base, zoo: dict[str, Any], names: list[str], comps: list[str],
                 emit: Callable[[dict[str, Any]], None]) -> None:
        """Every transform x composition of one base; each record goes to ``emit``."""
        root = Path(zoo["_root"])
        ref = (root / zoo["models"][base.zoo_name]["path"]).resolve()
        control = ((root / zoo["models"][base.control]["path"]).resolve()
                   if base.control else None)
        model = load_model(ref).double()
        subject = T.Subject.base(model, Encoder.load(ref / "tokenizer.json"))
        ids = self.ids(subject)
        reg = T.registry(self.texts, self.new_tokens)
        # composition-major, so an interrupted run has every disguise alone first; the
        # disguise is recomputed per composition (deterministic from its seed) instead of
        # holding a float64 copy of every disguised model
        for comp in comps:
            for ti, name in enumerate(["none", *names]):
                if name == "none" and comp == "alone":
                    continue
                why = None if name == "none" else T.not_applicable(name, subject)
                if why:
                    if comp == comps[0]:
                        emit({"base": base.name, "transform": name, "not_applicable": why})
                    continue
                seed = 100 * ti + 1
                t0 = time.perf_counter()
                s = subject if name == "none" else reg[name](subject, seed)
                rec: dict[str, Any] = {"base": base.name, "transform": name,
                                       "composition": comp, "steps": s.steps,
                                       "transform_seconds": round(time.perf_counter() - t0, 2)}
                if comp == "layer_drop" and not base.budget.drop:
                    if name == "none":
                        emit({**rec, "not_applicable": "a one-layer model has no layer to drop"})
                    continue
                if comp == "moe" and s.fused:
                    emit({**rec, "not_applicable": "no supported MoE family has fused "
                                 "qkv_proj/gate_up_proj (Phi-3 is dense)"})
                    continue
                if name != "none":
                    rec["function"] = T.logit_diff(subject, s, ids)
                self.pair(base, subject, s, comp, seed, rec, ref, control, ids, emit)
                del s
                gc.collect()

    def pair(self, base: Base, subject: T.Subject, s: T.Subject, comp: str, seed: int,
             rec: dict[str, Any], ref: Path, control: Path | None, ids: torch.Tensor,
             emit: Callable[[dict[str, Any]], None]) -> None:
        """Store one candidate, check the stored function (disguise alone), audit it against
        its base and (disguise alone) against the independent control."""
        d = self.work / base.name / f"{rec['transform']}.{comp}"
        shutil.rmtree(d, ignore_errors=True)
        t1 = time.perf_counter()
        path, info = self.candidate(base, s, comp, seed, d)
        rec.update(compose=info, build_seconds=round(time.perf_counter() - t1, 2))
        if comp == "alone":
            rec["stored_function"] = T.logit_diff(subject, T.load_saved(s, path), ids,
                                                  torch.float32)
        js, sec = _engine_pair(path, ref)
        rec.update(_flat(js, sec), expected="derived")
        self.log(f"  {base.name} {rec['transform']}+{comp}: {rec['verdict']} ({sec:.1f} s)")
        emit(rec)
        if comp == "alone" and control is not None:
            cj, csec = _engine_pair(path, control)
            emit({"base": base.name, "transform": rec["transform"], "composition": comp,
                  "control": base.control, "expected": "not derived", **_flat(cj, csec)})
            self.log(f"  {base.name} {rec['transform']} vs {base.control}: {cj['verdict']}")
        if not self.keep:
            shutil.rmtree(d, ignore_errors=True)


@dataclass(frozen=True)
class RealBase:
    """A real model of MODELS.md with its own forward (``gemma3.py``, ``bert.py``): the
    disguises that are function-preserving for it, alone and with a layer drop (no training
    loop, GGUF writer or MoE family for these families here). The reference is the real file."""

    name: str
    ref: Path
    fmt: str
    drop: tuple[int, ...]
    module: Any            # read, DISGUISES, diff, save, load, drop_layers


def real_bases() -> list[RealBase]:
    from modelprint import realmodels

    from . import bert as B
    from . import gemma3 as G

    minilm = realmodels.minilm_dir()
    return [RealBase("gemma3-270m", realmodels.gemma3_gguf(), "hf gemma3_text", (9, 11, 13), G),
            RealBase("all-minilm-l6-v2", minilm, "sentence-transformers (bert)", (2, 3),
                     B.Adapter(minilm))]


def run_real(base: RealBase, work: Path, keep: bool, emit: Callable[[dict[str, Any]], None],
             log: Any) -> None:
    m = base.module
    t0 = time.perf_counter()
    cfg, state, tok = m.read(base.ref)
    log(f"  {base.name} read in {time.perf_counter() - t0:.0f} s")
    ids = torch.from_numpy(np.random.default_rng(0).integers(3, cfg["vocab"], (2, 32)))
    for ti, (name, fn) in enumerate(m.DISGUISES.items()):
        t0 = time.perf_counter()
        new, new_tok = fn(cfg, state, tok, np.random.default_rng(100 * ti + 1))
        head = {"base": base.name, "transform": name, "steps": [name],
                "transform_seconds": round(time.perf_counter() - t0, 2),
                "function": m.diff(cfg, state, new, tok, new_tok, ids)}
        for comp in ("alone", "layer_drop"):
            d = work / base.name / f"{name}.{comp}"
            shutil.rmtree(d, ignore_errors=True)
            rec: dict[str, Any] = {**head, "composition": comp}
            if comp == "alone":
                m.save(cfg, new, new_tok, d)
                rec["stored_function"] = m.diff(cfg, state, m.load(d), tok, new_tok, ids)
            else:
                m.save(*m.drop_layers(cfg, new, base.drop), new_tok, d)
                rec["steps"] = [name, f"layer_drop{list(base.drop)}"]
            js, sec = _engine_pair(d, base.ref)
            rec.update(_flat(js, sec), expected="derived", compose={"format": base.fmt})
            log(f"  {base.name} {name}+{comp}: {rec['verdict']} ({sec:.1f} s)")
            emit(rec)
            if not keep:
                shutil.rmtree(d, ignore_errors=True)
            gc.collect()


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=HERE).stdout.strip()
    except OSError:
        return "unknown"


def _dirty_src() -> list[str]:
    res = subprocess.run(["git", "status", "--short", "--", "src"], capture_output=True,
                         text=True, cwd=HERE)
    return res.stdout.splitlines()


def merge(dirs: list[Path], out: Path) -> int:
    """One results.json / RESULTS.md from several runs (e.g. the zoo bases and SmolLM2 run
    as two processes)."""
    runs = [json.loads((d / "results.json").read_text()) for d in dirs]
    meta = dict(runs[0]["meta"])
    meta.update(seconds=sum(r["meta"]["seconds"] for r in runs),
                complete=all(r["meta"].get("complete") for r in runs),
                bases=[b for r in runs for b in r["meta"]["bases"]],
                runs=[{"dir": str(d), **{k: r["meta"][k] for k in ("commit", "seconds")}}
                      for d, r in zip(dirs, runs, strict=True)])
    # a later run that repeats a pair (a re-run of what an interrupted run missed) wins
    merged = {(x.get("base"), x.get("transform"), x.get("composition"), x.get("control")): x
              for r in runs for x in r["records"]}
    records = list(merged.values())
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "records": records},
                                                 indent=1, default=str) + "\n")
    write_report(out / "RESULTS.md", meta, records)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny zoo models only (minutes)")
    ap.add_argument("--bases", nargs="*", help="subset of base names")
    ap.add_argument("--transforms", nargs="*", help="subset of transform names")
    ap.add_argument("--compositions", nargs="*", choices=COMPOSITIONS)
    ap.add_argument("--keep", action="store_true", help="keep the candidate models")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE, help="where results.json/RESULTS.md go")
    ap.add_argument("--merge", nargs="*", type=Path,
                    help="only combine the results.json of these directories into --out")
    ap.add_argument("--real", nargs="*", choices=("gemma3-270m", "all-minilm-l6-v2"),
                    help="only these real models with their own forward (default both)")
    ap.add_argument("--gemma3", action="store_true", help="the same as --real gemma3-270m")
    a = ap.parse_args(argv)
    if a.gemma3:
        a.real = [*(a.real or []), "gemma3-270m"]
    reals = [] if a.real is None else [r for r in real_bases() if not a.real or r.name in a.real]
    if a.merge:
        return merge(a.merge, a.out)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    torch.set_num_threads(a.threads)
    CACHE.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MODELPRINT_CACHE_DIR", str(CACHE / "mp-cache"))
    os.environ["MODELPRINT_NULLS"] = str(CACHE / "no-panels.json")   # absent: no panels
    profile, all_bases = bases(a.quick)
    chosen = [b for b in all_bases if a.real is None and (not a.bases or b.name in a.bases)]
    only = sorted({n for b in chosen for n in (b.zoo_name, b.control) if n})
    zoo: dict[str, Any] = {}
    if chosen:
        zoo = build_zoo(profile, CACHE / profile, CACHE / "store", jobs=1, only=only, log=log)
        zoo["_root"] = CACHE / profile
    names = a.transforms or list(T.registry([], 0))
    comps = a.compositions or list(COMPOSITIONS)
    runner = Runner(profile, CACHE / "work", a.keep, log)
    t0 = time.time()
    records: list[dict[str, Any]] = []
    meta = {"profile": profile, "quick": a.quick, "commit": _commit(),
            "uncommitted_src": _dirty_src(), "seconds": 0.0, "complete": False,
            "alpha": 1e-6, "null_panels": "none", "torch_threads": a.threads,
            "bases": [b.__dict__ | {"budget": b.budget.__dict__} for b in chosen]
            + [{"name": r.name, "zoo_name": f"real {r.ref.name}", "control": None,
                "format": r.fmt} for r in reals]}
    a.out.mkdir(parents=True, exist_ok=True)

    def write(rec: dict[str, Any] | None) -> None:
        # after every pair, so an interrupted run still leaves its results
        if rec is not None:
            records.append(rec)
        meta["seconds"] = round(time.time() - t0, 1)
        (a.out / "results.json").write_text(json.dumps({"meta": meta, "records": records},
                                                       indent=1, default=str) + "\n")
        write_report(a.out / "RESULTS.md", meta, records)

    for b in chosen:
        runner.run_base(b, zoo, names, comps, write)
    for r in reals:
        run_real(r, CACHE / "work", a.keep, write, log)
    meta["complete"] = True
    write(None)
    log(f"wrote {a.out / 'RESULTS.md'} ({len(records)} records, {meta['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

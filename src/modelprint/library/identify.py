"""Screen one candidate against a whole library: is it derived from any known model, and
from which?

Two stages. The **prefilter** scores every entry by :mod:`.descriptors` (one vectorised
pass, no object read) and keeps the best ``top`` K. Then every **decisive check** of the
engine runs on those K pairs, the entries standing in as fingerprints.

Significance. The prefilter looks at the data, so testing only K entries at ``alpha / K``
would let the selection pick the most similar-looking entries and then test them leniently.
The verdicts here test at ``alpha / (N x D)`` -- N every entry screened, D the decisive
checks -- exactly the level at which all N x D tests would have been run: Bonferroni holds
for any subset of its tests, whoever chose the subset, so the family-wise error over the
whole library stays at most ``alpha`` whatever the prefilter picked. The prefilter is a
ranking, never evidence: an entry it ranks first is not thereby "related".

Merges. When two or more related entries have the candidate's shape, the candidate is
decomposed over them (:mod:`.merge`); a merge names every parent found in the library with
its mixture weight, "merge of A (0.62 ± 0.02) and B (0.38 ± 0.02)", and those entries count
as its parents.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelprint.checks.base import DECISIVE, ModelView
from modelprint.engine import DEFAULT_ALPHA, Engine, Target
from modelprint.errors import InputError
from modelprint.fingerprint.model import Fingerprint
from modelprint.library.core import ModelLibrary
from modelprint.library.descriptors import probe, rank, score
from modelprint.library.direction import CHILD, PARENT, direction
from modelprint.library.merge import MergeFinding, find_merge
from modelprint.library.store import LibraryError

#: How the engine is told a target is a library entry.
PREFIX = "modelprint-library:"
DEFAULT_TOP = 10


@dataclass
class Match:
    """One library entry the decisive checks were run on."""

    rank: int
    name: str
    reference: str
    prefilter: float | None
    shared_tokens: int
    verdict: str
    reason: str
    p_value: float | None
    relation: str | None          # parent | child | None (unknown), when related
    direction_reason: str
    pair: dict[str, Any]
    merge_weight: Any = None      # merges.bootstrap.Estimate, when a parent of a merge
    basis: str = "fingerprint"    # what the entry was compared on: "weights" | "fingerprint"
    basis_reason: str = ""        # why not on weights, when they were asked for

    @property
    def related(self) -> bool:
        return self.verdict == "derived"

    @property
    def is_parent(self) -> bool:
        """Counts against originality: related, and not shown to derive from the candidate."""
        return self.related and self.relation != CHILD

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "name": self.name, "reference": self.reference,
                "prefilter": self.prefilter, "shared_tokens": self.shared_tokens,
                "verdict": self.verdict, "reason": self.reason, "p_value": self.p_value,
                "relation": self.relation if self.related else None,
                "direction_reason": self.direction_reason if self.related else None,
                "parent": self.is_parent,
                "merge_weight": None if self.merge_weight is None else
                self.merge_weight.to_json(), "compared_on": self.basis,
                "compared_on_reason": self.basis_reason, "pair": self.pair}


@dataclass
class Identification:
    candidate: str
    library: str
    entries: int
    decisive_checks: list[str]
    alpha: float
    n_tests: int
    matches: list[Match]
    screened: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    merge: MergeFinding | None = None

    @property
    def parents(self) -> list[Match]:
        return [m for m in self.matches if m.is_parent]

    @property
    def original(self) -> bool:
        return not self.parents

    def verdict(self) -> str:
        if self.parents:
            return "derived"
        if any(m.verdict == "inconclusive" for m in self.matches):
            return "inconclusive"
        return "original"

    def summary(self) -> str:
        parents = self.parents
        if self.merge is not None and self.merge.is_merge:
            rest = [m for m in parents if m.merge_weight is None]
            tail = "; also related to " + ", ".join(f"{m.name} ({_rel(m)})" for m in rest) \
                if rest else ""
            return f"derived: {self.merge.summary}{tail}"
        if parents:
            names = ", ".join(f"{m.name} ({_rel(m)})" for m in parents)
            return f"derived: related to {names}"
        children = [m.name for m in self.matches if m.related]
        tail = f"; library models derived from it: {', '.join(children)}" if children else ""
        return (f"no library model is a parent (of {self.entries} screened, "
                f"{len(self.matches)} tested){tail}")

    def to_json(self) -> dict[str, Any]:
        return {"format": "modelprint.identify/1", "candidate": self.candidate,
                "library": self.library, "entries": self.entries,
                "decisive_checks": self.decisive_checks, "alpha": self.alpha,
                "tests": self.n_tests, "alpha_per_test": self.alpha / self.n_tests,
                "verdict": self.verdict(), "summary": self.summary(),
                "matches": [m.to_json() for m in self.matches],
                "merge": None if self.merge is None else self.merge.to_json(),
                "screened": self.screened, "seconds": self.seconds}


def _rel(m: Match) -> str:
    if m.relation == PARENT:
        return "its parent"
    return "direction unknown"


class LibraryLoader:
    """The engine's loader: library entries from the store, anything else as usual.

    With ``weights=True`` an entry whose model is at hand -- the local folder or file it was
    built from, or a hub reference in the local hub cache -- is compared on its weights, so
    the checks that need them (activation_matching, mlp_matching over full rows, which see
    through a permuted or rotated residual stream that a fingerprint's sampled sketches
    cannot) run on it too. Why the check of tensor hashes: the path may now hold another
    model; only weights whose every tensor hash equals the entry's are used, anything else
    (gone, changed, not cached) falls back to the stored fingerprint, as without the option.
    """

    def __init__(self, library: ModelLibrary, weights: bool = False) -> None:
        self.library = library
        self.weights = weights
        #: entry name -> why its weights were not used (for the report)
        self.fingerprint_only: dict[str, str] = {}

    def __call__(self, reference: str, base_dir: Path | None = None, **kwargs: Any
                 ) -> ModelView:
        from modelprint.models import load_model

        if not reference.startswith(PREFIX):
            return load_model(reference, base_dir, **kwargs)
        name = reference[len(PREFIX):]
        stored = self.library.fingerprint(name)
        if self.weights:
            entry = self.library.entry(name)
            kwargs["offline"] = True          # at hand means here: never a download
            try:
                view = load_model(entry.reference, None, **kwargs)
            except InputError as exc:
                self.fingerprint_only[name] = f"weights not at hand ({exc})"
            else:
                if same_weights(view.fingerprint, stored):
                    return view
                self.fingerprint_only[name] = (f"{entry.reference} no longer holds the "
                                               "weights the entry was built from")
        return ModelView(stored)


def _tensor_hashes(fp: Fingerprint) -> set[tuple[str, int | None, int | None, str]]:
    return {(t.role, t.layer, t.expert, t.digest) for t in fp.tensors}


def same_weights(fresh: Fingerprint, stored: Fingerprint) -> bool:
    """Whether a folder still holds the weights a stored entry was built from: every tensor's
    digest, or -- for an entry stored before format /3 (sha256 tensor digests, the fresh one
    has BLAKE3) -- every weight file's sha256."""
    a, b = _tensor_hashes(fresh), _tensor_hashes(stored)
    if {d.split(":", 1)[0] for *_, d in a} == {d.split(":", 1)[0] for *_, d in b}:
        return a == b
    return bool(fresh.model.files) and sorted(fresh.model.files.values()) == sorted(
        stored.model.files.values())


def decisive_checks(engine: Engine) -> dict[str, dict[str, Any]]:
    return {name: {} for name, impl in engine.registry.items()
            if getattr(impl, "strength", "") == DECISIVE}


def identify(candidate: str, library: ModelLibrary, *, top: int = DEFAULT_TOP,
             alpha: float = DEFAULT_ALPHA, base_dir: Path | None = None,
             offline: bool | None = None, exclude: Iterable[str] = (),
             weights: bool = False) -> Identification:
    """Screen ``candidate`` (a MODEL reference) against every entry of ``library``;
    ``weights``: compare the best ``top`` on their weights where at hand (LibraryLoader)."""
    if top < 1:
        raise LibraryError("--top", f"must be at least 1, not {top}")
    t0 = time.perf_counter()
    loader = LibraryLoader(library, weights)
    engine = Engine(offline=offline, loader=loader)
    target = Target(candidate, base_dir or Path.cwd())
    view = engine.model(target)
    t1 = time.perf_counter()
    screen = library.screen()
    skip = set(exclude)
    keep = [i for i, e in enumerate(screen.entries) if e.name not in skip]
    if not keep:
        raise LibraryError(library.root, "the library holds no entry to screen against")
    p = probe(view.fingerprint)
    if p is None:
        scores = np.full(len(screen.entries), np.nan)
        shared = np.zeros(len(screen.entries), dtype=np.int64)
    else:
        scores, shared = score(p, screen.library)
    keep_arr = np.array(keep)
    order = keep_arr[rank(scores[keep_arr])]
    t2 = time.perf_counter()
    checks = decisive_checks(engine)
    n_tests = len(keep) * max(1, len(checks))
    matches = []
    for pos, i in enumerate(order[:top]):
        e = screen.entries[int(i)]
        pair = engine.pair(target, Target(PREFIX + e.name, None, e.name), checks=checks,
                           alpha=alpha, n_tests=n_tests)
        result = pair.to_json()
        ps = [c.get("p_value") for c in result["checks"].values()
              if c.get("applicable") and c.get("p_value") is not None]
        verdict = result["verdict"]
        d = direction(view.fingerprint, engine.model(pair.reference).fingerprint) \
            if verdict == "derived" else None
        s = float(scores[i])
        matches.append(Match(
            rank=pos + 1, name=e.name, reference=e.reference,
            prefilter=None if np.isnan(s) else s, shared_tokens=int(shared[i]),
            verdict=verdict, reason=result["verdict_reason"],
            p_value=float(min(ps)) if ps else None,
            relation=d.relation if d else None, direction_reason=d.reason if d else "",
            pair=result,
            basis="weights" if engine.model(pair.reference).weights is not None
            else "fingerprint", basis_reason=loader.fingerprint_only.get(e.name, "")))
    t3 = time.perf_counter()
    merge = find_merge(view, matches, lambda name: engine.model(Target(PREFIX + name, None,
                                                                        name)), candidate)
    if merge is not None and merge.is_merge:
        for match in matches:
            w = merge.weight(match.name)
            if w is None:
                continue
            match.merge_weight = w
            if match.relation is None:
                match.relation = PARENT
                match.direction_reason = (f"a parent of the merge (weight {w}): a mixture "
                                          "is made from its parents")
    t4 = time.perf_counter()
    screened = [{"name": screen.entries[int(i)].name,
                 "prefilter": None if np.isnan(scores[i]) else float(scores[i]),
                 "shared_tokens": int(shared[i])} for i in order[: max(top, 25)]]
    return Identification(
        candidate=candidate, library=str(library.root), entries=len(keep),
        decisive_checks=list(checks), alpha=alpha, n_tests=n_tests, matches=matches,
        screened=screened, merge=merge,
        seconds={"candidate": round(t1 - t0, 4), "prefilter": round(t2 - t1, 4),
                 "checks": round(t3 - t2, 4), "merge": round(t4 - t3, 4)})

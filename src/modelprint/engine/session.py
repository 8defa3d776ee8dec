"""The engine: one session's models and evidence.

An :class:`Engine` lives for one session (one pytest process, one CLI call). It loads each
model once and caches each check's evidence per (candidate, reference, check, options), so
the per-check test items and the verdict item of a pair share one computation.

Significance: the verdict tests decisive checks at ``alpha / n`` where ``n`` is the number of
references in the audit times the number of decisive checks selected (Bonferroni), so an
audit against many references does not become more likely to call an independent model
derived just because it asked more questions.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from modelprint._blas import single_thread_blas
from modelprint.checks.base import DECISIVE, Evidence, ModelView
from modelprint.engine.outcomes import DEFAULT_ALPHA
from modelprint.engine.pair import Pair
from modelprint.engine.results import freeze
from modelprint.engine.targets import Target
from modelprint.errors import InputError

ModelLoader = Callable[..., ModelView]


#: The check whose layer alignment the other per-layer checks reuse when depths differ.
LAYER_ALIGNER = "attention_cka"

#: Checks of one pair computed side by side (:meth:`Engine.evidence_many`). Most checks are
#: single-threaded numpy (BLAS is held to one thread, ``_blas``); two at a time keep both
#: cores of a small machine busy. ``1`` computes them one after the other.
CHECK_THREADS = 2

#: Started first, so the longest checks do not begin last: the alignment the per-layer checks
#: wait for when depths differ, then the checks that take most of a compare.
FIRST = (LAYER_ALIGNER, "activation_matching", "mlp_matching", "moe_upcycling")


class Engine:
    """One session's models and evidence."""

    def __init__(self, *, offline: bool | None = None, use_cache: bool = True,
                 registry: Mapping[str, Any] | None = None,
                 loader: ModelLoader | None = None) -> None:
        self.offline = offline
        self.use_cache = use_cache
        self._registry = registry
        self._loader = loader
        self._models: dict[str, ModelView | InputError] = {}
        self._evidence: dict[tuple[str, str, str, str], tuple[Evidence, float]] = {}
        self._verdicts: dict[tuple[Any, ...], tuple[str, str]] = {}
        # one lock per evidence key: a check asked for by two threads (the layer aligner,
        # which other checks wait for) is computed once, the second waiting for the first
        self._key_locks: dict[tuple[str, str, str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @property
    def registry(self) -> Mapping[str, Any]:
        if self._registry is None:
            from modelprint.checks import all_checks

            self._registry = all_checks()
        return self._registry

    def model(self, target: Target) -> ModelView:
        """Load a model once per session; a model that failed to load fails the same way
        for every item that needs it, without trying again."""
        key = target.key()
        cached = self._models.get(key)
        if cached is None:
            loader = self._loader
            if loader is None:
                from modelprint.models import load_model

                loader = load_model
            try:
                cached = loader(target.reference, target.base_dir, offline=self.offline,
                                use_cache=self.use_cache, weights=True)
            except InputError as exc:
                cached = exc
            self._models[key] = cached
        if isinstance(cached, InputError):
            raise cached
        return cached

    def preload(self, first: Target, second: Target) -> None:
        """Load both models, the smaller (by stored bytes; the second when that is unknown)
        fingerprinted in a child process while this process fingerprints the other
        (``modelprint.prefetch``); the same result as loading them one after the other, on two
        cores instead of one. A model that cannot be loaded raises in the pair's order."""
        from modelprint import prefetch

        started = None
        here, there = first, second
        if (self.use_cache and self._loader is None and first.key() not in self._models
                and second.key() not in self._models and first.key() != second.key()):
            # the child pays an interpreter start and imports (~0.2 s) before it reads a
            # byte, so it takes the smaller model: the two then finish closer together
            sizes = [prefetch.stored_bytes(t.reference, t.base_dir, self.offline)
                     for t in (first, second)]
            if sizes[0] is not None and sizes[1] is not None and sizes[0] < sizes[1]:
                here, there = second, first
            started = prefetch.start([(there.reference, there.base_dir)], self.offline)
        try:
            with contextlib.suppress(InputError):   # raised below, in the pair's order
                self.model(here)
            self.model(first)
            self.model(second)  # the child's lock is waited for; a cached entry is read
        finally:
            prefetch.finish(started)

    def evidence(self, candidate: Target, reference: Target, check: str,
                 options: Mapping[str, Any]) -> tuple[Evidence, float]:
        """``check``'s evidence for the pair and the seconds it took (computed once)."""
        key = _evidence_key(candidate, reference, check, options)
        hit = self._evidence.get(key)
        if hit is not None:
            return hit
        with self._locks_guard:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with lock:
            hit = self._evidence.get(key)
            if hit is not None:
                return hit
            impl = self.registry[check]
            a, b = self.model(candidate), self.model(reference)
            opts = dict(options)
            if "layer_map" in getattr(impl, "default_options", {}) and \
                    not opts.get("layer_map") and check != LAYER_ALIGNER:
                opts["layer_map"] = self.layer_map(candidate, reference) or opts.get("layer_map")
            start = time.perf_counter()
            with single_thread_blas():
                ev = impl.compute(a, b, opts)
            hit = (ev, time.perf_counter() - start)
            self._evidence[key] = hit
        return hit

    def evidence_many(self, candidate: Target, reference: Target,
                      checks: Mapping[str, Mapping[str, Any]]
                      ) -> dict[str, tuple[Evidence, float]]:
        """:meth:`evidence` of every check in ``checks`` (name -> options), up to
        :data:`CHECK_THREADS` at a time; the same evidence as one after the other (each
        check is a pure function of the two models and its options), in ``checks``' order.
        The seconds of each are its own wall time, which two checks sharing the cores
        lengthen. The first error raised, in ``checks``' order, is raised."""
        names = list(checks)
        todo = [n for n in names
                if _evidence_key(candidate, reference, n, checks[n]) not in self._evidence]
        if CHECK_THREADS <= 1 or len(todo) < 2:
            return {n: self.evidence(candidate, reference, n, checks[n]) for n in names}
        self.model(candidate)        # a model that cannot be read fails here, once
        self.model(reference)
        start_order = sorted(todo, key=lambda n: FIRST.index(n) if n in FIRST else len(FIRST))
        # BLAS limited here, for all the threads: the limit is process-wide and OpenBLAS
        # takes it only from this thread; each check's own scope inside it costs nothing
        with single_thread_blas(), ThreadPoolExecutor(
                max_workers=CHECK_THREADS, thread_name_prefix="modelprint-check") as pool:
            jobs = {n: pool.submit(self.evidence, candidate, reference, n, checks[n])
                    for n in start_order}
            try:
                return {n: jobs[n].result() if n in jobs else
                        self.evidence(candidate, reference, n, checks[n]) for n in names}
            except BaseException:
                for job in jobs.values():
                    job.cancel()
                raise

    def layer_map(self, candidate: Target, reference: Target) -> list[list[int]] | None:
        """The layer alignment every per-layer check uses when depths differ.

        Equal depths pair layer i with layer i (None). Otherwise the alignment that
        ``attention_cka`` finds by dynamic programming over its layer-by-layer CKA matrix is
        used -- but only when that check trusts it (``details.alignment_trusted``: it found
        the attention related against its null panel, or, uncalibrated, the aligned layers
        are far more similar than any independent pair measured): an alignment chosen to
        maximise similarity between unrelated models would bias every statistic computed over
        it, so then the per-layer checks stay "not applicable".
        """
        a, b = self.model(candidate), self.model(reference)
        if a.fingerprint.num_layers == b.fingerprint.num_layers or \
                LAYER_ALIGNER not in self.registry:
            return None
        aligner = self.registry[LAYER_ALIGNER]
        ev, _ = self.evidence(candidate, reference, LAYER_ALIGNER,
                              dict(getattr(aligner, "default_options", {})))
        if ev.details.get("alignment_trusted") is not True:
            return None
        mapping = ev.details.get("layer_map")
        return [list(map(int, x)) for x in mapping] if mapping else None

    def pair(self, candidate: Target, reference: Target, *,
             checks: Mapping[str, Mapping[str, Any]] | None = None,
             expect: str | None = None, alpha: float = DEFAULT_ALPHA, n_tests: int | None = None,
             audit: str | None = None) -> Pair:
        """A (candidate, reference) pair with its selected checks and their options.

        ``checks`` maps names to the user's options (defaults are filled in); None selects
        every registered check. ``n_tests`` is the Bonferroni count; by default the number
        of decisive checks selected (one reference).
        """
        selected = {name: merged_options(self.registry[name], opts)
                    for name, opts in (checks if checks is not None
                                       else {n: {} for n in self.registry}).items()}
        if n_tests is None:
            n_tests = count_decisive(self.registry, selected)
        return Pair(self, candidate, reference, selected, expect, alpha, max(1, n_tests), audit)


def _evidence_key(candidate: Target, reference: Target, check: str,
                  options: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (candidate.key(), reference.key(), check, freeze(options))


def merged_options(check: Any, user: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(getattr(check, "default_options", {}) or {})
    out.update(user or {})
    return out


def count_decisive(registry: Mapping[str, Any], selected: Mapping[str, Any]) -> int:
    return sum(1 for name in selected if getattr(registry[name], "strength", "") == DECISIVE)

"""activation_matching: do two views of the MLP units' *activations* agree on a matching?

Zhu et al.'s phi_MATCH (arXiv 2502.12292, ``tracing/statistics/match.py``): run both models on
the same probe tokens, record every MLP layer's gate and up projection outputs (hidden units x
tokens), match A's units to B's once by their gate activations and once by their up
activations (linear assignment), and test whether the two matchings agree (Spearman rho of
the two matched-index vectors, one-sided). A copy yields the same correspondence from both
views whatever order its units were put in; independent models yield unrelated matchings.
Layers are combined with Fisher's method (Bonferroni within layers that share a layer of the
other model after a many-to-one depth alignment, as in ``mlp_matching``).

What it sees that weight-space checks cannot: activations are functions of the input tokens
alone, so every output-preserving re-parameterisation leaves them unchanged -- a rotated
residual stream (whatever the embeddings say), folded norm gains, permuted hidden units and
heads, per-head Q/K and V/O maps; SwiGLU's ``up * s, down / s`` rescaling is absorbed by
comparing activations by cosine (the gate cannot be rescaled, the up view by ``|cos|``, blind
to a unit's sign and scale). Different widths (pruned MLPs) are matched rectangularly,
different depths paired by a CKA of the layers' activations (unit-order invariant).

What it cannot see: an MLP re-trained from scratch to mimic a layer (the units are new;
Zhu et al.'s generalised test distils MLPs first), mixture-of-experts layers (no forward
here), families without a forward implementation, models whose weights are not at hand
(fingerprint-only references), and vocabularies too disjoint to spell the probe.

The p-value is approximate: phi_MATCH's null is that two views do not agree by themselves,
and Zhu et al. report that it "empirically behaves like a p-value" (near-uniform on
independent pairs); it is not exact like ``mlp_matching``'s order arm. Subsampling the query
units (``max_units`` of the narrower MLP, a seeded choice independent of the activations)
keeps the test as valid as on all units: it is the same test on fewer units.

Early stop: with equal depths, layers are run in lock-step and the run stops once the
Fisher combination so far, times the number of layer pairs ``K`` (Bonferroni over the ``K``
places it could stop), is below ``unit_matching.STOP_P`` and 20 orders of magnitude below
``alpha`` (:class:`~modelprint.checks.unit_matching.EarlyStop`, shared with mlp_matching and
moe_upcycling). The reported p is then that Bonferroni-corrected value, valid as it stands; a
run that does not stop reports the Fisher value over all layers, whose false-positive rate the
stopping rule can raise by at most ``K * STOP_P``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, ClassVar, TypeVar

import numpy as np

from modelprint._blas import single_thread_blas
from modelprint._median import median
from modelprint.activations.forward import LayerActivations
from modelprint.checks.base import DECISIVE, Evidence, ModelView
from modelprint.checks.mlp_matching import pair_layers
from modelprint.checks.pipeline import WORKERS, ordered_map
from modelprint.checks.unit_matching import (
    LN10,
    EarlyStop,
    assign,
    combine,
    cosine,
    layer_similarity,
    spearman_logp,
    subsample_units,
    to_p,
)

A = TypeVar("A")
B = TypeVar("B")


@dataclass(frozen=True)
class LayerMatch:
    rho: float
    logp: float
    agreement: float            # fraction of query units both views send to the same unit
    gate_cosine: float          # mean matched cosine (gate view)
    up_cosine: float            # mean matched |cosine| (up view)
    tested_units: int
    units_a: int
    units_b: int


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelprint-second")


def _both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """``(first(), second())`` with ``second`` on the check's second thread meanwhile: both
    forwards of a layer, both models' whole forwards, both assignments of a layer (numpy
    and scipy's solver release the GIL, so each gets a core)."""
    job = _pool().submit(second)
    return first(), job.result()


def match_layer(a: LayerActivations, b: LayerActivations, max_units: int,
                key: tuple[int, int], inline: bool = False) -> LayerMatch:
    """phi_MATCH on one pair of layers: the narrower MLP's units (a seeded subsample of at
    most ``max_units``) matched into the other MLP's units by each view."""
    ua, ub = a.gate.shape[1], b.gate.shape[1]
    q, t = (a, b) if ua <= ub else (b, a)
    pick = subsample_units(q.gate.shape[1], max_units, "activations", *key)
    c_gate = cosine([q.gate[:, pick].T], [t.gate.T])
    c_up = np.abs(cosine([q.up[:, pick].T], [t.up.T]))
    if inline:      # the caller runs layers side by side (``pipeline.ordered_map``)
        (m_gate, cos_gate), (m_up, cos_up) = assign(c_gate), assign(c_up)
    else:           # the two assignments are independent: one a core
        (m_gate, cos_gate), (m_up, cos_up) = _both(lambda: assign(c_gate),
                                                   lambda: assign(c_up))
    rho, logp = spearman_logp(m_gate.astype(np.float64), m_up.astype(np.float64))
    return LayerMatch(rho, logp, float(np.mean(m_gate == m_up)), float(np.mean(cos_gate)),
                      float(np.mean(cos_up)), len(pick), ua, ub)


def _record(m: LayerMatch, i: int, j: int) -> dict[str, Any]:
    return {"layer_a": i, "layer_b": j, "rho": m.rho, "p_value": to_p(m.logp),
            "log10_p": m.logp / LN10, "agreement": m.agreement,
            "gate_cosine": m.gate_cosine, "up_cosine": m.up_cosine,
            "tested_units": m.tested_units, "units_a": m.units_a, "units_b": m.units_b}


def _features(act: LayerActivations) -> np.ndarray:
    """(tokens x tokens) features with the same token Gram as the layer's gate and up
    activations side by side (``V sqrt(w)`` from the Gram's eigendecomposition): CKA over
    tokens is then exact and invariant to the order of the units, at a cost independent of
    the MLP width."""
    x = np.concatenate([act.gate, act.up], axis=1).astype(np.float64)
    w, v = np.linalg.eigh(x @ x.T)
    return v * np.sqrt(np.clip(w, 0.0, None))


@dataclass
class _Setup:
    runs: tuple[Any, Any]
    probe: Any
    approximations: list[str]


class ActivationMatching:
    name: ClassVar[str] = "activation_matching"
    strength: ClassVar[str] = DECISIVE
    default_options: ClassVar[dict[str, Any]] = {
        "alpha": 1e-6, "max_units": 256, "probe_tokens": 128, "min_tokens": 32,
        "early_stop": True, "layer_map": None}
    description: ClassVar[str] = (
        "Runs both models on modelprint's shipped probe text (tokens both vocabularies hold) "
        "and, layer by layer, matches MLP hidden units once by their gate activations and once "
        "by their up activations; a copy's two matchings agree whatever its units' order "
        "(Spearman, Fisher over layers; Zhu et al.'s phi_MATCH). Invariant to a rotated "
        "residual stream, folded norms, permuted units and heads and rescaled SwiGLU units, "
        "which hide a copy from weight-space checks. The p-value is approximate (phi_MATCH "
        "behaves like one empirically). Needs both models' weights, a forward implementation "
        "of the family (llama, mistral, qwen2, qwen3, gemma 1-3; dense MLPs); blind to MLPs "
        "re-trained from scratch."
    )

    def compute(self, a: ModelView, b: ModelView, options: dict[str, Any]) -> Evidence:
        alpha = float(options.get("alpha", 1e-6))
        setup = _prepare(a, b, options)
        if isinstance(setup, str):
            return Evidence.not_applicable(self.name, self.strength, setup, alpha)
        from modelprint.activations.forward import NoForward

        # one BLAS thread for everything but a big layer's forward (``forward_threads`` raises
        # it on this thread), as under the engine: worker threads cannot set their own count
        # (OpenBLAS ignores it, ``_blas``), so without this a direct call's numbers depended on
        # which thread's scope was open when (a CI flake of the side-by-side test)
        try:
            with single_thread_blas():
                return self._compare(setup, options, alpha)
        except NoForward as exc:
            return Evidence.not_applicable(self.name, self.strength, str(exc), alpha)

    def _compare(self, setup: _Setup, options: dict[str, Any], alpha: float) -> Evidence:
        run_a, run_b = setup.runs
        max_units = int(options.get("max_units", 256))
        num_a, num_b = run_a.spec.num_layers, run_b.spec.num_layers
        layer_map = options.get("layer_map")
        records: list[dict[str, Any]] = []
        pairs: list[tuple[int, int]] = []
        logps: list[float] = []
        sim: np.ndarray | None = None
        early = bool(options.get("early_stop", True))
        lockstep = num_a == num_b and not layer_map
        ran = 0          # layers forwarded in lock-step (one may run ahead of an early stop)
        if lockstep:
            stop = EarlyStop(num_a, alpha, early)
            how = "identity (equal depth)"
            side_by_side = _side_by_side(setup)

            def matched(item: tuple[int, tuple[LayerActivations, LayerActivations]]
                        ) -> LayerMatch:
                i, (xa, xb) = item
                return match_layer(xa, xb, max_units, (i, i), inline=side_by_side)

            # small models: the next layer's forward and matching run while this one's
            # assignments finish (one extra layer at most when it stops); a 7B-class layer's
            # forward is too costly to run ahead

            def forwarded() -> Iterator[tuple[int, tuple[LayerActivations, LayerActivations]]]:
                nonlocal ran
                for item in enumerate(_lockstep(run_a, run_b, side_by_side)):
                    ran += 1
                    yield item

            with closing(ordered_map(matched, forwarded(),
                                     WORKERS if side_by_side else 1)) as layers:
                for i, m in enumerate(layers):
                    records.append(_record(m, i, i))
                    pairs.append((i, i))
                    logps.append(m.logp)
                    if stop.should_stop(i + 1, combine(pairs, logps)[0]):
                        break
        else:
            if _side_by_side(setup):
                acts_a, acts_b = _both(lambda: _all_layers(run_a), lambda: _all_layers(run_b))
            else:
                acts_a, acts_b = _all_layers(run_a), _all_layers(run_b)
            la, lb = list(range(num_a)), list(range(num_b))

            def similarity() -> np.ndarray:
                return layer_similarity({i: _features(x) for i, x in enumerate(acts_a)},
                                        {j: _features(x) for j, x in enumerate(acts_b)},
                                        la, lb)

            pairs, how, sim = pair_layers(num_a, num_b, la, lb, layer_map, similarity)
            how = how.replace("MLP-weight CKA", "CKA of the MLP activations")
            # every layer ran (the pairing needs them all); the matching can still stop
            stop = EarlyStop(len(pairs), alpha, early)
            def matched_pair(ij: tuple[int, int]) -> LayerMatch:
                return match_layer(acts_a[ij[0]], acts_b[ij[1]], max_units, ij, inline=True)

            with closing(ordered_map(matched_pair, pairs)) as results:
                for done, ((i, j), m) in enumerate(zip(pairs, results, strict=False), 1):
                    records.append(_record(m, i, j))
                    logps.append(m.logp)
                    if stop.should_stop(done, combine(pairs[:done], logps)[0]):
                        break
        if not records:
            return Evidence.not_applicable(self.name, self.strength,
                                           "no layer pair to compare", alpha)
        logp, groups = combine(pairs[:len(logps)], logps)
        logp = stop.correct(logp)
        stopped = stop.stopped_after
        indicates = bool(logp <= math.log(alpha))
        rhos = np.array([r["rho"] for r in records])
        agree = float(np.mean([r["agreement"] for r in records]))
        n = len(records)
        if indicates:
            summary = (f"{n} layers: the MLP units' gate and up activations on the probe pick "
                       f"the same partner for {agree:.0%} of units (median Spearman rho "
                       f"{median(rhos):.3f}): the units compute alike, in whatever order")
        else:
            summary = (f"{n} layers: gate and up activations match the MLP units to unrelated "
                       f"partners (median Spearman rho {median(rhos):.3f}, same partner for "
                       f"{agree:.0%})")
        if stopped is not None:
            summary += (f"; stopped after {stopped} of {stop.looks} layer"
                        f"{'s' if lockstep else ' pairs'}, the evidence being beyond doubt")
        probe = setup.probe
        return Evidence(
            check=self.name, strength=self.strength, applicable=True,
            score=float(np.mean(rhos)), threshold=alpha, p_value=to_p(logp),
            indicates_derivation=indicates, summary=summary,
            details={
                "statistic": "Spearman rho between the gate-activation and the up-activation "
                             "matchings of MLP units (phi_MATCH)",
                "p_value_method": "approximate (phi_MATCH 'behaves like a p-value' "
                                  "empirically): one-sided Spearman per layer (t tail, floored "
                                  "at 1/n!), Bonferroni within layers sharing a layer, Fisher "
                                  "across layers; after an early stop times the number of layer "
                                  "pairs; p floored at the smallest float64, exact value in "
                                  "log10_p",
                "log10_p": logp / LN10, "independent_groups": groups,
                "probe": {"tokens": len(probe), "shared_vocabulary": probe.shared_vocabulary,
                          "same_vocabulary": probe.same_vocabulary,
                          "skipped_characters": probe.skipped_chars,
                          "recorded_positions": len(probe) - 1,
                          "first_tokens": "".join(probe.strings[:24])},
                "layer_pairing": how,
                "layers_run": {"candidate": ran if lockstep else num_a,
                               "reference": ran if lockstep else num_b,
                               "of": [num_a, num_b],
                               "early_stop": lockstep and stopped is not None},
                "layers_compared": stop.to_json(len(records)),
                "similarity_matrix": None if sim is None else np.round(sim, 4).tolist(),
                "forward": {"candidate": run_a.spec.family, "reference": run_b.spec.family,
                            "approximations": setup.approximations,
                            "layers_from_cache": {"candidate": run_a.cached_layers,
                                                  "reference": run_b.cached_layers}},
                "per_layer": records,
                "null": {"description": "independent models: the two views' matchings are "
                                        "unrelated, each layer's rho near 0 (sd about "
                                        "1/sqrt(n-1) for n tested units)"},
            },
        )


def _side_by_side(setup: _Setup) -> bool:
    """Whether the two models' forwards run on two threads, one each: when each layer's
    products are small enough to run on one BLAS thread (``forward.parallel_layer``), which
    is every model up to a few billion parameters -- then the second core would idle. A
    7B-class layer already uses every core for its products."""
    from modelprint.activations.forward import parallel_layer

    tokens = len(setup.probe) + 2
    return not any(parallel_layer(run.spec, tokens) for run in setup.runs)


def _lockstep(run_a: Any, run_b: Any, side_by_side: bool = False
              ) -> Iterator[tuple[LayerActivations, LayerActivations]]:
    """Both models one layer at a time (only one layer's tensors of each are held); with
    ``side_by_side`` the reference's layer runs on a second thread while this one runs the
    candidate's (numpy releases the GIL in the products and conversions)."""
    for i in range(run_a.spec.num_layers):
        if side_by_side:
            xa, xb = _both(partial(run_a.step, i), partial(run_b.step, i))
        else:
            xa, xb = run_a.step(i), run_b.step(i)
        assert xa is not None and xb is not None
        yield xa, xb


def _all_layers(run: Any) -> list[LayerActivations]:
    out = []
    for i in range(run.spec.num_layers):
        x = run.step(i)
        assert x is not None
        out.append(x)
    return out


def _run(view: ModelView, spec: Any, ids: list[int]) -> Any:
    """One model's forward on the probe, through the activation cache (the forward itself
    only when a layer is not cached)."""
    from modelprint.activations.cache import CachedRun, run_key
    from modelprint.activations.forward import DecoderRun, bos_id

    weights = view.weights
    assert weights is not None
    bos = bos_id(weights)
    key = run_key(dict(view.fingerprint.model.files or {}), spec, bos, ids)
    return CachedRun(spec, key, lambda: DecoderRun(weights, spec, ids, bos))


def _prepare(a: ModelView, b: ModelView, options: dict[str, Any]) -> _Setup | str:
    """The two forward runs and the probe, or why the check does not apply."""
    from modelprint.activations.forward import (
        NoForward,
        decoder_spec,
        vocabulary_of,
    )
    from modelprint.activations.probe import shared_probe

    for side, view in (("candidate", a), ("reference", b)):
        if view.weights is None:
            return (f"the {side} has no weights at hand (a fingerprint-only reference): "
                    "activations need a forward pass of both models")
    specs = []
    for side, view in (("candidate", a), ("reference", b)):
        try:
            specs.append(decoder_spec(view.weights))
        except NoForward as exc:
            return f"the {side}: {exc}"
        if not view.fingerprint.has_role("mlp.gate"):
            return f"the {side} has no gated MLP (gate and up projections)"
    vocab_a, vocab_b = vocabulary_of(a.weights), vocabulary_of(b.weights)
    if not vocab_a or not vocab_b:
        which = "candidate" if not vocab_a else "reference"
        return f"the {which} has no vocabulary (tokenizer) to spell the probe text with"
    limit = int(options.get("probe_tokens", 128))
    probe = shared_probe(vocab_a, vocab_b, limit)
    need = int(options.get("min_tokens", 32))
    if len(probe) < need:
        return (f"only {len(probe)} probe tokens are spelled by tokens both vocabularies hold "
                f"({probe.shared_vocabulary} shared token strings); at least {need} needed")
    runs = tuple(_run(view, spec, ids) for view, spec, ids in
                 ((a, specs[0], probe.ids_a), (b, specs[1], probe.ids_b)))
    approx = [f"candidate: {x}" for x in specs[0].approximations] + \
        [f"reference: {x}" for x in specs[1].approximations]
    return _Setup(runs, probe, approx)


CHECK = ActivationMatching()

"""The audit engine: candidate and reference in, evidence, verdict and result JSON out.

The pytest plugin and ``modelprint compare`` both call this module and hold no logic of
their own, so a pair gives the same numbers whichever way it is run.

An :class:`Engine` lives for one session (one pytest process, one CLI call). It loads each
model once and caches each check's evidence per (candidate, reference, check, options), so
the per-check test items and the verdict item of a pair share one computation.

Significance: the verdict tests decisive checks at ``alpha / n`` where ``n`` is the number of
references in the audit times the number of decisive checks selected (Bonferroni), so an
audit against many references does not become more likely to call an independent model
derived just because it asked more questions.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelprint import __version__
from modelprint._atomic import atomic_write_text
from modelprint._blas import single_thread_blas
from modelprint.checks.base import DECISIVE, Evidence, ModelView
from modelprint.errors import InputError

DEFAULT_ALPHA = 1e-6
RESULT_FORMAT = "modelprint.result/1"
VERDICTS = ("derived", "independent", "inconclusive")
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class Target:
    """A model to load: the reference as the user wrote it and the directory it is relative to."""

    reference: str
    base_dir: Path | None = None
    name: str | None = None

    def key(self) -> str:
        """Identity within a session: the absolute path, or the hub reference."""
        if self.reference.startswith("hf:"):
            return self.reference
        path = Path(self.reference).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return str(path.resolve())

    @property
    def display(self) -> str:
        return self.name or self.reference


@dataclass(frozen=True)
class Outcome:
    """One test item's result: ``passed``, ``failed`` or ``skipped``, and why."""

    status: str
    message: str


# -- the engine ----------------------------------------------------------------------------

ModelLoader = Callable[..., ModelView]


#: The check whose layer alignment the other per-layer checks reuse when depths differ.
LAYER_ALIGNER = "attention_cka"


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
        """Load both models, the second fingerprinted in a child process while this process
        fingerprints the first (``modelprint.prefetch``); the same result as loading them one
        after the other, on two cores instead of one."""
        from modelprint import prefetch

        started = None
        if (self.use_cache and self._loader is None and first.key() not in self._models
                and second.key() not in self._models and first.key() != second.key()):
            started = prefetch.start([(second.reference, second.base_dir)], self.offline)
        try:
            self.model(first)
            self.model(second)  # the child's lock is waited for; a cached entry is read
        finally:
            prefetch.finish(started)

    def evidence(self, candidate: Target, reference: Target, check: str,
                 options: Mapping[str, Any]) -> tuple[Evidence, float]:
        """``check``'s evidence for the pair and the seconds it took (computed once)."""
        key = (candidate.key(), reference.key(), check, _freeze(options))
        hit = self._evidence.get(key)
        if hit is None:
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


def merged_options(check: Any, user: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(getattr(check, "default_options", {}) or {})
    out.update(user or {})
    return out


def count_decisive(registry: Mapping[str, Any], selected: Mapping[str, Any]) -> int:
    return sum(1 for name in selected if getattr(registry[name], "strength", "") == DECISIVE)


def _freeze(options: Mapping[str, Any]) -> str:
    return json.dumps(json_safe(dict(options)), sort_keys=True)


@dataclass
class Pair:
    """One (candidate, reference) comparison inside an audit."""

    engine: Engine
    candidate: Target
    reference: Target
    checks: dict[str, dict[str, Any]]
    expect: str | None
    alpha: float
    n_tests: int
    audit: str | None = None
    _timings: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def alpha_per_test(self) -> float:
        return self.alpha / self.n_tests

    def evidence(self, check: str) -> Evidence:
        ev, seconds = self.engine.evidence(self.candidate, self.reference, check,
                                           self.checks[check])
        self._timings[check] = seconds
        return ev

    def all_evidence(self) -> dict[str, Evidence]:
        return {name: self.evidence(name) for name in self.checks}

    def verdict(self) -> tuple[str, str]:
        """``(verdict, reason)`` over every selected check (computing those not yet run)."""
        key = (self.candidate.key(), self.reference.key(), _freeze(self.checks),
               self.alpha, self.n_tests)
        hit = self.engine._verdicts.get(key)
        if hit is None:
            hit = decide(self.all_evidence(), self.alpha, self.n_tests)
            self.engine._verdicts[key] = hit
        return hit

    def check_outcome(self, check: str) -> Outcome:
        return check_outcome(self.evidence(check), self.expect)

    def verdict_outcome(self) -> Outcome:
        verdict, reason = self.verdict()
        return verdict_outcome(verdict, reason, self.expect)

    # -- JSON ---------------------------------------------------------------------------
    def header_json(self) -> dict[str, Any]:
        """What identifies the pair, without running any check."""
        return {
            "audit": self.audit,
            "candidate": self._model_json(self.candidate),
            "reference": {**self._model_json(self.reference), "name": self.reference.display},
            "expect": self.expect,
            "alpha": self.alpha,
            "tests": self.n_tests,
            "alpha_per_test": self.alpha_per_test,
        }

    def check_json(self, check: str) -> dict[str, Any]:
        ev = self.evidence(check)
        impl = self.engine.registry[check]
        return json_safe({**ev.to_json(), "outcome": check_outcome(ev, self.expect).status,
                          "description": getattr(impl, "description", ""),
                          "options": self.checks[check],
                          "seconds": round(self._timings.get(check, 0.0), 4)})

    def to_json(self) -> dict[str, Any]:
        """The full result of the pair (runs every selected check)."""
        verdict, reason = self.verdict()
        checks = {name: self.check_json(name) for name in self.checks}
        out = self.header_json()
        out.update(verdict=verdict, verdict_reason=reason, checks=checks)
        out["outcome"] = pair_outcome(out) if self.expect else None
        return out

    def _model_json(self, target: Target) -> dict[str, Any]:
        out: dict[str, Any] = {"reference": target.reference}
        try:
            fp = self.engine.model(target).fingerprint
        except InputError as exc:
            out["error"] = str(exc)
            return out
        out.update(kind=fp.model.kind, revision=fp.model.revision, files=dict(fp.model.files),
                   architecture=fp.architecture.to_json())
        if fp.model.reference != target.reference:
            out["resolved"] = fp.model.reference
        return json_safe(out)


# -- outcomes: one rule, used by the plugin items and by the JSON ----------------------------

def check_outcome(ev: Evidence, expect: str | None) -> Outcome:
    """A check item: skipped when the check does not apply or gives no information; failed
    when ``expect`` is independent (or unset) and the check indicates derivation."""
    if not ev.applicable:
        return Outcome(SKIPPED, f"{ev.check} not applicable: {ev.reason or ev.summary or '-'}")
    if ev.indicates_derivation is None:
        return Outcome(SKIPPED, f"{ev.check} gives no information: "
                                f"{ev.reason or ev.summary or '-'}")
    if ev.indicates_derivation and expect != "derived":
        return Outcome(FAILED, f"{ev.check} indicates derivation: {ev.summary}")
    return Outcome(PASSED, ev.summary)


def verdict_outcome(verdict: str, reason: str, expect: str | None) -> Outcome:
    """The verdict item: ``expect: derived`` needs a derived verdict; ``independent`` (and
    compare's unset expectation) fails only on a derived verdict."""
    if expect == "derived":
        if verdict == "derived":
            return Outcome(PASSED, f"derived, as expected: {reason}")
        return Outcome(FAILED, f"expected derived, verdict is {verdict}: {reason}")
    if verdict == "derived":
        return Outcome(FAILED, f"expected independent, verdict is derived: {reason}")
    return Outcome(PASSED, f"{verdict}: {reason}")


def pair_outcome(pair: Mapping[str, Any]) -> str:
    """``failed`` when the verdict item or any check item failed (or raised)."""
    if pair.get("errors"):
        return FAILED
    if pair.get("verdict") is not None and verdict_outcome(
            pair["verdict"], pair.get("verdict_reason", ""), pair.get("expect")).status == FAILED:
        return FAILED
    if any(c.get("outcome") == FAILED for c in pair.get("checks", {}).values()):
        return FAILED
    return PASSED


def decide(evidence: Mapping[str, Evidence], alpha: float, n_tests: int) -> tuple[str, str]:
    """``(verdict, reason)`` by :func:`modelprint.verdict.decide` at family-wise level
    ``alpha`` over ``n_tests`` comparisons."""
    from modelprint.verdict import decide as _decide

    result = _decide(evidence, alpha=alpha, n_comparisons=n_tests)
    if result.label not in VERDICTS:
        raise ValueError(f"verdict.decide returned {result.label!r}")
    return result.label, result.reason


# -- pieces of pairs from several processes (pytest-xdist) ------------------------------------

def evidence_from_json(data: Mapping[str, Any]) -> Evidence:
    known = Evidence.__dataclass_fields__
    return Evidence(**{k: v for k, v in data.items() if k in known})


def merge_fragments(fragments: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Assemble pair results from the items that ran, wherever they ran.

    Each test item reports a fragment: ``{"key", "order", "header", "check", "result"}`` for
    a check item, ``{"key", "order", "pair"}`` for a verdict item (the full pair), and
    ``{"key", "order", "header", "check", "error"}`` for an item that raised. When the verdict
    item did not run (deselected with ``-k``, or the run stopped early) the verdict is decided
    here from the checks that did run, and the reason says so.
    """
    pairs: dict[str, dict[str, Any]] = {}
    order: dict[str, tuple[Any, ...]] = {}
    has_verdict: set[str] = set()
    for frag in fragments:
        key = frag["key"]
        order.setdefault(key, tuple(frag.get("order") or ()))
        if "pair" in frag:
            full = dict(frag["pair"])
            previous = pairs.get(key, {})
            full["checks"] = {**previous.get("checks", {}), **full.get("checks", {})}
            full["errors"] = previous.get("errors", []) + full.get("errors", [])
            pairs[key] = full
            has_verdict.add(key)
            continue
        pair = pairs.setdefault(key, {**frag.get("header", {}), "checks": {}, "errors": []})
        if "error" in frag:
            pair.setdefault("errors", []).append({"item": frag.get("check"),
                                                  "error": frag["error"]})
            if frag.get("check") not in (None, "verdict"):
                pair["checks"].setdefault(frag["check"], {
                    "check": frag["check"], "applicable": False, "indicates_derivation": None,
                    "score": None, "threshold": None, "p_value": None, "details": {},
                    "summary": f"error: {frag['error']}", "reason": frag["error"],
                    "error": frag["error"], "outcome": FAILED})
        elif frag.get("check") is not None and frag.get("result") is not None:
            pair["checks"][frag["check"]] = frag["result"]
    from modelprint.checks import check_names

    rank = {name: i for i, name in enumerate(check_names())}
    out = []
    for key in sorted(pairs, key=lambda k: order[k]):
        pair = pairs[key]
        pair["checks"] = dict(sorted(pair["checks"].items(),
                                     key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))
        if key not in has_verdict:
            ran = {n: evidence_from_json(c) for n, c in pair["checks"].items()
                   if "error" not in c}
            if ran:
                verdict, reason = decide(ran, float(pair.get("alpha") or DEFAULT_ALPHA),
                                         int(pair.get("tests") or 1))
                pair["verdict"] = verdict
                pair["verdict_reason"] = (f"partial run (verdict item not run; from "
                                          f"{', '.join(ran)} only): {reason}")
            else:
                pair["verdict"], pair["verdict_reason"] = "inconclusive", "no check ran"
        if not pair.get("errors"):
            pair.pop("errors", None)
        pair["outcome"] = pair_outcome(pair) if pair.get("expect") else None
        out.append(pair)
    return out


# -- the run document ------------------------------------------------------------------------

def build_run(pairs: list[dict[str, Any]], *, alpha: float, command: list[str]) -> dict[str, Any]:
    """The result JSON of CONTRACT.md around a list of pair dicts."""
    return {
        "format": RESULT_FORMAT,
        "modelprint_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(command),
        "alpha": alpha,
        "pairs": pairs,
    }


def write_json(run: Mapping[str, Any], path: str | Path) -> Path:
    """Write atomically, so a reader (or an interrupted run) never leaves half a file."""
    return atomic_write_text(path, json.dumps(json_safe(run), indent=1, allow_nan=False) + "\n")


def write_html(run: Mapping[str, Any], path: str | Path) -> Path:
    """Render the HTML report (modelprint.report); raises ``RuntimeError`` with a readable
    message when the report module is not available."""
    try:
        from modelprint.report import write_report  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        raise RuntimeError(f"HTML report not written: modelprint.report is not available ({exc})"
                           ) from None
    return Path(write_report(dict(run), Path(path)))


def json_safe(obj: Any) -> Any:
    """Plain JSON types only (numpy scalars and arrays converted, NaN/Inf -> null): the
    result crosses process boundaries (pytest-xdist) and ends in strict JSON."""
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):  # also numpy.float64, a float subclass execnet cannot send
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return json_safe(tolist())
    return str(obj)


# -- text table (terminal: pytest failures and `modelprint compare`) ------------------------

def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.2e}"
    return str(value)


def evidence_table(checks: Mapping[str, Mapping[str, Any]], width: int | None = None) -> str:
    """Check, strength, score, threshold, p, indicates, summary: one line per check, cut to
    the terminal width (at least 100 columns)."""
    if width is None:
        import shutil

        width = max(100, shutil.get_terminal_size((120, 24)).columns)
    head = ("check", "strength", "score", "threshold", "p", "indicates", "summary")
    rows = [head] + [
        (name, str(c.get("strength", "")), _fmt(c.get("score")), _fmt(c.get("threshold")),
         _fmt(c.get("p_value")),
         _fmt(c.get("indicates_derivation")) if c.get("applicable", True) else "n/a",
         " ".join(str(c.get("summary") or "").split()))
        for name, c in checks.items()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = []
    for r in rows:
        cells = [cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)]
        line = "  ".join([*cells, r[-1]])
        lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines)

"""The result JSON turned into what the templates show, tolerating partial or odd input.

The report is written at the end of every run, including failed and interrupted ones, so the
run dict may be incomplete: a pair without checks, a check without details, a number stored as
a string. Everything here coerces instead of raising; the templates then only deal with
well-typed values. Nothing in this module knows any particular check: check sections are
looked up by name (see :mod:`modelprint.report`).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Undefined
from markupsafe import Markup, escape

from modelprint.report.svg import fmt_value, number

#: Cell text for a check's item outcome.
OUTCOME_LABELS = {"passed": "pass", "failed": "fail", "skipped": "n.a."}
VERDICTS = ("derived", "independent", "inconclusive")
#: Longest string shown verbatim in generic tables (untrusted text can be huge).
MAX_TEXT = 400


def as_dict(v: Any) -> dict[str, Any]:
    """``v`` when it is a mapping (keys made strings), else an empty dict."""
    return {str(k): val for k, val in v.items()} if isinstance(v, Mapping) else {}


def as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, (list, tuple)) else []


def text(v: Any, limit: int = MAX_TEXT) -> str:
    """Any JSON value as a display string, cut at ``limit`` characters."""
    s = "" if v is None else str(v)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def fmt(v: Any, digits: int = 3) -> str:
    """A number for a table cell: ``digits`` significant digits; '—' when missing. Counts
    stored as floats and magnitudes up to 1e5 are written out in full (1024, not 1.02e+03)."""
    if v is None or v == "" or isinstance(v, Undefined):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if abs(v) < 1e5 and (v.is_integer() or abs(v) >= 10 ** max(digits, 1)):
            return f"{v:.0f}"
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.{max(digits - 1, 1)}e}" if abs(v) >= 1e5 else f"{v:.{digits}g}"
        return fmt_value(v, digits)
    return text(v)


def fmt_p(v: Any) -> str:
    """A p-value: small ones in scientific notation, never rounded to 0. A stored 0 is a
    float underflow (the tail is below ~1e-308), not a certainty, and is shown as such."""
    p = number(v)
    if p is None:
        return "—"
    if p == 0:
        return "< 1e-300"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3g}"


def zscore(values: Any) -> list[float | None]:
    """Curve z-scored over its own points (population sd), gaps kept; a flat curve is only
    centred. This is how the seed plotted depth curves: shape, not level."""
    from modelprint.report.svg import numbers

    vals = numbers(values)
    ok = [v for v in vals if v is not None]
    if not ok:
        return vals
    mean = math.fsum(ok) / len(ok)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in ok) / len(ok))
    scale = sd if sd > 1e-12 * max(abs(v) for v in ok) and sd > 0 else 1.0
    return [None if v is None else (v - mean) / scale for v in vals]


def pluck(rows: Any, key: str) -> list[Any]:
    """``row[key]`` of every row (None where a row is not a mapping or lacks the key)."""
    return [r.get(key) if isinstance(r, Mapping) else None for r in as_list(rows)]


def layer_labels(pairs: Any) -> list[str]:
    """Tooltip labels for aligned layer pairs: ``[3, 5]`` → "layer 3 ↔ 5", ``3`` → "layer 3"."""
    out = []
    for i, p in enumerate(as_list(pairs)):
        if isinstance(p, (list, tuple)) and len(p) == 2:
            out.append(f"layer {text(p[0], 12)} ↔ {text(p[1], 12)}")
        elif p is not None and is_scalar(p):
            out.append(f"layer {text(p, 12)}")
        else:
            out.append(f"layer {i}")
    return out


def is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def scalars(d: Any) -> list[tuple[str, Any]]:
    """The scalar entries of a mapping, in their order (for key/value tables)."""
    return [(k, v) for k, v in as_dict(d).items() if is_scalar(v)]


def numeric_lists(d: Any) -> list[tuple[str, list[float | None]]]:
    """Entries of a mapping that are non-empty lists of numbers (drawn as sparklines)."""
    from modelprint.report.svg import numbers

    return [(k, numbers(v)) for k, v in as_dict(d).items() if _is_number_list(v)]


#: Rows of a list-of-records shown in a generic table (the JSON holds them all).
MAX_ROWS = 40


@dataclass
class GenericEntry:
    """One entry of a details dict as the generic section shows it."""

    kind: str                   # "scalar" | "numbers" | "mapping" | "records" | "other"
    key: str
    value: Any = None           # scalar / list of numbers / list of (k, v)
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    total: int = 0


def generic_entries(d: Any) -> list[GenericEntry]:
    """Every entry of ``d`` in a form a generic table can show: scalars, numeric lists
    (sparklines), flat mappings of scalars (inline), lists of flat records (a small table);
    anything deeper is only named. This is what a check without its own fragment gets."""
    out: list[GenericEntry] = []
    for k, v in as_dict(d).items():
        if is_scalar(v):
            out.append(GenericEntry("scalar", k, v))
        elif _is_number_list(v):
            out.append(GenericEntry("numbers", k, numbers_of(v)))
        elif isinstance(v, Mapping) and 0 < len(v) <= 12 and all(is_scalar(x)
                                                                  for x in v.values()):
            out.append(GenericEntry("mapping", k, [(str(a), b) for a, b in v.items()]))
        elif isinstance(v, list) and v and all(isinstance(r, Mapping) for r in v):
            cols: list[str] = []
            for r in v[:MAX_ROWS]:
                cols.extend(str(c) for c, x in r.items() if is_scalar(x) and str(c) not in cols)
            cols = cols[:10]
            rows = [[r.get(c) if is_scalar(r.get(c)) else None for c in cols]
                    for r in v[:MAX_ROWS]]
            out.append(GenericEntry("records", k, columns=cols, rows=rows, total=len(v)))
        elif isinstance(v, (list, Mapping)) and not v:
            out.append(GenericEntry("scalar", k, "(none)"))
        else:
            out.append(GenericEntry("other", k))
    return out


def _is_number_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(
        x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in v)


def numbers_of(v: Any) -> list[float | None]:
    from modelprint.report.svg import numbers

    return numbers(v)


def short_name(reference: str) -> str:
    """A display name for a reference: the last component of a file-system path (the full
    reference stays in the provenance); ``hf:`` references and plain names as they are."""
    if reference.startswith("hf:") or "/" not in reference.rstrip("/"):
        return reference
    return reference.rstrip("/").rsplit("/", 1)[-1] or reference


@dataclass
class ModelSide:
    """One model of a pair as given in the result JSON."""

    reference: str
    name: str
    kind: str
    revision: str
    files: list[tuple[str, str]]
    architecture: list[tuple[str, Any]]

    @classmethod
    def from_json(cls, raw: Any, fallback: str) -> ModelSide:
        d = as_dict(raw)
        ref = text(d.get("reference")) or fallback
        name = text(d.get("name"))
        return cls(
            reference=ref, name=short_name(ref) if not name or name == ref else name,
            kind=text(d.get("kind")),
            revision=text(d.get("revision")),
            files=[(text(k), text(v)) for k, v in as_dict(d.get("files")).items()],
            architecture=scalars(d.get("architecture")),
        )


@dataclass
class CheckView:
    """One check's evidence for one pair, with the fields the summary needs typed."""

    name: str
    anchor: str
    strength: str
    applicable: bool
    score: Any
    threshold: Any
    p_value: Any
    indicates: bool | None
    summary: str
    reason: str
    outcome: str
    description: str
    details: dict[str, Any]
    raw: dict[str, Any]

    @property
    def outcome_label(self) -> str:
        if self.outcome == "skipped" and self.applicable:
            return "no info"  # applies, but e.g. flat curves or no calibration
        if self.outcome in OUTCOME_LABELS:
            return OUTCOME_LABELS[self.outcome]
        return "n.a." if not self.applicable else "—"

    @property
    def outcome_class(self) -> str:
        return {"pass": "pass", "fail": "fail"}.get(self.outcome_label, "na")


@dataclass
class PairView:
    index: int
    anchor: str
    audit: str
    candidate: ModelSide
    reference: ModelSide
    expect: str
    verdict: str
    verdict_reason: str
    outcome: str
    checks: list[CheckView] = field(default_factory=list)
    #: other scalar entries of the pair (e.g. the alpha used), shown in the provenance
    extra: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def reason_head(self) -> str:
        """The first clause of the verdict reason (the decisive one) for the summary table;
        the whole reason is shown with the pair's evidence."""
        head = self.verdict_reason.split("; ", 1)[0]
        return head if head == self.verdict_reason else head + " …"

    @property
    def verdict_class(self) -> str:
        return self.verdict if self.verdict in VERDICTS else "unknown"

    @property
    def architecture_rows(self) -> list[tuple[str, Any, Any]]:
        """Architecture facts side by side: (key, candidate value, reference value)."""
        ca, ra = dict(self.candidate.architecture), dict(self.reference.architecture)
        keys = list(dict.fromkeys([*ca, *ra]))
        return [(k, ca.get(k), ra.get(k)) for k in keys]

    def check(self, name: str) -> CheckView | None:
        return next((c for c in self.checks if c.name == name), None)


def _check_view(name: str, raw: Any, anchor: str) -> CheckView:
    d = as_dict(raw)
    indicates = d.get("indicates_derivation")
    return CheckView(
        name=name, anchor=anchor, strength=text(d.get("strength")),
        applicable=d.get("applicable") is not False,
        score=d.get("score") if is_scalar(d.get("score")) else None,
        threshold=d.get("threshold") if is_scalar(d.get("threshold")) else None,
        p_value=d.get("p_value") if is_scalar(d.get("p_value")) else None,
        indicates=indicates if isinstance(indicates, bool) else None,
        summary=text(d.get("summary"), 2000), reason=text(d.get("reason"), 2000),
        outcome=text(d.get("outcome")), description=text(d.get("description"), 4000),
        details=as_dict(d.get("details")), raw=d,
    )


_KNOWN_PAIR_KEYS = {"audit", "candidate", "reference", "expect", "verdict", "verdict_reason",
                    "outcome", "checks"}


def _pair_view(raw: Any, index: int) -> PairView:
    d = as_dict(raw)
    anchor = f"pair-{index + 1}"
    checks = [_check_view(text(name, 80), ev, f"{anchor}-check-{j + 1}")
              for j, (name, ev) in enumerate(as_dict(d.get("checks")).items())]
    return PairView(
        index=index, anchor=anchor, audit=text(d.get("audit")),
        candidate=ModelSide.from_json(d.get("candidate"), "(unknown candidate)"),
        reference=ModelSide.from_json(d.get("reference"), "(unknown reference)"),
        expect=text(d.get("expect")), verdict=text(d.get("verdict")) or "unknown",
        verdict_reason=text(d.get("verdict_reason"), 2000), outcome=text(d.get("outcome")),
        checks=checks, extra=[(k, v) for k, v in scalars(d) if k not in _KNOWN_PAIR_KEYS],
    )


@dataclass
class RunView:
    version: str
    created: str
    command: str
    alpha: Any
    pairs: list[PairView]
    check_names: list[str]
    descriptions: list[tuple[str, str, str]]     # (name, strength, description)
    counts: dict[str, int]
    extra: list[tuple[str, Any]]

    @property
    def failed(self) -> int:
        return sum(1 for p in self.pairs if p.outcome == "failed")


_KNOWN_RUN_KEYS = {"format", "modelprint_version", "created", "command", "alpha", "pairs"}


def build_view(run: Any) -> RunView:
    """Normalise a result dict (possibly partial) into the report's view of it.

    Pairs whose audit failed come first; otherwise the run's order is kept. Check columns
    appear in the order checks first occur across pairs.
    """
    d = as_dict(run)
    pairs = [_pair_view(p, i) for i, p in enumerate(as_list(d.get("pairs")))]
    pairs.sort(key=lambda p: (p.outcome != "failed", p.index))
    names: list[str] = []
    desc: dict[str, tuple[str, str]] = {}
    for p in pairs:
        for c in p.checks:
            if c.name not in names:
                names.append(c.name)
            if c.description and c.name not in desc:
                desc[c.name] = (c.strength, c.description)
            elif c.name not in desc and c.strength:
                desc.setdefault(c.name, (c.strength, ""))
    cmd = d.get("command")
    command = shlex.join(text(a) for a in cmd) if isinstance(cmd, list) else text(cmd)
    counts = {v: sum(1 for p in pairs if p.verdict == v) for v in VERDICTS}
    return RunView(
        version=text(d.get("modelprint_version")), created=text(d.get("created")),
        command=text(command, 4000), alpha=d.get("alpha") if is_scalar(d.get("alpha")) else None,
        pairs=pairs, check_names=names,
        descriptions=[(n, *desc.get(n, ("", ""))) for n in names], counts=counts,
        extra=[(k, v) for k, v in scalars(d) if k not in _KNOWN_RUN_KEYS],
    )


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def wbr(name: Any) -> Markup:
    """A check or key name with line-break opportunities after underscores and dots, so long
    names (``embedding_alignment``) do not widen table columns."""
    return Markup(re.sub(r"([_.])", r"\1<wbr>", str(escape(text(name, 200)))))


def fragment_name(check: str) -> str | None:
    """Template path of a check's own section, or None when the name cannot be one."""
    return f"checks/{check}.html.j2" if _SAFE_NAME.match(check) else None

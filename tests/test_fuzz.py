"""Hostile input through the real entry points: a clean one-line error or a normal result,
never a traceback, a hang or a memory blow-up (issue 16).

Three parts: the committed corpus of the nastiest inputs (``tests/data/fuzz_corpus``,
written by ``benchmarks/fuzz/corpus.py``), replayed one by one; a quick Hypothesis run per
input kind (the same generators as the long run, ``benchmarks/fuzz/run.py``, whose counts are
in ``benchmarks/fuzz/RESULTS.md``); and audit files collected by pytest itself (pytester).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from benchmarks.fuzz.harness import Outcome, peak_rss, peak_rss_reset, run_case
from benchmarks.fuzz.inputs import KINDS, place, write_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelprint.checks.canonical import fold_columns
from modelprint.checks.unit_matching import assign, cosine
from modelprint.models import clear_memo

from .strategies import fuzz_cases

CORPUS = Path(__file__).parent / "data" / "fuzz_corpus"
CORPUS_FILES = sorted(p for p in CORPUS.glob("*/*") if "__" in p.name)
#: What the issue allows per input (the long run enforces the same limits from outside).
SECONDS, RSS = 10.0, 1 << 30


def _assert_clean(out: Outcome, seconds: float, what: str) -> None:
    assert out.clean, f"{what}: {out.outcome}: {out.detail}"
    assert seconds < SECONDS, f"{what}: took {seconds:.1f} s"
    if _MEASURED:   # a per-input peak (else it would be this worker's lifetime peak)
        assert peak_rss() < RSS, f"{what}: peak RSS {peak_rss() >> 20} MB"


_MEASURED = False


def _run(args: list[str], work: Path) -> tuple[Outcome, float]:
    global _MEASURED
    clear_memo()
    _MEASURED = peak_rss_reset()
    start = time.perf_counter()
    out = run_case(args, work)
    return out, time.perf_counter() - start


def test_the_corpus_covers_every_kind() -> None:
    assert {p.parent.name for p in CORPUS_FILES} == set(KINDS)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_input_is_refused_cleanly(path: Path, tmp_path: Path) -> None:
    """Every corpus input is refused with one line naming the file (``file:line`` for audit
    files); none of them is a valid input."""
    kind, (case, filename) = path.parent.name, path.name.split("__", 1)
    args = place(kind, filename, path.read_bytes(), tmp_path / "case")
    out, seconds = _run(args, tmp_path)
    _assert_clean(out, seconds, path.name)
    if not case.startswith("ignored_"):   # a file not needed (a model card) is read around
        assert out.outcome == "error", f"{path.name} was accepted"


def test_the_worst_cases_name_the_field(tmp_path: Path) -> None:
    """The escapes issue 16 reported now say which field is wrong."""
    expect = {
        "fingerprint/sketch_shape_64x100000__reference.fp.json": "sketches.matrix[",
        "fingerprint/model_is_a_list__reference.fp.json": "model: must be an object",
        "fingerprint/norm_gain_1e300__reference.fp.json": "vectors['norm.mlp'][1][15]: 9.7e+299 "
                                                          "is beyond the float32 range",
        "fingerprint/nested_20000_deep__reference.fp.json": "nested at least 20000 levels deep, "
                                                            "over the limit of 16",
        "config/num_hidden_layers_2e40__config.json": "num_hidden_layers is 1099511627776",
        "gguf/string_length_2e63__model.gguf": "over the 16777216 byte limit",
        "audit/billion_laughs__x.audit.yaml": "aliases",
        "audit/nested_flow_20000__x.audit.yaml": "nested deeper than 32 levels",
    }
    for name, words in expect.items():
        kind, (_, filename) = name.split("/")[0], name.split("/")[1].split("__", 1)
        out, _ = _run(place(kind, filename, (CORPUS / name).read_bytes(),
                            tmp_path / name.replace("/", "-")), tmp_path)
        assert out.outcome == "error" and words in out.detail, (name, out.detail)


@pytest.mark.parametrize("gain", [3.3e38, -3.3e38])
def test_a_gain_at_the_edge_of_float32_is_compared_not_crashed(gain: float,
                                                               tmp_path: Path) -> None:
    """A gain just inside the schema's range is a valid fingerprint: compared, not refused."""
    name = "norm_gain_1e300__reference.fp.json"
    data = (CORPUS / "fingerprint" / name).read_bytes().replace(b"9.7e+299", repr(gain).encode())
    out, seconds = _run(place("fingerprint", name.split("__")[1], data, tmp_path / "c"),
                        tmp_path)
    _assert_clean(out, seconds, name)
    assert out.outcome == "accepted", out.detail


def test_folding_a_gain_at_the_edge_of_float32_keeps_cosines_finite() -> None:
    """The long run's one traceback: a huge finite gain folded into float16 sketch values
    made them Inf, the cosine cost matrix NaN, and the assignment raised. The fold widens to
    float64 and unit rows are scaled before their norm, so the cosines stay exact."""
    rng = np.random.default_rng(0)
    m = rng.uniform(1.0, 4.0, size=(5, 8)).astype(np.float16)
    gain = np.ones(8)
    gain[2] = 3.3e38
    folded = fold_columns(m, gain)
    assert np.isfinite(folded).all()
    c = cosine([folded], [folded])
    assert np.isfinite(c).all() and np.allclose(np.diag(c), 1.0, atol=1e-6)
    matched, _ = assign(c)
    assert list(matched) == list(range(5))


_QUICK = settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _fuzz_one(kind: str, rnd: random.Random) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        args = write_case(kind, rnd, work / "case")
        out, seconds = _run(args, work)
        _assert_clean(out, seconds, f"{kind} input")


@pytest.mark.parametrize("kind", KINDS)
@_QUICK
@given(data=st.data())
def test_fuzz_kind(kind: str, data: st.DataObject) -> None:
    """safetensors headers and bodies, GGUF headers, config.json and the repository's text
    files, tokenizer files (via ``modelprint fingerprint``), fingerprint files (as
    ``modelprint compare``'s reference) and audit files (as collection loads them)."""
    _fuzz_one(*data.draw(fuzz_cases(kind)))


@pytest.mark.parametrize("name", ["billion_laughs", "nested_flow_20000", "python_tag"])
def test_pytest_collects_a_hostile_audit_file_as_a_fast_collection_error(
        pytester: pytest.Pytester, name: str) -> None:
    """What a user running ``pytest`` sees: exit 2, the collection error at ``file:line``,
    within seconds; the ``!!python`` tag runs nothing."""
    data = (CORPUS / "audit" / f"{name}__x.audit.yaml").read_bytes()
    place("audit", "bad.audit.yaml", data, pytester.path)
    start = time.perf_counter()
    result = pytester.runpytest("-p", "no:cacheprovider", "bad.audit.yaml")
    assert time.perf_counter() - start < SECONDS
    assert result.ret == pytest.ExitCode.INTERRUPTED   # collection errors: exit 2
    result.stdout.fnmatch_lines(["*bad.audit.yaml:[0-9]*: *"])
    assert "Traceback" not in result.stdout.str()
    assert not (pytester.path / "pwned-by-yaml").exists()   # the !!python tag ran nothing

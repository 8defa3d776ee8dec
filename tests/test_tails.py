"""The light tails (no scipy.stats import) equal scipy.stats, including the far tails."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from modelprint._tails import average_ranks, norm_sf, t_logsf, t_sf


@pytest.mark.parametrize("z", [-40.0, -3.0, 0.0, 1.5, 8.0, 37.0, 40.0])
def test_norm_sf(z: float) -> None:
    assert norm_sf(z) == pytest.approx(float(stats.norm.sf(z)), rel=1e-12, abs=0)


@pytest.mark.parametrize("df", [1.0, 2.5, 14.0, 574.0])
@pytest.mark.parametrize("t", [-20.0, -1.0, 0.0, 0.7, 6.0, 60.0, 1e6])
def test_t_tails(t: float, df: float) -> None:
    assert t_sf(t, df) == pytest.approx(float(stats.t.sf(t, df)), rel=1e-10, abs=0)
    want = float(stats.t.logsf(t, df))
    got = t_logsf(t, df)
    assert got == want if math.isinf(want) else got == pytest.approx(want, rel=1e-10)


@given(st.floats(-60.0, 1e4), st.floats(1.0, 5000.0))
def test_t_tails_everywhere(t: float, df: float) -> None:
    want = float(stats.t.sf(t, df))
    got = t_sf(t, df)
    if want > 1e-300:
        # near t = 0 scipy goes through x = df / (df + t^2), which rounds to 1 and leaves it
        # sqrt(eps) ~ 1.5e-8 of absolute accuracy (found by Hypothesis: t = 3.7e-10 and t =
        # 1e-8 with df = 1, where scipy is 1.6e-9 off the exact 0.5 - atan(t)/pi that t_sf
        # returns); ours is held to the closed forms there by the next test
        assert got == pytest.approx(want, rel=1e-10, abs=2e-8 if abs(t) < 1e-6 else 0)
    else:   # scipy's underflow is ours too (or a subnormal of the same order)
        assert got <= 1e-290


@given(st.floats(-1e-3, 1e-3))
def test_t_tails_near_zero_equal_the_closed_forms(t: float) -> None:
    """df = 1 (Cauchy) and df = 2 have closed forms, exact where scipy rounds to 0.5."""
    assert t_sf(t, 1.0) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-14)
    assert t_sf(t, 2.0) == pytest.approx(0.5 - t / (2.0 * math.sqrt(2.0 + t * t)), rel=1e-14)


@given(st.floats(-40.0, 40.0))
def test_norm_tails_everywhere(z: float) -> None:
    want = float(stats.norm.sf(z))
    assert norm_sf(z) == pytest.approx(want, rel=1e-12, abs=1e-300)


@given(st.lists(st.integers(-5, 5), min_size=1, max_size=40))
def test_average_ranks_equal_rankdata(values: list[int]) -> None:
    np.testing.assert_allclose(average_ranks(np.array(values)), stats.rankdata(values))


def test_checks_import_without_scipy_stats_or_special() -> None:
    """The point of the module: an audit's checks do not pay for importing scipy.stats (1.5-2
    s) or scipy.special (0.2 s)."""
    code = ("import sys, modelprint.checks as c; c.all_checks(); "
            "import modelprint.calibration.nulls, modelprint.verdict; "
            "print('scipy.stats' in sys.modules, 'scipy.special' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False False"

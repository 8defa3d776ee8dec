"""``modelprint._median.median`` equals ``np.median`` on float64 values."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from modelprint._median import median


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=40))
def test_equals_numpy(values: list[float]) -> None:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = float(np.median(np.asarray(values, dtype=np.float64)))
    got = median(values)
    assert (math.isnan(got) and math.isnan(want)) or got == want


def test_a_matrix_is_flattened() -> None:
    m = np.array([[3.0, 1.0], [4.0, 2.0]])
    assert median(m) == float(np.median(m)) == 2.5


def test_does_not_import_numpy_ma() -> None:
    code = ("import sys; from modelprint._median import median; median([3.0, 1.0, 2.0]); "
            "print('numpy.ma' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"

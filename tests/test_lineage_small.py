"""Verdicts on a cached subset of the ``--small`` lineage zoo (real training on CPU).

The tiny profile (``test_lineage_zoo.py``) checks the zoo's mechanics in seconds; this file
asks the question the benchmark is for, on models trained long enough to be clearly below the
unigram baseline: independently trained models of one recipe -- the hard negatives that
fooled the seed statistic -- are never called derived, and the derivatives are, with no null
panel at hand (as in a user's audit). About a minute of CPU training, once per session.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from benchmarks.lineage.zoo import build_zoo

from tests.test_lineage_zoo import zoo_verdict as _verdict

SUBSET = ["llama-s.seed0", "llama-s.seed1", "llama-s.seed0.sft_a",
          "llama-s.seed0.permute_residual", "llama-s.seed0.layer_drop"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("small-zoo")
    torch.set_num_threads(1)
    manifest = build_zoo("small", root / "out", root / "store", jobs=1, only=SUBSET,
                         log=lambda _m: None)
    manifest["_root"] = root / "out"
    return manifest


@pytest.fixture(scope="module", autouse=True)
def no_panels(tmp_path_factory: pytest.TempPathFactory) -> Any:
    mp = pytest.MonkeyPatch()
    mp.setenv("MODELPRINT_NULLS", str(tmp_path_factory.mktemp("nulls") / "none.json"))
    yield
    mp.undo()


def test_bases_are_trained(small: dict[str, Any]) -> None:
    for name in ("llama-s.seed0", "llama-s.seed1"):
        assert small["models"][name]["eval_loss"] < small["unigram_baseline"] - 1.0


@pytest.mark.parametrize("cand", ["llama-s.seed0.sft_a", "llama-s.seed0.permute_residual",
                                  "llama-s.seed0.layer_drop"])
def test_derivatives_are_found_without_a_null_panel(small: dict[str, Any], cand: str) -> None:
    verdict, reason = _verdict(small, cand, "llama-s.seed0")
    assert verdict == "derived", reason


@pytest.mark.parametrize("cand,ref", [("llama-s.seed1", "llama-s.seed0"),
                                      ("llama-s.seed0.sft_a", "llama-s.seed1"),
                                      ("llama-s.seed0.permute_residual", "llama-s.seed1"),
                                      ("llama-s.seed0.layer_drop", "llama-s.seed1")])
def test_same_recipe_independent_models_are_not_called_derived(small: dict[str, Any],
                                                               cand: str, ref: str) -> None:
    verdict, reason = _verdict(small, cand, ref)
    assert verdict == "independent", reason

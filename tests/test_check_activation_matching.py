"""activation_matching (phi_MATCH on MLP activations): disguised copies, independent models,
and the cases where it cannot apply."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelprint.checks import get_check
from modelprint.checks.base import ModelView
from modelprint.models import clear_memo, load_model
from tests.activation_models import CONFIG, disguise, random_model, save

CHECK = get_check("activation_matching")


@pytest.fixture(autouse=True)
def _fresh_memo():
    clear_memo()
    yield
    clear_memo()


def _view(path: Path) -> ModelView:
    return load_model(path, weights=True, use_cache=False)


def _run(a: ModelView, b: ModelView, **options: Any):
    return CHECK.compute(a, b, {**CHECK.default_options, **options})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("act")
    base = random_model(1)
    return {
        "base": save(base, root / "base"),
        "disguised": save(disguise(base, seed=7), root / "disguised"),
        "other": save(random_model(2), root / "other"),
        "other_shape": save(random_model(3, CONFIG.with_(ffn=256, layers=4)), root / "wide"),
    }


def test_disguised_copy_is_found(models: dict[str, Path]) -> None:
    ev = _run(_view(models["disguised"]), _view(models["base"]), early_stop=False)
    assert ev.applicable and ev.indicates_derivation
    assert ev.details["log10_p"] < -100
    assert all(r["agreement"] == 1.0 for r in ev.details["per_layer"])
    assert ev.details["layers_run"]["candidate"] == CONFIG.layers


def test_weight_space_order_test_cannot_see_the_disguise(models: dict[str, Path]) -> None:
    """The reason for this check: the disguised copy's units moved, so matching units by
    index (mlp_matching's exact order arm) finds no order at all."""
    ev = get_check("mlp_matching").compute(_view(models["disguised"]), _view(models["base"]),
                                           dict(get_check("mlp_matching").default_options))
    assert ev.applicable and ev.details["order_test"]["log10_p"] > -6


def test_early_stop_keeps_the_verdict_and_says_so(models: dict[str, Path]) -> None:
    ev = _run(_view(models["disguised"]), _view(models["base"]))
    assert ev.indicates_derivation
    run = ev.details["layers_run"]
    assert run["early_stop"] and run["candidate"] < CONFIG.layers
    # Bonferroni over the places the run could have stopped: the reported p pays ln K
    one = ev.details["per_layer"][0]["log10_p"]
    assert ev.details["log10_p"] == pytest.approx(one + math.log10(CONFIG.layers))


def test_paired_layers_run_every_layer_and_the_matching_still_stops_early(
        models: dict[str, Path]) -> None:
    """With a layer pairing (unequal depths, or one given) every layer is run -- the pairing
    needs them -- but the matchings stop once the evidence is beyond doubt."""
    ev = _run(_view(models["disguised"]), _view(models["base"]),
              layer_map=[[i, i] for i in range(CONFIG.layers)])
    assert ev.indicates_derivation
    assert ev.details["layers_run"] == {"candidate": CONFIG.layers, "reference": CONFIG.layers,
                                        "of": [CONFIG.layers, CONFIG.layers],
                                        "early_stop": False}
    lc = ev.details["layers_compared"]
    assert lc["early_stop"] and lc["compared"] < lc["of"] == CONFIG.layers
    one = ev.details["per_layer"][0]["log10_p"]
    assert ev.details["log10_p"] == pytest.approx(one + math.log10(CONFIG.layers))


def test_independent_models_are_not_derived(models: dict[str, Path]) -> None:
    ev = _run(_view(models["other"]), _view(models["base"]))
    assert ev.applicable and ev.indicates_derivation is False
    assert ev.details["log10_p"] > -3
    assert not ev.details["layers_run"]["early_stop"]


def test_different_depth_and_width_are_paired_and_independent(models: dict[str, Path]) -> None:
    ev = _run(_view(models["other_shape"]), _view(models["base"]))
    assert ev.applicable and ev.indicates_derivation is False
    assert "CKA of the MLP activations" in ev.details["layer_pairing"]
    assert {r["units_a"] for r in ev.details["per_layer"]} == {256}


def test_width_pruned_copy_is_found(tmp_path: Path, models: dict[str, Path]) -> None:
    """Keep 128 of the 192 units of every layer (and permute them): rectangular matching."""
    import torch

    base = random_model(1)
    keep = torch.randperm(CONFIG.ffn, generator=torch.Generator().manual_seed(0))[:128]
    cfg = CONFIG.with_(ffn=128)
    pruned = type(base)(cfg)
    state = base.state_dict()
    for k in list(state):
        if k.endswith(("gate_proj.weight", "up_proj.weight")):
            state[k] = state[k][keep]
        elif k.endswith("down_proj.weight"):
            state[k] = state[k][:, keep]
    pruned.load_state_dict(state)
    ev = _run(_view(save(pruned, tmp_path / "pruned")), _view(models["base"]), early_stop=False)
    assert ev.indicates_derivation
    # the pruned MLP changes the residual stream: later layers see other inputs, yet the
    # units still compute alike enough to be matched
    assert min(r["agreement"] for r in ev.details["per_layer"]) > 0.5


def test_fingerprint_only_reference_is_not_applicable(models: dict[str, Path]) -> None:
    a = _view(models["disguised"])
    b = ModelView(_view(models["base"]).fingerprint)
    ev = _run(a, b)
    assert not ev.applicable and "fingerprint-only" in (ev.reason or "")


def test_the_forward_needs_no_torch(models: dict[str, Path],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # an interpreter without torch (``import torch`` fails): the numpy forward still runs and
    # finds the disguised copy
    monkeypatch.setitem(sys.modules, "torch", None)
    ev = _run(_view(models["disguised"]), _view(models["base"]))
    assert ev.applicable and ev.indicates_derivation is True


def test_family_without_forward_is_not_applicable(tmp_path: Path,
                                                  models: dict[str, Path]) -> None:
    from tests.synth import make_model

    gpt2 = make_model(tmp_path, "gpt2")
    ev = _run(_view(gpt2.path), _view(models["base"]))
    assert not ev.applicable
    assert "no forward implementation for the gpt2 family" in (ev.reason or "")


def test_too_few_shared_tokens_is_not_applicable(tmp_path: Path,
                                                 models: dict[str, Path]) -> None:
    from tests.activation_models import write_tokenizer

    path = save(random_model(4), tmp_path / "alien")
    write_tokenizer(path, [f"§{i}" for i in range(CONFIG.vocab)])
    ev = _run(_view(path), _view(models["base"]))
    assert not ev.applicable and "probe tokens" in (ev.reason or "")


def test_independent_layer_p_values_are_not_small(tmp_path: Path) -> None:
    """phi_MATCH's p 'behaves like a p-value': over independent random pairs the per-layer
    p-values spread over (0, 1) instead of piling up near 0."""
    paths = [save(random_model(10 + k), tmp_path / f"m{k}") for k in range(4)]
    ps = []
    for k in range(0, 4, 2):
        ev = _run(_view(paths[k]), _view(paths[k + 1]))
        ps += [r["p_value"] for r in ev.details["per_layer"]]
    assert min(ps) > 1e-3
    assert np.mean(ps) > 0.2


def test_report_shows_the_evidence(models: dict[str, Path]) -> None:
    from modelprint.engine import json_safe
    from modelprint.report import render_report
    from tests.fragment_cases import pair_with

    ev = _run(_view(models["disguised"]), _view(models["base"]))
    result = json_safe({**ev.to_json(), "outcome": "passed", "description": CHECK.description})
    html = render_report({"pairs": [pair_with({"activation_matching": result})]})
    assert "could not be drawn" not in html
    assert "activation_matching" in html and "same partner for 100% of units" in html


def _layers(ev: Any) -> list[tuple[float, float]]:
    return [(r["rho"], r["log10_p"]) for r in ev.details["per_layer"]]


def test_a_second_audit_reads_the_activations_from_the_cache(
        models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Warm = no forward at all (no weights read, no torch), and the same numbers; a damaged
    cache entry is recomputed, never trusted."""
    from modelprint.activations import forward

    monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(tmp_path))
    pair = (models["disguised"], models["other"])
    cold = _run(_view(pair[0]), _view(pair[1]))
    assert cold.details["forward"]["layers_from_cache"] == {"candidate": 0, "reference": 0}

    def no_forward(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a forward ran although every layer was cached")

    with monkeypatch.context() as m:
        m.setattr(forward.DecoderRun, "__init__", no_forward)
        warm = _run(_view(pair[0]), _view(pair[1]))
    every = {"candidate": CONFIG.layers, "reference": CONFIG.layers}
    assert warm.details["forward"]["layers_from_cache"] == every
    assert _layers(warm) == _layers(cold) and warm.p_value == cold.p_value

    stored = sorted((tmp_path / "activations").glob("*/layer-1.npy"))
    assert len(stored) == 2
    stored[0].write_bytes(stored[0].read_bytes()[:100])         # truncated on disk
    again = _run(_view(pair[0]), _view(pair[1]))
    assert _layers(again) == _layers(cold)
    assert sum(again.details["forward"]["layers_from_cache"].values()) == 2 * CONFIG.layers - 1

    # a header claiming terabytes, an object array (a pickle) and a wrong shape: recomputed
    from numpy.lib import format as npy

    with stored[1].open("wb") as fh:
        npy.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False,
                                        "shape": (2, 10**6, 10**6)})
        fh.write(b"\0" * 100)
    np.save(stored[0], np.array([{"x": 1}], dtype=object), allow_pickle=True)
    layer2 = sorted((tmp_path / "activations").glob("*/layer-2.npy"))[0]
    np.save(layer2, np.zeros((3, 4, 5), dtype=np.float32))
    hostile = _run(_view(pair[0]), _view(pair[1]))
    assert _layers(hostile) == _layers(cold)
    assert sum(hostile.details["forward"]["layers_from_cache"].values()) == 2 * CONFIG.layers - 3


def test_an_early_stopped_run_is_resumed_from_its_cached_layers(
        models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(tmp_path / "cache"))
    a, b = models["disguised"], models["base"]
    first = _run(_view(a), _view(b))                  # a copy: stops after a layer or two
    ran = first.details["layers_run"]["candidate"]
    assert first.details["layers_run"]["early_stop"] and ran < CONFIG.layers
    full = _run(_view(a), _view(b), early_stop=False)
    assert full.details["forward"]["layers_from_cache"] == {"candidate": ran, "reference": ran}
    monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(tmp_path / "empty"))
    uncached = _run(_view(a), _view(b), early_stop=False)
    assert _layers(full) == _layers(uncached) and full.p_value == uncached.p_value


@pytest.mark.parametrize("layer_map", [None, [[0, 0], [1, 1], [2, 2]]])
def test_the_two_forwards_side_by_side_give_the_same_numbers(
        models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        layer_map: list[list[int]] | None) -> None:
    """Small models run their two forwards on two threads; the activations, hence every
    number of the check, are those of running them one after the other (each run from an
    empty activation cache)."""
    import modelprint.checks.activation_matching as am

    out = {}
    for side_by_side in (True, False):
        monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(tmp_path / f"cache-{side_by_side}"))
        monkeypatch.setattr(am, "_side_by_side", lambda setup, v=side_by_side: v)
        ev = _run(_view(models["other"]), _view(models["base"]), early_stop=False,
                  layer_map=layer_map)
        assert ev.details["forward"]["layers_from_cache"] == {"candidate": 0, "reference": 0}
        out[side_by_side] = ev.details["per_layer"]
    assert out[True] == out[False]

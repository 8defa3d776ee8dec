"""The lineage zoo's own facts, on the tiny profile (a few seconds of CPU training).

The benchmark is only worth something if its labels are true: bases are really trained
(loss clearly below the unigram baseline), permuted copies compute the same function,
quantised round trips stay close and are readable by modelprint's own sources, and the
pair labels follow the ancestry. These tests check that on freshly built models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from benchmarks.lineage.tiny_lm import load_model
from benchmarks.lineage.zoo import build_zoo

SUBSET = [
    "llama-t.seed1",
    "llama-t.seed2",
    "llama-t.seed3",
    "qwen2-t.seed0",
    "llama-t.seed0.sft_a",
    "llama-t.seed0.permute",
    "llama-t.seed0.permute_residual",
    "llama-t.seed0.gguf_q8_0",
    "llama-t.seed0.moe",
    "qwen2-t.seed0.gguf_q4_k",
]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("zoo")
    torch.set_num_threads(1)
    manifest = build_zoo("tiny", root / "out", root / "store", jobs=1, only=SUBSET,
                         log=lambda _m: None)
    manifest["_root"] = root / "out"
    return manifest


def _path(zoo: dict[str, Any], name: str) -> Path:
    return (zoo["_root"] / zoo["models"][name]["path"]).resolve()


def test_bases_are_trained_well_below_the_unigram_baseline(zoo: dict[str, Any]) -> None:
    base = [m for m in zoo["models"].values() if m["kind"] == "base"]
    assert len(base) == 5
    for m in base:
        assert m["losses"]["eval_loss"] < zoo["unigram_baseline"] - 0.5, m["name"]
        assert m["losses"]["eval_loss"] < m["losses"]["eval_loss_before"] - 1.0, m["name"]


def test_hf_directories_use_real_names_and_configs(zoo: dict[str, Any]) -> None:
    d = _path(zoo, "qwen2-t.seed0")
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["model_type"] == "qwen2" and cfg["tie_word_embeddings"] is True
    from safetensors import safe_open
    with safe_open(str(d / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert "model.layers.0.self_attn.q_proj.bias" in names
    assert "lm_head.weight" not in names
    tok = json.loads((d / "tokenizer.json").read_text())
    assert len(tok["model"]["vocab"]) == cfg["vocab_size"]
    moe = _path(zoo, "llama-t.seed0.moe")
    cfg = json.loads((moe / "config.json").read_text())
    assert cfg["model_type"] == "mixtral" and cfg["num_local_experts"] == 4
    with safe_open(str(moe / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert "model.layers.1.block_sparse_moe.experts.3.w2.weight" in names
    assert "model.layers.1.block_sparse_moe.gate.weight" in names


@pytest.mark.parametrize("name", ["llama-t.seed0.permute", "llama-t.seed0.permute_residual"])
def test_permutation_preserves_the_function_but_not_the_weights(zoo: dict[str, Any],
                                                                 name: str) -> None:
    parent = load_model(_path(zoo, "llama-t.seed0"))
    perm = load_model(_path(zoo, name))
    ids = torch.randint(0, parent.cfg.vocab, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        la, lb = parent(ids), perm(ids)
    assert torch.allclose(la, lb, atol=1e-4, rtol=1e-4)
    wa = parent.model.layers[0].mlp.gate_proj.weight
    wb = perm.model.layers[0].mlp.gate_proj.weight
    assert not torch.equal(wa, wb)
    assert zoo["models"][name]["function_check"]["equal"] is True


def test_fine_tune_moves_weights_but_keeps_them_close(zoo: dict[str, Any]) -> None:
    a = load_model(_path(zoo, "llama-t.seed0")).state_dict()
    b = load_model(_path(zoo, "llama-t.seed0.sft_a")).state_dict()
    c = load_model(_path(zoo, "llama-t.seed1")).state_dict()
    k = "model.layers.1.self_attn.q_proj.weight"
    assert not torch.equal(a[k], b[k])

    def cos(x: torch.Tensor, y: torch.Tensor) -> float:
        return float((x * y).sum() / (x.norm() * y.norm()))
    assert cos(a[k], b[k]) > 0.9 > abs(cos(a[k], c[k]))


@pytest.mark.parametrize("name,qtype", [("llama-t.seed0.gguf_q8_0", "Q8_0"),
                                        ("qwen2-t.seed0.gguf_q4_k", "Q4_K")])
def test_gguf_round_trip_is_readable_by_modelprint(zoo: dict[str, Any], name: str,
                                                   qtype: str) -> None:
    from modelprint.sources import open_source
    entry = zoo["models"][name]
    parent = load_model(_path(zoo, entry["parents"][0]))
    src = open_source(str(_path(zoo, name)))
    infos = src.tensors()
    assert infos["blk.0.attn_q.weight"].dtype == qtype
    q = np.asarray(src.read_rows("blk.0.attn_q.weight", 0, infos["blk.0.attn_q.weight"].rows),
                   dtype=np.float64)
    ref = parent.model.layers[0].self_attn.q_proj.weight.detach().double().numpy()
    assert q.shape == ref.shape
    rel = np.linalg.norm(q - ref) / np.linalg.norm(ref)
    assert rel < (0.02 if qtype == "Q8_0" else 0.15)   # q/k un-permuted, values close
    assert entry["relative_rms_error"] < (0.02 if qtype == "Q8_0" else 0.15)


def test_pairs_follow_the_ancestry(zoo: dict[str, Any]) -> None:
    pairs = {(p["a"], p["b"]): p for p in zoo["pairs"]}
    pairs.update({(p["b"], p["a"]): p for p in zoo["pairs"]})
    assert pairs[("llama-t.seed0", "llama-t.seed0.sft_a")]["kind"] == "sft"
    assert pairs[("llama-t.seed0.sft_a", "llama-t.seed0.moe")]["kind"] == "sibling"
    same = pairs[("llama-t.seed0", "llama-t.seed1")]
    assert same["label"] == "independent" and same["kind"] == "same_recipe"
    assert pairs[("llama-t.seed0.sft_a", "llama-t.seed1")]["label"] == "independent"
    assert pairs[("llama-t.seed1", "qwen2-t.seed0")]["kind"] == "different_shape"
    n = len(zoo["models"])
    assert len(zoo["pairs"]) == n * (n - 1) // 2


def test_rebuild_reuses_the_cache_and_is_deterministic(zoo: dict[str, Any]) -> None:
    root = zoo["_root"].parent
    again = build_zoo("tiny", root / "out2", root / "store", jobs=1, only=SUBSET,
                      log=lambda _m: None)
    assert again["build"]["built"] == []
    for name, m in zoo["models"].items():
        assert again["models"][name]["cache_key"] == m["cache_key"]


def test_same_recipe_rebuilds_bit_identical(zoo: dict[str, Any]) -> None:
    root = zoo["_root"].parent
    fresh = build_zoo("tiny", root / "out3", root / "store3", jobs=1, only=["llama-t.seed0"],
                      log=lambda _m: None)
    a = _path(zoo, "llama-t.seed0") / "model.safetensors"
    b = (root / "out3" / fresh["models"]["llama-t.seed0"]["path"]).resolve()
    assert a.read_bytes() == (b / "model.safetensors").read_bytes()


def zoo_verdict(zoo: dict[str, Any], cand: str, ref: str) -> tuple[str, str]:
    """The engine's verdict for two models of a built zoo (also used by the small-zoo test)."""
    from modelprint.engine import Engine, Target
    pair = Engine(offline=True).pair(Target(str(_path(zoo, cand))), Target(str(_path(zoo, ref))))
    return pair.verdict()


@pytest.mark.parametrize("cand", ["llama-t.seed0.sft_a", "llama-t.seed0.permute",
                                  "llama-t.seed0.gguf_q8_0", "llama-t.seed0.moe"])
def test_derivatives_get_a_derived_verdict(zoo: dict[str, Any], cand: str) -> None:
    verdict, reason = zoo_verdict(zoo, cand, "llama-t.seed0")
    assert verdict == "derived", reason


@pytest.mark.parametrize("cand,ref", [("llama-t.seed1", "llama-t.seed0"),
                                      ("llama-t.seed0.sft_a", "llama-t.seed1"),
                                      ("llama-t.seed0.permute_residual", "llama-t.seed1"),
                                      ("qwen2-t.seed0", "llama-t.seed0")])
def test_independent_models_never_get_a_derived_verdict(zoo: dict[str, Any], cand: str,
                                                        ref: str) -> None:
    verdict, reason = zoo_verdict(zoo, cand, ref)
    assert verdict != "derived", reason


def test_null_panels_come_only_from_calibration_models(zoo: dict[str, Any], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.lineage import build_nulls

    from modelprint.calibration.nulls import load_nulls
    monkeypatch.setenv("MODELPRINT_NULLS", str(tmp_path / "unused.json"))
    out = tmp_path / "nulls.json"
    build_nulls.main(["--zoo", str(zoo["_root"]), "--out", str(out)])
    calib = {n for n, m in zoo["models"].items() if m.get("role") == "calibration"}
    assert calib == {"llama-t.seed2", "llama-t.seed3"}
    panels = load_nulls(str(out))
    assert panels, "no panel written"
    for panel in panels.values():
        assert all(set(p) <= calib for p in panel.pairs)
    scored = [p for p in zoo["pairs"] if p["split"] == "evaluation"]
    assert scored and not any({p["a"], p["b"]} & calib for p in scored)


def test_runner_writes_results_with_no_false_derived_verdicts(
        zoo: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPRINT_NULLS", "")  # restored afterwards; run.main overrides it
    from benchmarks.lineage import run
    run.main(["--zoo", str(zoo["_root"]), "--out", str(tmp_path), "--no-audit",
              "--cli-pairs", "0", "--nulls", str(tmp_path / "no-panels.json")])
    res = json.loads((tmp_path / "results.json").read_text())
    conf = res["summary"]["verdict_confusion"]
    n_eval = sum(p["split"] == "evaluation" for p in zoo["pairs"])
    assert sum(sum(row.values()) for row in conf.values()) == n_eval
    assert conf["independent"]["derived"] == 0
    assert conf["derived"]["derived"] > 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "same-recipe independent" in text and "| truth \\ verdict |" in text

"""Every family's synthetic checkpoint resolves to exactly its ground-truth roles and values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelprint.arch import iter_slot_blocks, load_slot, resolve
from modelprint.arch.base import RoleSlot
from modelprint.sources import open_source
from tests.synth import FAMILIES, GEMMA_FAMILIES, MOE_FAMILIES, SynthModel, make_model

Key = tuple[str, "int | None", "int | None"]


def _by_key(slots: list[RoleSlot]) -> dict[Key, RoleSlot]:
    return {(s.role, s.layer, s.expert): s for s in slots}


def _assert_roles_match(model: SynthModel) -> None:
    with open_source(model.path) as src:
        info, slots = resolve(src)
        got = _by_key(slots)
        assert len(got) == len(slots), "a role/layer/expert appears twice"
        assert set(got) == set(model.roles), (
            f"missing {sorted(set(model.roles) - set(got))[:5]}, "
            f"extra {sorted(set(got) - set(model.roles))[:5]}")
        for key, truth in model.roles.items():
            values = load_slot(src, got[key])
            assert values.dtype == np.float32
            assert tuple(got[key].extra["shape"]) == truth.shape, key
            assert values.shape == truth.shape, key
            np.testing.assert_array_equal(values.astype(np.float64), truth, err_msg=str(key))
    assert info.num_layers == 2


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
def test_roles_equal_ground_truth(tmp_path: Path, family: str, dtype: str) -> None:
    _assert_roles_match(make_model(tmp_path, family, dtype=dtype))


@pytest.mark.parametrize("family", FAMILIES)
def test_sharded_checkpoint_resolves_the_same(tmp_path: Path, family: str) -> None:
    model = make_model(tmp_path, family, dtype="BF16", sharded=3, seed=1)
    assert len(model.files) == 3
    _assert_roles_match(model)


@pytest.mark.parametrize("family", FAMILIES)
def test_arch_info_facts(tmp_path: Path, family: str) -> None:
    model = make_model(tmp_path, family, layers=3, dtype="F16")
    with open_source(model.path) as src:
        info, slots = resolve(src)
    assert info.num_layers == 3
    assert {s.layer for s in slots if s.layer is not None} == {0, 1, 2}
    assert info.hidden_size == 64
    assert info.num_heads == 4
    assert info.dtype == "F16"
    assert info.norm_offset == (1.0 if family in GEMMA_FAMILIES else 0.0)
    if family in ("gpt2", "bert", "gpt_neox") or family.startswith("deepseek"):
        assert info.num_kv_heads == info.num_heads
    else:
        assert info.num_kv_heads == 2
    assert (info.num_experts == 4) == (family in MOE_FAMILIES)
    # every family has the four attention projections or, for MLA, their latent replacements
    roles = {s.role for s in slots if s.layer == 2}
    assert "attn.o" in roles
    if not family.startswith("deepseek"):
        assert {"attn.q", "attn.k", "attn.v"} <= roles


@pytest.mark.parametrize("dtype", ["F16", "BF16", "F32"])
def test_blocks_keep_stored_dtype_and_cover_the_slot(tmp_path: Path, dtype: str) -> None:
    """Blocks for statistics: stored precision, and together exactly the slot's values."""
    model = make_model(tmp_path, "gpt2", dtype=dtype)
    want = {"F16": np.float16, "F32": np.float32}
    with open_source(model.path) as src:
        _, slots = resolve(src)
        for slot in slots:
            blocks = list(iter_slot_blocks(src, slot, block_bytes=512))
            if dtype == "BF16":
                assert all(b.dtype.name == "bfloat16" for b in blocks)
            else:
                assert all(b.dtype == want[dtype] for b in blocks)
            truth = model.roles[(slot.role, slot.layer, slot.expert)]
            pooled = np.sort(np.concatenate([b.astype(np.float64).ravel() for b in blocks]))
            np.testing.assert_array_equal(pooled, np.sort(truth.ravel()))


def test_blocks_are_small_for_big_tensors(tmp_path: Path) -> None:
    model = make_model(tmp_path, "llama", vocab=4096, hidden=64)
    with open_source(model.path) as src:
        _, slots = resolve(src)
        embed = next(s for s in slots if s.role == "embed")
        sizes = [b.nbytes for b in iter_slot_blocks(src, embed, block_bytes=64 * 1024)]
    assert len(sizes) > 1
    assert max(sizes) <= 64 * 1024


def test_load_slot_selected_rows(tmp_path: Path) -> None:
    model = make_model(tmp_path, "gpt2")
    rows = [5, 0, 127, 5]
    with open_source(model.path) as src:
        _, slots = resolve(src)
        by = _by_key(slots)
        emb = load_slot(src, by[("embed", None, None)], rows=rows)
        np.testing.assert_array_equal(emb, model.roles[("embed", None, None)][rows])
        # rows of a transposed, split slot: GPT-2 k = rows d..2d of c_attn^T
        k = load_slot(src, by[("attn.k", 1, None)], rows=[3, 1])
        np.testing.assert_array_equal(k, model.roles[("attn.k", 1, None)][[3, 1]])
        with pytest.raises(IndexError):
            load_slot(src, by[("attn.k", 1, None)], rows=[64])

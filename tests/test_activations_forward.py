"""modelprint's layer-by-layer forward against an independent implementation, and on real models.

The reference is ``benchmarks/lineage/tiny_lm.py`` (a plain torch decoder with HF names):
a saved tiny model read back through modelprint's sources and role tensors must give the
same logits. The real GGUF models are checked for what a broken forward loses first: their
ability to predict the next token of ordinary English.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from modelprint.activations.forward import (
    DecoderRun,
    NoForward,
    bos_id,
    decoder_spec,
    vocabulary_of,
)
from modelprint.activations.probe import greedy_tokens, probe_text, shared_probe
from modelprint.models import clear_memo, load_model
from tests.activation_models import CONFIG, random_model, save


@pytest.fixture(autouse=True)
def _fresh_memo():
    clear_memo()
    yield
    clear_memo()


def _run_all(path: Path, ids: list[int]) -> tuple[DecoderRun, list[np.ndarray]]:
    view = load_model(path, weights=True, use_cache=False)
    assert view.weights is not None
    run = DecoderRun(view.weights, decoder_spec(view.weights), ids, bos=None, skip=0)
    gates = []
    for i in range(run.spec.num_layers):
        acts = run.step(i)
        assert acts is not None
        gates.append(acts.gate)
    return run, gates


@pytest.mark.parametrize("family, extra", [
    ("llama", {}),
    ("qwen2", {"qkv_bias": True, "rope_theta": 1e6}),
    ("llama", {"heads": 4, "kv_heads": 1, "rope_theta": 5e5}),
])
def test_logits_match_an_independent_implementation(tmp_path: Path, family: str,
                                                    extra: dict) -> None:
    cfg = CONFIG.with_(family=family, **extra)
    model = random_model(3, cfg)
    if cfg.qkv_bias:                       # zero-initialised: give the biases values
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith(".bias"):
                    p.normal_(0.0, 0.5)
    path = save(model, tmp_path / family)
    ids = list(np.random.default_rng(0).integers(0, cfg.vocab, 40))
    with torch.no_grad():
        want = model(torch.tensor([ids]))[0].numpy()
    run, _ = _run_all(path, ids)
    got = run.logits()
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) < 1e-4 * max(1.0, float(np.max(np.abs(want))))


def test_gate_activations_are_the_reference_models(tmp_path: Path) -> None:
    model = random_model(5)
    path = save(model, tmp_path / "m")
    ids = list(range(1, 30))
    captured: list[torch.Tensor] = []
    hooks = [layer.mlp.gate_proj.register_forward_hook(lambda m, i, o: captured.append(o[0]))
             for layer in model.model.layers]
    with torch.no_grad():
        model(torch.tensor([ids]))
    for h in hooks:
        h.remove()
    _, gates = _run_all(path, ids)
    for want, got in zip(captured, gates, strict=True):
        assert np.allclose(got, want.numpy(), atol=1e-5)


def test_unsupported_family_says_why(tmp_path: Path) -> None:
    from tests.synth import make_model

    synth = make_model(tmp_path, "gpt2")
    view = load_model(synth.path, weights=True, use_cache=False)
    with pytest.raises(NoForward, match="no forward implementation for the gpt2 family"):
        decoder_spec(view.weights)


def test_probe_is_spelled_with_shared_tokens_only() -> None:
    a = ["x", " the", "the", " river", "e", "h", "t", " ", "r", "i", "v"]
    b = [" river", " the", "t", "h", "e", " ", "q"]
    probe = shared_probe(a, b, 100, text="the river")
    assert probe.strings == ["t", "h", "e", " river"]
    assert [a[i] for i in probe.ids_a] == probe.strings
    assert [b[i] for i in probe.ids_b] == probe.strings
    assert not probe.same_vocabulary


def test_byte_level_and_sentencepiece_spellings_meet() -> None:
    bpe = ["Ġthe", "Ġriver", "the"]
    spm = ["▁the", "▁river", "<0x0A>"]
    probe = shared_probe(bpe, spm, 10, text=" the river")
    assert probe.strings == [" the", " river"]
    assert probe.ids_a == [0, 1] and probe.ids_b == [0, 1]


def test_greedy_match_skips_what_no_token_covers() -> None:
    tokens, skipped = greedy_tokens("ab€c", {"a", "b", "c", "ab"})
    assert tokens == ["ab", "c"] and skipped == 1


def test_shipped_probe_is_long_enough_for_the_default_tokens() -> None:
    text = probe_text()
    assert len(text.split()) > 400
    assert "def mean(values):" in text


@pytest.mark.real
@pytest.mark.parametrize("which", ["smollm2_gguf", "gemma3_gguf"])
def test_real_models_predict_the_next_word(which: str) -> None:
    """A correct forward of a real model predicts a good share of the probe's next tokens
    (SmolLM2 and Gemma 3 got 21 % and 18 % over 200 tokens when this test was written;
    chance is 1 / vocabulary). Scaling the Gemma embedding wrongly drops it to 0."""
    from modelprint import realmodels

    view = load_model(getattr(realmodels, which)(), weights=True)
    w = view.weights
    vocab = vocabulary_of(w)
    assert vocab
    probe = shared_probe(vocab, vocab, 200)
    bos = bos_id(w)
    run = DecoderRun(w, decoder_spec(w), probe.ids_a, bos)
    for i in range(run.spec.num_layers):
        run.step(i, record=False)
    logits = run.logits()[(1 if bos is not None else 0):-1]
    accuracy = float(np.mean(logits.argmax(axis=1) == np.array(probe.ids_a[1:])))
    assert accuracy > 0.1

"""Hand-made result dicts (``modelprint.result/1``) for the report tests.

Realistic in shape and in the detail keys the checks write (attention_std / qkv_bias /
layernorm: ``per_role``, ``curves``, ``null``, ``vectors``; license: ``findings``), plus
hostile strings (HTML in model names, tensor names, license excerpts) and a check the report
has no fragment for. Built from a seeded generator, so every call gives the same dict.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

XSS_NAME = "<script>alert(1)</script>"
XSS_EXCERPT = ('Copyright 2024 <img src=x onerror="alert(2)"> Qwen Team </pre>'
               '<script>alert(3)</script><a href="https://evil.example/x">here</a>')
XSS_TENSOR = 'model.layers.0.<b onmouseover="alert(4)">q_proj</b>'

ROLES = ("attn.q", "attn.k", "attn.v", "attn.o")


def _z(x: np.ndarray) -> list[float]:
    sd = float(x.std())
    return [float(v) for v in ((x - x.mean()) / (sd if sd > 0 else 1.0))]


def _depth_curve(rng: np.random.Generator, n: int) -> np.ndarray:
    """A std-vs-depth curve: smooth trend + edge jump + small wiggle, like real models."""
    t = np.linspace(0, 1, n)
    curve = 0.02 + 0.01 * t + 0.004 * np.sin(3 * t + rng.uniform(0, 1))
    curve[0] *= 0.7
    return curve + rng.normal(0, 0.0008, n)


def seed_details(rng: np.random.Generator, n_layers: int, related: bool,
                 roles: tuple[str, ...] = ROLES, null_size: int = 60) -> dict[str, Any]:
    """Details as the seed checks write them (see checks/attention_std.CurveResult.details)."""
    curves: dict[str, Any] = {}
    per_role: dict[str, Any] = {}
    for role in roles:
        a = _depth_curve(rng, n_layers)
        b = a + rng.normal(0, 0.0002 if related else 0.0015, n_layers)
        r = float(np.corrcoef(a, b)[0, 1])
        rd = float(np.corrcoef(np.diff(a[1:-1]), np.diff(b[1:-1]))[0, 1])
        curves[role] = {"a": _z(a), "b": _z(b)}
        per_role[role] = {"r": r, "r_detrended": rd, "r_residual": rd * 0.95,
                          "spearman": r * 0.98, "n": n_layers, "n_eff": 5.3,
                          "autocorr_a": 0.85, "autocorr_b": 0.84, "p_approx": 0.04,
                          "flat_a": False, "flat_b": False}
    mean = lambda k: float(np.mean([p[k] for p in per_role.values()]))  # noqa: E731
    null_scores = np.clip(rng.normal(0.72, 0.14, null_size), -1, 1)
    return {
        "alignment": [[i, i] for i in range(n_layers)],
        "alignment_source": "identity (equal depth)",
        "per_role": per_role, "informative": list(roles), "flat": {}, "absent": {},
        "missing_layers": {}, "r_detrended": mean("r_detrended"),
        "r_residual": mean("r_residual"), "spearman": mean("spearman"), "n_eff": 5.3,
        "curves": curves,
        "null": {"scores": [float(s) for s in null_scores],
                 "source": "lineage zoo: independently initialised pairs of the same shape",
                 "method": "synthetic", "provisional": True, "n": null_size,
                 "p_floor": 1 / (null_size + 1), "pairs": [["m1", "m2"]] * null_size,
                 "calibrated": True},
        "rule": "p = 0.02 vs 60 independent pairs; no indication: detrended r 0.41 < 0.8",
    }


def vector_details(rng: np.random.Generator, n_layers: int, related: bool,
                   roles: tuple[str, ...]) -> dict[str, Any]:
    d = seed_details(rng, n_layers, related, roles)
    vectors = {}
    for role in roles:
        rows = []
        for i in range(n_layers):
            r = float(rng.normal(0.97, 0.01)) if related else float(rng.normal(0.0, 0.05))
            rms_a = float(1.0 + 0.02 * i)
            rows.append({"layers": [i, i], "centred_r": r,
                         "uncentred_cosine_not_evidence": 0.99, "rms_a": rms_a,
                         "rms_b": rms_a * (1.0 if related else 1.6),
                         "magnitude_ratio": 1.0 if related else 1 / 1.6,
                         "shape_a": [896], "shape_b": [896]})
        vectors[role] = {"layers_compared": n_layers, "shapes_match": True,
                         "centred_r": float(np.mean([r["centred_r"] for r in rows])),
                         "uncentred_cosine_not_evidence": 0.99,
                         "magnitude_ratio": rows[0]["magnitude_ratio"], "per_layer": rows}
    d["vectors"] = vectors
    d["vector_centred_r"] = float(np.mean([v["centred_r"] for v in vectors.values()]))
    d["magnitude_ratio"] = vectors[roles[0]]["magnitude_ratio"]
    d["uncentred_cosine_not_evidence"] = 0.99
    return d


DESCRIPTIONS = {
    "attention_std": ("The seed (HonestAGI) statistic: per layer the std of the Q, K, V and O "
                      "weights, correlated over depth. Independently trained models reach r ≈ "
                      "0.9 (a known false-positive problem); weak evidence, never decides."),
    "qkv_bias": "The seed's q/k/v bias comparison plus the bias vectors themselves.",
    "layernorm": "Norm gains: seed curve correlation and centred per-layer correlation.",
    "license": "Vendor names, licenses and copyright lines in the repository files.",
    "attention_cka": "Linear CKA of Q/K weights after residual alignment (AWM).",
    "weights_cosine": "Element-wise cosine of same-shape tensors (decisive for fine-tunes).",
}


def _ev(check: str, strength: str, score: float | None, threshold: float | None,
        p: float | None, indicates: bool | None, outcome: str, summary: str,
        details: dict[str, Any], applicable: bool = True,
        reason: str | None = None) -> dict[str, Any]:
    return {"check": check, "strength": strength, "applicable": applicable, "score": score,
            "threshold": threshold, "p_value": p, "indicates_derivation": indicates,
            "summary": summary, "reason": reason, "details": details, "outcome": outcome,
            "description": DESCRIPTIONS.get(check, "")}


def _model(ref: str, name: str | None, rng: np.random.Generator, layers: int) -> dict[str, Any]:
    m = {"reference": ref, "kind": "hf" if ref.startswith("hf:") else "directory",
         "revision": "".join(rng.choice(list("0123456789abcdef"), 40)),
         "files": {f"model-0000{i}-of-00002.safetensors":
                   "".join(rng.choice(list("0123456789abcdef"), 64)) for i in (1, 2)},
         "architecture": {"family": "qwen2", "num_layers": layers, "hidden_size": 896,
                          "num_heads": 14, "num_kv_heads": 2, "head_dim": 64,
                          "dtype": "BF16", "model_type": "qwen2"}}
    if name is not None:
        m["name"] = name
    return m


def _score(details: dict[str, Any]) -> float:
    return float(np.mean([p["r"] for p in details["per_role"].values()]))


def make_pair(i: int, *, related: bool, expect: str | None, name: str, layers: int = 24,
              findings: list[dict[str, Any]] | None = None, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed * 1000 + i)
    att = seed_details(rng, layers, related)
    score = _score(att)
    bias = vector_details(rng, layers, related, ("attn.q_bias", "attn.k_bias", "attn.v_bias"))
    norm = vector_details(rng, layers, related, ("norm.attn", "norm.mlp"))
    cka = 0.97 if related else 0.004
    verdict = "derived" if related else "independent"
    outcome = None if expect is None else ("passed" if expect == verdict else "failed")
    item = "failed" if outcome == "failed" else "passed"
    lic = {"claimed_vendor": "acme", "claimed_vendor_name": "Acme AI",
           "claimed_vendor_source": "general.organization = Acme",
           "reference_vendor": "qwen", "reference_vendor_name": "Alibaba Cloud (Qwen)",
           "reference_vendor_source": "its Qwen license", "files": 7, "scanned_files": 5,
           "findings": findings if findings is not None else [
               {"kind": "license_text", "file": "LICENSE", "line": 1,
                "excerpt": "Tongyi Qianwen LICENSE AGREEMENT", "vendor": "qwen",
                "vendor_name": "Alibaba Cloud (Qwen)", "license": "Tongyi Qianwen License",
                "confidence": 0.97, "links_reference": True},
               {"kind": "copyright", "file": "modeling.py", "line": 2,
                "excerpt": "# Copyright 2024 The Qwen team, Alibaba Group.", "vendor": "qwen",
                "vendor_name": "Alibaba Cloud (Qwen)", "license": None, "confidence": 0.9,
                "links_reference": True},
               {"kind": "copyright", "file": "README.md", "line": 40,
                "excerpt": "Copyright 2023 Meta Platforms", "vendor": "meta",
                "vendor_name": "Meta", "license": None, "confidence": 0.8,
                "links_reference": False}],
           "findings_total": 3, "caveat": "license or copyright reuse is code/file reuse, "
           "not weight reuse"}
    return {
        "audit": f"audits/release-{i}.audit.yaml" if expect else None,
        "candidate": _model("./models/my-release", None, rng, layers),
        "reference": _model(f"hf:Qwen/Qwen2.5-0.5B@{i}", name, rng, layers),
        "expect": expect, "verdict": verdict,
        "verdict_reason": ("weights_cosine: element-wise cosine 0.998 (p < 0.001) — the "
                           "candidate's weights are a fine-tune of the reference"
                           if related else
                           "no decisive check indicates derivation; weights_cosine 0.002 is "
                           "within the independent range"),
        "outcome": outcome,
        "checks": {
            "weights_cosine": _ev("weights_cosine", "decisive", 0.998 if related else 0.002,
                                  0.1, 0.001 if related else 0.6, related, item,
                                  f"pooled cosine {0.998 if related else 0.002}",
                                  {"tensors_compared": 96, "pooled_cosine":
                                   0.998 if related else 0.002,
                                   "hashed_tensors": {"candidate": 211, "reference": 127},
                                   "per_matrix": [{"role": "attn.q", "layer": i,
                                                   "cosine": float(rng.uniform(0, 1)),
                                                   "tensor": XSS_TENSOR, "shape": [64, 64]}
                                                  for i in range(layers)],
                                   "per_layer": [float(v) for v in rng.uniform(0, 1, layers)],
                                   "worst_tensor": XSS_TENSOR, "matrix": {"x": [[1, 2]]}}),
            "attention_cka": _ev("attention_cka", "decisive", cka, 0.05, 1e-9 if related else 0.4,
                                 related, item, f"mean CKA {cka:.3f}", {
                                     "basis": "shared-token embedding alignment",
                                     "shared_tokens": 1024,
                                     "per_layer": [{"layer_a": i, "layer_b": i,
                                                    "cka": cka + float(rng.normal(0, 0.01))}
                                                   for i in range(layers)],
                                     "null": {"calibrated": True, "n": 30, "p_floor": 1 / 31,
                                              "p_empirical": 1 / 31 if related else 0.4,
                                              "p_method": "Student-t prediction p",
                                              "source": "unit-test panel",
                                              "scores": [float(x) for x in
                                                         rng.normal(0, 0.003, 30)]},
                                     "z": cka / 0.003, "layer_alignment": None}),
            "attention_std": _ev("attention_std", "weak", score, 0.95, 0.02, False, "passed",
                                 f"mean std-curve r = {score:.3f} over Q/K/V/O", att),
            "qkv_bias": _ev("qkv_bias", "weak", _score(bias), 0.95, None, False, "passed",
                            f"mean q/k/v biases std-curve r = {_score(bias):.3f}", bias),
            "layernorm": _ev("layernorm", "weak", _score(norm), 0.95, None, False, "passed",
                             f"mean norm gains std-curve r = {_score(norm):.3f}", norm),
            "license": _ev("license", "context", None, None, None, None, "passed",
                           f"{len(lic['findings'])} finding(s) naming Qwen", lic),
        },
    }


def make_run(n_pairs: int = 3, layers: int = 24) -> dict[str, Any]:
    """A run with a failed audit (listed second here, first in the report), a hostile
    reference name, a license excerpt with HTML, and a not-applicable check."""
    specs = [
        dict(related=False, expect="independent", name="qwen2.5-0.5b"),
        dict(related=True, expect="independent", name="qwen2.5-0.5b-instruct"),
        dict(related=False, expect=None, name=XSS_NAME, findings=[
            {"file": "LICENSE", "line": 3, "excerpt": XSS_EXCERPT, "vendor": "Qwen",
             "license": "apache-2.0", "kind": "copyright"}]),
    ]
    while len(specs) < n_pairs:
        specs.append(dict(related=len(specs) % 2 == 0, expect="independent",
                          name=f"reference-{len(specs)}"))
    pairs = [make_pair(i, layers=layers, **s) for i, s in enumerate(specs[:n_pairs])]
    if len(pairs) >= 3:
        pairs[2]["checks"]["qkv_bias"] = _ev(
            "qkv_bias", "weak", None, 0.95, None, None, "skipped",
            "not applicable: the reference has no q/k/v biases", {}, applicable=False,
            reason="the reference has no q/k/v biases")
    return {"format": "modelprint.result/1", "modelprint_version": "0.1.0",
            "created": "2026-02-01T12:00:00+00:00",
            "command": ["pytest", "audits/", "--modelprint-html", "reports/audit.html"],
            "alpha": 0.01, "pairs": pairs}


def run_copy(run: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(run)

"""The checks of one pair computed side by side (``Engine.evidence_many``)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from modelprint.checks.base import CONTEXT, Evidence
from modelprint.engine import LAYER_ALIGNER, Engine, Target
from modelprint.engine import session as session_mod


class _Aligner:
    name = LAYER_ALIGNER
    strength = CONTEXT
    default_options: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        self.calls = 0

    def compute(self, a: Any, b: Any, options: dict[str, Any]) -> Evidence:
        self.calls += 1
        return Evidence(self.name, self.strength, True, score=1.0,
                        details={"alignment_trusted": True, "layer_map": [[0, 0], [1, 2]]})


class _PerLayer:
    """A per-layer check that waits at a barrier: it finishes only if its sibling runs at
    the same time."""

    strength = CONTEXT
    default_options: ClassVar[dict[str, Any]] = {"layer_map": None}

    def __init__(self, name: str, barrier: threading.Barrier | None) -> None:
        self.name = name
        self.barrier = barrier
        self.seen: list[Any] = []

    def compute(self, a: Any, b: Any, options: dict[str, Any]) -> Evidence:
        self.seen.append(options["layer_map"])
        if self.barrier is not None:
            self.barrier.wait()
        return Evidence(self.name, self.strength, True, score=float(len(self.name)))


class _Broken:
    name = "broken"
    strength = CONTEXT
    default_options: ClassVar[dict[str, Any]] = {}

    def compute(self, a: Any, b: Any, options: dict[str, Any]) -> Evidence:
        raise RuntimeError("this check fails")


def _engine(registry: dict[str, Any]) -> Engine:
    depth = {"cand": 2, "ref": 3}          # different depths: the aligner is needed

    def loader(reference: str, base_dir: Any, **_: Any) -> Any:
        return SimpleNamespace(fingerprint=SimpleNamespace(num_layers=depth[reference]))

    return Engine(registry=registry, loader=loader)


def test_two_checks_run_at_once_and_share_one_layer_alignment() -> None:
    barrier = threading.Barrier(2, timeout=10)   # broken (an error) if they ran in turn
    aligner = _Aligner()
    first, second = _PerLayer("mlp_like", barrier), _PerLayer("activation_like", barrier)
    engine = _engine({c.name: c for c in (aligner, first, second)})
    pair = engine.pair(Target("cand"), Target("ref"), checks={"mlp_like": {},
                                                              "activation_like": {}})
    evidence = pair.all_evidence()
    assert list(evidence) == ["mlp_like", "activation_like"]      # the order asked for
    assert [e.score for e in evidence.values()] == [8.0, 15.0]
    assert aligner.calls == 1
    assert first.seen == second.seen == [[[0, 0], [1, 2]]]


def test_one_at_a_time_gives_the_same_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    def run() -> dict[str, Any]:
        checks = {c.name: c for c in (_Aligner(), _PerLayer("a", None), _PerLayer("bb", None))}
        pair = _engine(checks).pair(Target("cand"), Target("ref"),
                                    checks={"a": {}, "bb": {}})
        return {k: v.to_json() for k, v in pair.all_evidence().items()}

    side_by_side = run()
    monkeypatch.setattr(session_mod, "CHECK_THREADS", 1)
    assert run() == side_by_side


def test_a_failing_check_fails_the_pair_with_its_own_error() -> None:
    engine = _engine({c.name: c for c in (_Aligner(), _PerLayer("a", None), _Broken())})
    pair = engine.pair(Target("cand"), Target("ref"), checks={"a": {}, "broken": {}})
    with pytest.raises(RuntimeError, match="this check fails"):
        pair.all_evidence()


def test_a_check_result_is_a_copy_the_caller_may_change() -> None:
    """``check_json`` builds its dict from the evidence's fields without a deep copy of its
    own (``json_safe`` rebuilds every container): changing the returned details leaves the
    evidence, and the next result, as they were."""
    engine = _engine({c.name: c for c in (_Aligner(),)})
    pair = engine.pair(Target("cand"), Target("ref"), checks={LAYER_ALIGNER: {}})
    first = pair.check_json(LAYER_ALIGNER)
    first["details"]["layer_map"][0][0] = 99
    first["details"]["alignment_trusted"] = False
    again = pair.check_json(LAYER_ALIGNER)
    assert again["details"] == {"alignment_trusted": True, "layer_map": [[0, 0], [1, 2]]}
    assert pair.evidence(LAYER_ALIGNER).details["layer_map"] == [[0, 0], [1, 2]]

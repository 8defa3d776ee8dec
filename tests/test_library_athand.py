"""The library of what is at hand lists the real models and, where built, the zoo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelprint.library import athand


@pytest.mark.real
def test_lists_real_models_and_zoo(tmp_path: Path) -> None:
    zoo = tmp_path / "full" / "manifest.json"
    zoo.parent.mkdir()
    zoo.write_text(json.dumps({"models": {
        "a.seed0": {"kind": "base", "path": "../store/models/a"},
        "real.smollm2": {"kind": "real", "path": "/elsewhere/x.gguf"}}}))
    lines = athand.lines(zoo)
    names = [line.rsplit(" ", 1)[1] for line in lines]
    assert names == ["smollm2-135m", "gemma3-270m", "all-MiniLM-L6-v2", "zoo.a.seed0"]
    assert lines[-1].split(" ")[0] == str((tmp_path / "store" / "models" / "a").resolve())
    assert athand.lines(tmp_path / "absent.json")[:3] == lines[:3]

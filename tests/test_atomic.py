"""Reports, results and fingerprints are written whole or not at all, readable by others."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from modelprint._atomic import atomic_write_text


def test_written_file_has_ordinary_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = atomic_write_text(tmp_path / "sub" / "audit.json", "{}\n")
    finally:
        os.umask(old)
    assert out.read_text() == "{}\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_failed_write_keeps_the_previous_file_and_leaves_no_debris(tmp_path: Path) -> None:
    target = tmp_path / "audit.html"
    target.write_text("previous")


    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "bad \udcff surrogate")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["audit.html"]

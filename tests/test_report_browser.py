"""The report in a real browser: headless Chromium renders the summary table and the charts,
in light and dark mode, and prints it to PDF. Screenshots stay in the test's tmp dir."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import html5lib
import pytest

from modelprint.report import write_report
from tests.report_fixtures import XSS_NAME, make_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and Path("/usr/bin/chromium").exists():
    CHROMIUM = "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian package `chromium`; .ci/run installs it)")

#: Flags that keep the browser from touching the network or a profile outside tmp.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--hide-scrollbars"]
DARK = ["--blink-settings=preferredColorScheme=0", "--force-dark-mode"]


def chromium(tmp_path: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(make_run(3), tmp_path_factory.mktemp("report") / "audit.html")


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


@needs_chromium
def test_browser_renders_summary_table_and_charts(report: Path, tmp_path: Path) -> None:
    dom_text = chromium(tmp_path, report.as_uri(), "--dump-dom").stdout
    dom = html5lib.parse(dom_text, namespaceHTMLElements=False)
    tables = [t for t in dom.iter() if _local(t.tag) == "table"
              and "summary" in (t.get("class") or "")]
    assert len(tables) == 1
    rows = [r for r in tables[0].iter() if _local(r.tag) == "tr"
            and any(_local(c.tag) == "td" for c in r)]
    assert len(rows) == 3
    svgs = [e for e in dom.iter() if _local(e.tag) == "svg"]
    assert len(svgs) > 20
    assert any(_local(e.tag) == "polyline" for e in dom.iter())
    assert not any(_local(e.tag) == "script" for e in dom.iter())
    assert XSS_NAME in "".join(dom.itertext())


def _background(png: Path) -> tuple[int, ...]:
    image = pytest.importorskip("PIL.Image")
    with image.open(png) as im:
        return tuple(im.convert("RGB").getpixel((5, 5)))


@needs_chromium
@pytest.mark.parametrize("mode", ["light", "dark"])
def test_screenshot_light_and_dark(report: Path, tmp_path: Path, mode: str) -> None:
    shot = tmp_path / f"report-{mode}.png"
    chromium(tmp_path, report.as_uri(), f"--screenshot={shot}", "--window-size=1280,2000",
             *(DARK if mode == "dark" else []))
    assert shot.stat().st_size > 20_000            # a real page, not a blank one
    bg = _background(shot)
    if mode == "light":
        assert min(bg) > 200, bg
    else:
        assert max(bg) < 60, bg                  # prefers-color-scheme: dark is honoured


@needs_chromium
def test_prints_to_pdf(report: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    chromium(tmp_path, report.as_uri(), f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert data.count(b"/Type /Page") - data.count(b"/Type /Pages") >= 3

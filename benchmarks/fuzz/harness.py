"""Run one hostile input through the real entry point and classify what a user would see.

Entry points: ``modelprint fingerprint MODEL`` and ``modelprint compare CANDIDATE REFERENCE``
through :func:`modelprint.cli.main` (exactly what the console script runs), and the audit
file through :func:`modelprint.spec.load_audit` (what the pytest plugin's collection runs;
``tests/test_fuzz.py`` also runs a few through pytest itself).

Outcomes:

- ``error``: a clean refusal -- exit 2 with one stderr line ``modelprint: error: <file>: <cause>``
  naming the input's file (for audit files ``file:line``);
- ``accepted``: the input was read and the command finished (exit 0 or 1);
- ``unnamed``: a one-line error that does not name the file (a bug: the user cannot tell
  which file is wrong);
- ``internal``: exit 3, a :class:`CheckError` (a check failed on input that passed validation);
- ``traceback``: any other exception escaped.

Hangs and memory are measured by whoever calls :func:`run_case` (the long run's parent process
kills a worker past its time or RSS limit); :func:`peak_rss_reset` and :func:`peak_rss` give
the per-input peak resident set size on Linux (``/proc/self/clear_refs``).
"""

from __future__ import annotations

import contextlib
import io
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

CLEAN = ("error", "accepted")


@dataclass(frozen=True)
class Outcome:
    outcome: str
    detail: str

    @property
    def clean(self) -> bool:
        return self.outcome in CLEAN


def run_case(args: list[str], work: Path) -> Outcome:
    """Run the entry point named by ``args`` (from :func:`inputs.write_case`) in-process."""
    verb, *paths = args
    named = paths[-1]
    try:
        if verb == "collect":
            return _collect(Path(named))
        from modelprint import cli

        argv = [verb, *paths]
        if verb == "fingerprint":
            argv += ["-o", str(work / "out.fp.json"), "--no-cache"]
        else:
            argv += ["--offline"]
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    except Exception as exc:   # classifying what escapes is the point
        return Outcome("traceback", _last_frame(exc))
    text = err.getvalue().strip()
    if code in (0, 1):
        return Outcome("accepted", f"exit {code}")
    if code == 3:
        return Outcome("internal", text[:300])
    if code == 2 and "\n" not in text and text.startswith("modelprint: error: "):
        return Outcome("error" if _names(text, paths) else "unnamed", text[:300])
    return Outcome("unnamed", f"exit {code}: {text[:300]}")


def _names(message: str, paths: list[str]) -> bool:
    """Does the message name the input (one of its files, or the model directory)?"""
    folder = str(Path(paths[-1]).parent)
    return any(p in message for p in paths) or folder in message


def _collect(path: Path) -> Outcome:
    from modelprint.errors import AuditSpecError, InputError
    from modelprint.spec import load_audit

    try:
        load_audit(path)
    except AuditSpecError as exc:
        text = str(exc)
        ok = "\n" not in text and re.match(re.escape(str(path)) + r":\d+: ", text)
        return Outcome("error" if ok else "unnamed", text[:300])
    except InputError as exc:
        return Outcome("unnamed", f"{type(exc).__name__}: {str(exc)[:300]}")
    return Outcome("accepted", "collected")


def _last_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}: {str(exc)[:200]}"


def peak_rss_reset() -> bool:
    """Reset this process's peak RSS (VmHWM), so :func:`peak_rss` measures from now; False
    where the system does not allow it (then the peak is the process lifetime's)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def peak_rss() -> int:
    """Peak resident set size in bytes since the last :func:`peak_rss_reset` (Linux)."""
    return _status_kb("VmHWM") * 1024


def rss_of(pid: int | str = "self") -> int:
    """Current resident set size of a process in bytes (0 when it is gone)."""
    return _status_kb("VmRSS", pid) * 1024


def vm_size() -> int:
    """This process's virtual address space in bytes."""
    return _status_kb("VmSize") * 1024


def _status_kb(field: str, pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

"""``modelprint compare`` as a shell user and a script see it: table, verdict, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.audit_models import make_zoo


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_zoo(tmp_path_factory.mktemp("zoo"))


def compare(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelprint.cli", "compare", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=os.environ.copy(),
                          timeout=300)


def test_derived_pair_exits_1_with_table_and_json(zoo: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = compare(zoo["tuned"], zoo["base"], "--json", out)
    assert proc.returncode == 1, proc.stderr
    assert "verdict: derived" in proc.stdout
    for column in ("check", "score", "threshold", "p", "indicates", "summary"):
        assert column in proc.stdout.splitlines()[3]
    assert "weights_cosine" in proc.stdout
    data = json.loads(out.read_text())
    (pair,) = data["pairs"]
    assert pair["audit"] is None and pair["expect"] is None and pair["outcome"] is None
    assert pair["verdict"] == "derived"
    assert pair["checks"]["weights_cosine"]["indicates_derivation"] is True
    assert data["command"][:2] == ["modelprint", "compare"]


def test_independent_pair_exits_0(zoo: dict[str, Path]) -> None:
    proc = compare(zoo["other"], zoo["base"], "--check", "weights_cosine")
    assert proc.returncode == 0, proc.stderr
    assert "verdict: independent" in proc.stdout
    assert "identity" not in proc.stdout  # only the selected check ran


def test_a_warm_compare_skips_the_start_up_imports_it_does_not_need(tmp_path: Path) -> None:
    """A warm compare (both fingerprints cached) is mostly start-up on small models, so what
    it imports is part of its wall time (benchmarks/peers: ~0.6 s, of which imports ~0.2 s).
    The locks, the licence scanner with yaml, importlib.metadata and scipy's __init__ cost
    ~80 ms together and are needed only when something is built."""
    from tests.synth import make_model

    a = make_model(tmp_path / "m", "llama", seed=1).path
    b = make_model(tmp_path / "m", "llama", seed=2).path
    env = {**os.environ, "MODELPRINT_CACHE_DIR": str(tmp_path / "cache")}
    code = ("import sys; from modelprint.cli import main; rc = main(['compare', sys.argv[1], "
            "sys.argv[2]]); print(sorted(m for m in ('filelock', 'yaml', 'importlib.metadata',"
            " 'scipy', 'modelprint.license.scan') if m in sys.modules)); sys.exit(rc)")
    runs = [subprocess.run([sys.executable, "-c", code, str(a), str(b)],
                           capture_output=True, text=True, env=env, timeout=300)
            for _ in range(2)]
    assert runs[0].returncode in (0, 1) and runs[1].returncode == runs[0].returncode, \
        runs[0].stderr
    cold, warm = (r.stdout.strip().splitlines()[-1] for r in runs)
    assert "filelock" in cold     # the cold run built (and locked) both entries
    assert warm == "[]"


def test_relative_references_resolve_from_the_working_directory(zoo: dict[str, Path]) -> None:
    proc = compare("tuned.fp.json", "base.fp.json", "--check", "identity",
                   cwd=zoo["base"].parent)
    assert proc.returncode == 1, proc.stderr


@pytest.mark.parametrize("case", ["missing", "malformed", "pickle", "bad-check"])
def test_bad_input_exits_2_with_one_line(zoo: dict[str, Path], tmp_path: Path,
                                         case: str) -> None:
    args: list[str | Path] = [zoo["base"]]
    if case == "missing":
        args.insert(0, tmp_path / "nowhere.safetensors")
    elif case == "malformed":
        bad = tmp_path / "bad.fp.json"
        bad.write_text("{not json")
        args.insert(0, bad)
    elif case == "pickle":
        pkl = tmp_path / "model.bin"
        pkl.write_bytes(b"\x80\x04")
        args.insert(0, pkl)
    else:
        args = [zoo["tuned"], zoo["base"], "--check", "nope"]
    proc = compare(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modelprint: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    if case != "bad-check":
        assert str(args[0]) in lines[0] or Path(str(args[0])).name in lines[0]


def test_cold_compare_fingerprints_the_reference_alongside_with_the_same_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two weight directories and an empty cache (the case where the reference is
    fingerprinted in a child process): both fingerprints end up in the cache and the result
    equals a sequential in-process run."""
    from modelprint.engine import Engine, Target
    from tests.synth import make_model

    a = make_model(tmp_path / "m", "llama", seed=1).path
    b = make_model(tmp_path / "m", "llama", seed=2).path
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(cache))
    proc = compare(a, b, "--json", tmp_path / "r.json")
    assert proc.returncode in (0, 1), proc.stderr
    assert len(list((cache / "fingerprints").glob("*.fp.cache"))) == 2
    got = json.loads((tmp_path / "r.json").read_text())["pairs"][0]
    monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(tmp_path / "other-cache"))
    want = Engine().pair(Target(str(a)), Target(str(b))).to_json()
    assert got["verdict"] == want["verdict"]
    assert {k: v["score"] for k, v in got["checks"].items()} == \
        {k: v["score"] for k, v in want["checks"].items()}


def test_a_warm_preload_starts_no_child_and_stops_one_it_no_longer_needs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With both fingerprints cached (every file's digest remembered), preload starts no child.
    When a child was started but the caller then finds what it needs, the child is stopped
    instead of awaited: no process is left behind and the cache holds the same two entries,
    nothing half-written."""
    import multiprocessing

    from modelprint import prefetch
    from modelprint.engine import Engine, Target
    from modelprint.models import clear_memo
    from tests.synth import make_model

    a = make_model(tmp_path / "m", "llama", seed=1).path
    b = make_model(tmp_path / "m", "llama", seed=2).path
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(cache))
    Engine().preload(Target(str(a)), Target(str(b)))  # cold: fills the cache
    before = sorted(p.name for p in (cache / "fingerprints").iterdir())
    clear_memo()
    children: list[object] = []
    real_start = prefetch.start

    def spy(*args: object, **kwargs: object) -> object:
        child = real_start(*args, **kwargs)  # type: ignore[arg-type]
        children.append(child)
        return child

    monkeypatch.setattr(prefetch, "start", spy)
    engine = Engine()
    engine.preload(Target(str(a)), Target(str(b)))
    # warm: every weight file has a remembered digest, so no child is started at all
    assert children == [None] and multiprocessing.active_children() == []
    assert engine.model(Target(str(b))).fingerprint.model.reference == str(b)
    # a touched file has no remembered digest: a child is started, and stopped once the
    # caller has what it needs (the content, hence the cache entry, is the same)
    clear_memo()
    for f in b.glob("*.safetensors"):
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    engine = Engine()
    engine.preload(Target(str(a)), Target(str(b)))
    assert len(children) == 2 and children[1] is not None  # a child was started ...
    assert multiprocessing.active_children() == []  # ... and is gone
    assert sorted(p.name for p in (cache / "fingerprints").iterdir()) == before
    assert engine.model(Target(str(b))).fingerprint.model.reference == str(b)


def test_a_cold_preload_gives_the_child_the_smaller_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child process starts ~0.2 s late (interpreter and imports), so it fingerprints the
    smaller model whichever side of the pair that is; both fingerprints then load as before."""
    from modelprint import prefetch
    from modelprint.engine import Engine, Target
    from tests.synth import make_model

    small = make_model(tmp_path / "m", "llama", seed=1).path
    large = make_model(tmp_path / "m", "llama", seed=2, layers=6).path
    monkeypatch.setenv("MODELPRINT_CACHE_DIR", str(tmp_path / "cache"))
    given: list[list[str]] = []
    real_start = prefetch.start

    def spy(references: list[tuple[str, Path | None]], offline: bool | None) -> object:
        given.append([r for r, _ in references])
        return real_start(references, offline)

    monkeypatch.setattr(prefetch, "start", spy)
    engine = Engine()
    engine.preload(Target(str(small)), Target(str(large)))    # the candidate is smaller
    assert given == [[str(small)]]
    assert engine.model(Target(str(large))).fingerprint.num_layers == 6
    assert engine.model(Target(str(small))).fingerprint.num_layers == 2


def test_a_preload_of_two_missing_models_names_the_candidate(tmp_path: Path) -> None:
    from modelprint.engine import Engine, Target
    from modelprint.errors import InputError

    with pytest.raises(InputError, match="first-missing"):
        Engine().preload(Target(str(tmp_path / "first-missing")),
                         Target(str(tmp_path / "second-missing")))


def test_a_broken_reference_still_fails_with_one_line(tmp_path: Path) -> None:
    """The child that fingerprints the reference fails quietly; the error is reported here."""
    from tests.synth import make_model

    a = make_model(tmp_path / "m", "llama", seed=1).path
    b = make_model(tmp_path / "m", "llama", seed=2).path
    weights = b / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated
    proc = compare(a, b)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.safetensors" in lines[0], proc.stderr

"""MODEL references: turn what the user typed into something a source can open.

A reference is a path (directory, ``*.safetensors``, ``*.gguf``, ``*.fp.json``) or
``hf:ORG/NAME[@REVISION]``. Parsing touches the filesystem only to see what a path is; no
weight file is opened here. Pickled checkpoints are refused at this point, before anything
could be tempted to load them: unpickling runs arbitrary code (and ``torch.load``'s
``weights_only`` guard has had bypasses), so modelprint never opens one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from modelprint.errors import ModelReferenceError, PickleRefusedError

RefKind = Literal["directory", "safetensors", "gguf", "hf", "fingerprint"]

#: Suffixes of pickle-based checkpoints (PyTorch, Lightning, joblib, raw pickle).
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")

#: One line on why and how, shared by every refusal.
PICKLE_ADVICE = (
    "pickled checkpoints can execute arbitrary code when loaded, so modelprint never opens them; "
    "convert to safetensors in a trusted sandbox (e.g. the safetensors `convert` script, or "
    "`safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors')`) "
    "and pass the result"
)

# Hub naming rules: letters, digits, '-', '_', '.'; no leading/trailing '-' or '.', no '--'/'..'.
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_HUB_RE = re.compile(rf"^({_HUB_PART})/({_HUB_PART})(?:@(.+))?$")
_REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed MODEL reference. ``text`` is kept verbatim: results echo what the user wrote."""

    kind: RefKind
    text: str
    path: Path | None = None
    repo_id: str | None = None
    revision: str | None = None


def is_pickle_name(name: str) -> bool:
    """True for file names of pickled checkpoints (``pytorch_model.bin``, ``x.pt`` ...)."""
    return name.lower().endswith(PICKLE_SUFFIXES)


def expand(text: str, base_dir: str | Path | None = None) -> Path:
    """``text`` as a path (``~`` expanded, relative to ``base_dir``); ModelReferenceError for
    ``~nosuchuser``."""
    try:
        path = Path(text).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir).expanduser() / path
    except RuntimeError as exc:          # ~user that does not exist
        raise ModelReferenceError(text[:200], str(exc)) from None
    return path


def exists(path: Path) -> bool:
    """``path.exists()``, but a name the system cannot look up (too long, ...) is an error
    naming it rather than an OSError."""
    try:
        return path.exists()
    except OSError as exc:
        raise ModelReferenceError(str(path)[:200] + ("..." if len(str(path)) > 200 else ""),
                                  f"cannot be looked up ({exc.strerror or exc})") from None


def parse_reference(text: str, base_dir: str | Path | None = None) -> ModelRef:
    """Parse one MODEL reference. Relative paths resolve against ``base_dir`` (an audit file
    passes its own directory) or the working directory.

    Raises :class:`ModelReferenceError` for anything that names no usable model and
    :class:`PickleRefusedError` for pickled checkpoints.
    """
    raw = str(text)
    stripped = raw.strip()
    if not stripped:
        raise ModelReferenceError(None, "empty MODEL reference")
    if stripped.startswith("hf:"):
        return _parse_hub(raw, stripped[3:])

    path = expand(stripped, base_dir)
    name = path.name
    if is_pickle_name(name):
        raise PickleRefusedError(path, PICKLE_ADVICE)
    if not exists(path):
        raise ModelReferenceError(path, "no such file or directory")
    if path.is_dir():
        return ModelRef("directory", raw, path=_check_directory(path))
    lower = name.lower()
    if lower.endswith(".safetensors"):
        return ModelRef("safetensors", raw, path=path)
    if lower.endswith(".gguf"):
        return ModelRef("gguf", raw, path=path)
    if lower.endswith(".fp.json"):
        return ModelRef("fingerprint", raw, path=path)
    raise ModelReferenceError(
        path,
        "not a model: expected a directory with config.json and *.safetensors, a *.safetensors "
        "or *.gguf file, a *.fp.json fingerprint, or hf:ORG/NAME[@REVISION]",
    )


def _parse_hub(raw: str, spec: str) -> ModelRef:
    m = _HUB_RE.match(spec)
    if m is None or "--" in spec.split("@", 1)[0] or ".." in spec.split("@", 1)[0]:
        raise ModelReferenceError(
            raw.strip(), "not a valid hub reference: expected hf:ORG/NAME or hf:ORG/NAME@REVISION"
        )
    org, name, revision = m.group(1), m.group(2), m.group(3)
    if revision is not None and (not _REVISION_RE.match(revision) or ".." in revision):
        raise ModelReferenceError(
            raw.strip(), f"not a valid hub revision {revision!r}: use a branch, tag or commit hash"
        )
    return ModelRef("hf", raw, repo_id=f"{org}/{name}", revision=revision)


def _check_directory(path: Path) -> Path:
    """A model directory needs safetensors weights and a config.json; pickles are refused."""
    names = sorted(p.name for p in path.iterdir() if p.is_file())
    weights = [n for n in names if n.lower().endswith(".safetensors")]
    has_index = "model.safetensors.index.json" in names
    if not weights and not has_index:
        pickles = [n for n in names if is_pickle_name(n) or n.endswith(".bin.index.json")]
        if pickles:
            raise PickleRefusedError(path / pickles[0], PICKLE_ADVICE)
        ggufs = [n for n in names if n.lower().endswith(".gguf")]
        if ggufs:
            raise ModelReferenceError(
                path, f"holds GGUF files, not safetensors: pass the file itself, e.g. {ggufs[0]}"
            )
        raise ModelReferenceError(path, "no *.safetensors weights in this directory")
    if "config.json" not in names:
        raise ModelReferenceError(
            path,
            "no config.json next to the safetensors weights: modelprint reads the architecture "
            "(model_type) from it",
        )
    return path

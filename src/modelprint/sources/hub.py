"""``hf:ORG/NAME[@REVISION]`` references through the Hugging Face hub cache.

Only the files modelprint needs are fetched (config, tokenizer, license/readme files and the
safetensors weights, never pickles). Offline (``HF_HUB_OFFLINE=1`` or ``offline=True``) the
reference resolves from the local cache alone. The resolved 40-hex commit becomes the
source's ``revision`` so every result pins exactly which weights were audited.

The cache location is read from the environment at call time (``HF_HUB_CACHE``,
``HUGGINGFACE_HUB_CACHE``, ``HF_HOME``, ``XDG_CACHE_HOME``) rather than from
``huggingface_hub.constants``, which freezes it at import.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from modelprint.errors import HubError, PickleRefusedError
from modelprint.refs import PICKLE_ADVICE, ModelRef, is_pickle_name
from modelprint.sources._files import load_json_file
from modelprint.sources.safetensors import INDEX_NAME, SafetensorsSource

SIDE_FILES = [
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.txt", INDEX_NAME,
    "LICENSE*", "LICENCE*", "NOTICE*", "COPYING*", "README*", "*.md",
]
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "true", "yes", "on"}


def hub_cache_dir() -> Path:
    """The hub cache directory, honouring the environment as it is now."""
    env = os.environ
    for key in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(key):
            return Path(env[key]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def offline_from_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


class HubSource(SafetensorsSource):
    """A safetensors snapshot from the hub cache, pinned to its commit."""

    def __init__(self, snapshot: Path, reference: str, repo_folder: Path, commit: str) -> None:
        super().__init__(snapshot, reference, trusted_root=repo_folder)
        self.revision = commit


def open_hub(ref: ModelRef, offline: bool | None = None) -> HubSource:
    """Resolve ``ref`` (kind ``hf``) to a cached snapshot, downloading only what is needed."""
    assert ref.repo_id is not None
    if offline is None:
        offline = offline_from_env()
    where = ref.text.strip()
    cache = hub_cache_dir()
    revision = ref.revision or "main"
    local_only = offline or bool(_COMMIT.match(revision) and (
        cache / f"models--{ref.repo_id.replace('/', '--')}" / "snapshots" / revision).is_dir())
    weights = None if local_only else _remote_weights(ref, where, revision)
    if weights is None:  # offline, an immutable commit already cached, or the hub unreachable
        why = "offline (HF_HUB_OFFLINE=1)" if offline else "the hub cannot be reached"
        snapshot = _snapshot(ref, where, cache, revision, [*SIDE_FILES, "*.safetensors"], why)
    else:
        snapshot = _snapshot(ref, where, cache, revision, SIDE_FILES + weights, None)
        if not weights:  # sharded: the index (just fetched) names the shards
            shards = _index_shards(snapshot)
            snapshot = _snapshot(ref, where, cache, snapshot.name, SIDE_FILES + shards, None)
    commit = snapshot.name
    if not _COMMIT.match(commit):
        raise HubError(where, f"resolved snapshot {snapshot} is not named by a commit hash")
    names = [p.name for p in snapshot.iterdir()]
    if not any(n.endswith(".safetensors") for n in names) and INDEX_NAME not in names:
        raise HubError(
            where, f"cached snapshot {commit} holds no *.safetensors weights (cache {cache}); "
            "download them with `hf download " + ref.repo_id + "`")
    if "config.json" not in names:
        raise HubError(where, f"cached snapshot {commit} has no config.json")
    return HubSource(snapshot, ref.text, snapshot.parent.parent, commit)


def _snapshot(
    ref: ModelRef, where: str, cache: Path, revision: str, patterns: list[str],
    offline_why: str | None,
) -> Path:
    """``snapshot_download`` with every failure turned into a one-line HubError.
    ``offline_why`` (not None) means: resolve from the cache only, and why."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    assert ref.repo_id is not None
    try:
        path = snapshot_download(
            ref.repo_id, revision=revision, cache_dir=str(cache), allow_patterns=patterns,
            local_files_only=offline_why is not None,
        )
    except LocalEntryNotFoundError:
        why = offline_why or "the hub cannot be reached"
        raise HubError(
            where, f"revision {revision!r} is not in the local Hugging Face cache ({cache}) and "
            f"{why}; download it once with `hf download {ref.repo_id}` or point HF_HUB_CACHE "
            "at a cache that holds it") from None
    except RevisionNotFoundError:
        raise HubError(where, f"revision {revision!r} does not exist on the hub") from None
    except GatedRepoError:
        raise HubError(where, "gated repository: accept its terms and log in (hf auth login)"
                       ) from None
    except RepositoryNotFoundError:
        raise HubError(where, "repository not found on the hub (or private)") from None
    except Exception as exc:  # network stack errors (httpx) are not OSError subclasses
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HubError(where, f"cannot fetch from the hub: {first}") from None
    return Path(path)


def _remote_weights(ref: ModelRef, where: str, revision: str) -> list[str] | None:
    """Which weight files to fetch: [] means sharded (read the index first), None that the
    hub could not be asked (fall back to the cache)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    assert ref.repo_id is not None
    try:
        files = HfApi().list_repo_files(ref.repo_id, revision=revision)
    except RevisionNotFoundError:
        raise HubError(where, f"revision {revision!r} does not exist on the hub") from None
    except GatedRepoError:
        raise HubError(where, "gated repository: accept its terms and log in (hf auth login)"
                       ) from None
    except RepositoryNotFoundError:
        raise HubError(where, "repository not found on the hub (or private)") from None
    except Exception:  # connection errors, timeouts, hub outages: try the local cache
        return None
    if INDEX_NAME in files:
        return []
    if "model.safetensors" in files:
        return ["model.safetensors"]
    top = [f for f in files if "/" not in f and f.endswith(".safetensors")]
    if top:
        return top
    pickles = [f for f in files if is_pickle_name(f)]
    if pickles:
        raise PickleRefusedError(f"{where}/{pickles[0]}", PICKLE_ADVICE)
    ggufs = [f for f in files if f.endswith(".gguf")]
    if ggufs:
        raise HubError(where, f"holds GGUF files only: download one (e.g. {ggufs[0]}) and "
                       "pass its path")
    raise HubError(where, "no *.safetensors weights in this repository")


def _index_shards(snapshot: Path) -> list[str]:
    index = snapshot / INDEX_NAME
    if not index.is_file():
        return ["*.safetensors"]
    wm = load_json_file(index, INDEX_NAME).get("weight_map")
    if not isinstance(wm, dict):
        return ["*.safetensors"]
    return sorted({v for v in wm.values() if isinstance(v, str)})

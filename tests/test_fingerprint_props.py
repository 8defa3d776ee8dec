"""Property: a model's fingerprint depends on its tensors, not on how they sit on disk.

The same tensors written in another order, or split over another number of shards, must give
the same statistics, curves, vectors, tensor digests and sketches -- only the weight files
(and so their digests) differ.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelprint.fingerprint.build import build_fingerprint
from modelprint.fingerprint.model import Fingerprint
from modelprint.sources import open_source

from .strategies import relayouts
from .synth import make_model

Entry = tuple[str, list[int], bytes]


def read_entries(files: list[Path]) -> dict[str, Entry]:
    """name -> (dtype, shape, stored bytes), straight from the safetensors layout."""
    out: dict[str, Entry] = {}
    for f in files:
        raw = f.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        for name, e in header.items():
            if name != "__metadata__":
                a, b = e["data_offsets"]
                out[name] = (e["dtype"], e["shape"], raw[8 + n + a: 8 + n + b])
    return out


def write_ordered(path: Path, names: list[str], entries: dict[str, Entry]) -> None:
    """A safetensors file with the tensors' data in exactly the order ``names``."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in names:
        dtype, shape, data = entries[name]
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for name in names:
            fh.write(entries[name][2])


def relayout(src: Path, dst: Path, entries: dict[str, Entry], order: list[str],
             shards: int) -> None:
    dst.mkdir(parents=True)
    for side in src.iterdir():
        if side.suffix != ".safetensors" and side.name != "model.safetensors.index.json":
            shutil.copy(side, dst / side.name)
    if shards == 1:
        write_ordered(dst / "model.safetensors", order, entries)
        return
    weight_map = {}
    for s in range(shards):
        group = order[len(order) * s // shards: len(order) * (s + 1) // shards]
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        write_ordered(dst / fname, group, entries)
        weight_map.update({n: fname for n in group})
    (dst / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}))


def _content(fp: Fingerprint) -> dict[str, Any]:
    """Everything but the file-level identity (paths and file digests)."""
    data = json.loads(json.dumps(fp.to_json()))
    data["tensors"] = sorted(data["tensors"], key=lambda t: (
        t["role"], -1 if t["layer"] is None else t["layer"],
        -1 if t["expert"] is None else t["expert"]))
    data["metadata"]["other_tensors"] = sorted(data["metadata"]["other_tensors"],
                                               key=lambda t: t["tensor"])
    data["metadata"].pop("source", None)  # safetensors __metadata__ of the first file
    del data["model"]
    # the repository-file scan lists the shard index when there is one: files, not tensors
    data["documents"]["files"] = [f for f in data["documents"].get("files", [])
                                  if f.get("path") != "model.safetensors.index.json"]
    return data


def _fp(path: Path) -> Fingerprint:
    with open_source(str(path)) as src:
        return build_fingerprint(src, progress=False)


class Base:
    """The original model, its tensors' bytes and its fingerprint content (short repr:
    Hypothesis prints it with every failing example)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries = read_entries(sorted(path.glob("*.safetensors")))
        self.content = _content(_fp(path))

    def __repr__(self) -> str:
        return f"Base({self.path.name})"


@pytest.fixture(scope="module", params=["mixtral", "gpt2"])
def base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Base:
    m = make_model(tmp_path_factory.mktemp("base"), request.param, dtype="BF16", experts=4
                   if request.param == "mixtral" else None)
    return Base(m.path)


@given(data=st.data())
@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fingerprint_ignores_order_and_sharding(base: Base, data: st.DataObject) -> None:
    layout = data.draw(relayouts(sorted(base.entries)), label="layout")
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "relaid"
        relayout(base.path, dst, base.entries, layout["order"], layout["shards"])
        got = _fp(dst)
    assert len(got.model.files) == layout["shards"]
    assert _content(got) == base.content

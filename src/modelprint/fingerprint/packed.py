"""The fingerprint cache's own file form: the JSON without the sketch payloads, then the payloads
as raw float16 bytes.

A ``*.fp.json`` carries its sketches as base64 text. Reading a cached SmolLM2-size fingerprint
back that way costs a parse of 7.5 MB of JSON (~28 ms) and a base64 decode of 6.8 M characters
when the checks read the sketches (~15-28 ms), per model and per warm run (a warm ``compare``
of two such models measured 28-35 ms faster with this form; benchmarks/peers/RESULTS.md). The
cache is read far more often than it is written, so an entry is stored as

    MAGIC | header length (8 bytes, little-endian) | header JSON | payload bytes

where the header is the fingerprint JSON with each sketch entry's ``values`` replaced by
``[offset, nbytes]`` into the payload. Reading it parses ~0.7 MB of JSON and makes one
read-only float16 view per entry into the payload (no copy, no base64);
:func:`~modelprint.fingerprint.sketches.decode` takes either form. The float16 bytes are the
ones the base64 text encodes, so a fingerprint read back either way holds the same numbers and
:meth:`Fingerprint.to_json` writes the same ``*.fp.json``. This is an internal format of the
cache (its file suffix is new, so an older cache's entries are simply not found); what users
exchange stays the ``*.fp.json`` of CONTRACT.md.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from modelprint.errors import FingerprintFormatError
from modelprint.fingerprint.sketches import encode

MAGIC = b"modelprint-fp-cache/1\n"
#: Bytes of the header length that follows :data:`MAGIC`.
HEADER_LEN = 8


def sketch_entries(sketches: Any) -> Iterator[dict[str, Any]]:
    """Every sketch entry (a dict holding ``values``) of a ``sketches`` section: the sections
    that are one entry (the embedding sample) and those that map slot keys to entries."""
    if not isinstance(sketches, dict):
        return
    for kind, section in sketches.items():
        if kind == "version" or not isinstance(section, dict):
            continue
        if "values" in section:
            yield section
            continue
        for entry in section.values():
            if isinstance(entry, dict) and "values" in entry:
                yield entry


def payload(values: Any) -> bytes:
    """The float16 bytes of one entry's ``values`` (base64 text or a float16 array)."""
    if isinstance(values, np.ndarray):
        return np.ascontiguousarray(values, dtype="<f2").tobytes()
    return base64.b64decode(values)


def pack(data: dict[str, Any]) -> bytes:
    """The cache file of a fingerprint's JSON dict (``data`` is not changed)."""
    header = dict(data)
    sketches = header.get("sketches")
    chunks: list[bytes] = []
    if isinstance(sketches, dict):
        header["sketches"] = sketches = _copy_sections(sketches)
        offset = 0
        for entry in sketch_entries(sketches):
            raw = payload(entry["values"])
            entry["values"] = [offset, len(raw)]
            chunks.append(raw)
            offset += len(raw)
    head = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("utf-8")
    return b"".join([MAGIC, len(head).to_bytes(HEADER_LEN, "little"), head, *chunks])


def _copy_sections(sketches: dict[str, Any]) -> dict[str, Any]:
    """A copy deep enough that replacing an entry's ``values`` leaves the original alone."""
    out: dict[str, Any] = {}
    for kind, section in sketches.items():
        if kind == "version" or not isinstance(section, dict):
            out[kind] = section
        elif "values" in section:
            out[kind] = dict(section)
        else:
            out[kind] = {k: dict(e) if isinstance(e, dict) else e for k, e in section.items()}
    return out


def unpack(raw: bytes, where: str | Path) -> dict[str, Any]:
    """The fingerprint JSON dict of a cache file, each sketch entry's ``values`` a read-only
    float16 array viewing ``raw``. Raises :class:`FingerprintFormatError` on anything that is
    not such a file (bad magic, a header or an offset outside the file, an odd length)."""
    start = len(MAGIC) + HEADER_LEN
    if not raw.startswith(MAGIC) or len(raw) < start:
        raise FingerprintFormatError(where, "not a modelprint fingerprint cache entry")
    size = int.from_bytes(raw[len(MAGIC):start], "little")
    if size > len(raw) - start:
        raise FingerprintFormatError(where, "truncated (its header runs past the end)")
    try:
        data = json.loads(raw[start:start + size])
    except (ValueError, RecursionError) as exc:
        raise FingerprintFormatError(where, f"header is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FingerprintFormatError(where, "header is not a JSON object")
    body = memoryview(raw)[start + size:]
    for entry in sketch_entries(data.get("sketches")):
        ref = entry["values"]
        if not (isinstance(ref, list) and len(ref) == 2
                and all(type(v) is int and v >= 0 for v in ref)
                and ref[1] % 2 == 0 and ref[0] + ref[1] <= len(body)):
            raise FingerprintFormatError(where, f"sketch payload reference {ref!r} is not "
                                                "inside the file")
        arr = np.frombuffer(body, dtype="<f2", count=ref[1] // 2, offset=ref[0])
        entry["values"] = arr
    return data


def sketches_json(sketches: Any) -> Any:
    """A ``sketches`` section with every float16-array ``values`` as base64 text (the
    ``*.fp.json`` form); the section itself when it holds none (a freshly built fingerprint)."""
    if not isinstance(sketches, dict) or not any(
            isinstance(e["values"], np.ndarray) for e in sketch_entries(sketches)):
        return sketches
    copied = _copy_sections(sketches)
    for entry in sketch_entries(copied):
        if isinstance(entry["values"], np.ndarray):
            entry["values"] = encode(entry["values"])
    return copied

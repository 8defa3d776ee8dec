"""JSON nesting depth, measured before parsing and without recursion.

``json.loads`` recurses once per nesting level: 100,000 ``[`` escape as a ``RecursionError``
(or worse, exhaust the C stack), and every reader after it (schema validation, ``_finite``)
recurses again. Every JSON file modelprint reads comes from someone else, so its depth is
measured first by a linear, chunked numpy scan of the raw bytes: a quote counts when an even
number of backslashes precede it, brackets count outside strings. Memory stays a few times
:data:`_CHUNK` whatever the file size; a pathological string never makes it quadratic.
"""

from __future__ import annotations

import numpy as np

from modelprint.limits import MAX_JSON_DEPTH

#: Bytes scanned at a time: a chunk of nothing but brackets costs ~60 bytes of index arrays
#: per byte, so this keeps the worst case near 60 MB.
_CHUNK = 1024 * 1024
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = (ord("["), ord("{"))
_CLOSE = (ord("]"), ord("}"))
_SPECIAL = np.zeros(256, dtype=bool)
_SPECIAL[[_QUOTE, _BACKSLASH, *_OPEN, *_CLOSE]] = True


def json_depth(data: bytes | str, stop_above: int | None = None) -> int:
    """The deepest bracket nesting of ``data`` outside strings (0 for a bare scalar).

    Invalid JSON gives some number rather than an error: the parser that runs next reports it.
    With ``stop_above``, the scan ends at the first chunk that nests deeper (the depth
    returned is then the deepest seen so far, at least ``stop_above + 1``).
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    in_string = False
    run = 0          # backslashes ending the previous chunk
    depth = deepest = 0
    for start in range(0, len(raw), _CHUNK):
        chunk = np.frombuffer(raw, dtype=np.uint8, count=min(_CHUNK, len(raw) - start),
                              offset=start)
        # Only quotes, backslashes and brackets matter: work on their positions alone (the
        # bulk of a fingerprint, base64 and digits, has none of them).
        pos = np.flatnonzero(_SPECIAL[chunk])
        if pos.size == 0:
            run = 0
            continue
        vals = chunk[pos]
        is_bs = vals == _BACKSLASH
        k = np.arange(pos.size, dtype=np.int64)
        # Is the byte just before each special byte a backslash (of this chunk or the last)?
        prev_bs = np.empty(pos.size, dtype=bool)
        prev_bs[0] = pos[0] == 0 and run > 0
        prev_bs[1:] = is_bs[:-1] & (pos[1:] == pos[:-1] + 1)
        # Length of the backslash run ending at each backslash (runs are contiguous bytes).
        starts = is_bs & ~prev_bs
        last_start = np.maximum.accumulate(np.where(starts, k, -1))
        runlen = np.where(last_start < 0, k + 1 + run, k - last_start + 1)
        before = np.zeros(pos.size, dtype=np.int64)
        before[1:] = np.where(prev_bs[1:], runlen[:-1], 0)
        before[0] = run if prev_bs[0] else 0
        quotes = (vals == _QUOTE) & (before % 2 == 0)
        parity = np.cumsum(quotes, dtype=np.int64) - quotes  # quotes strictly before
        outside = (parity % 2 == 0) != in_string
        steps = (np.isin(vals, _OPEN) & outside).astype(np.int64) - (
            np.isin(vals, _CLOSE) & outside)
        if steps.any():
            levels = np.cumsum(steps) + depth
            deepest = max(deepest, int(levels.max()))
            depth = int(levels[-1])
            if stop_above is not None and deepest > stop_above:
                return deepest
        in_string = in_string != bool(int(quotes.sum()) % 2)
        run = int(runlen[-1]) if is_bs[-1] and pos[-1] == chunk.size - 1 else 0
    return deepest


def check_depth(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise ``ValueError`` when ``data`` nests deeper than ``limit``."""
    depth = json_depth(data, stop_above=limit)
    if depth > limit:
        raise ValueError(f"nested at least {depth} levels deep, over the limit of {limit}")

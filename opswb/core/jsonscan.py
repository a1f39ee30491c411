"""Which JSON Lines may name an object member twice (RFC 7493 I-JSON forbids it).

``suspect_lines(data, offsets, lines)`` looks at line ``i`` = ``data[offsets[i]:
offsets[i + 1]]`` for each ``i`` in ``lines`` and returns those that are *suspect*:
false positives are allowed (the caller checks them exactly), false negatives are not.
A line that is not suspect has no object naming a member twice, at any depth.

The native scanner (``opswb.core._jsonscan``, C, GIL released) walks the bytes without
building objects; it calls a line suspect when two names in one object are equal byte
for byte, when a name holds a backslash (``"a"`` and ``"\\u0061"`` are one name), or
when it cannot follow the line (not one JSON value; nesting deeper than
``strictjson.MAX_DEPTH``; ``NaN``; a trailing comma...). Without it (no C compiler at
install time) the fallback parses each line with ``json`` and is exact: suspect means a
real duplicate, or text ``json`` refuses, or nesting deeper than ``MAX_DEPTH``.
``NATIVE`` says which one runs.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from typing import Any

from opswb.core.strictjson import MAX_DEPTH

try:
    from opswb.core import _jsonscan
except ImportError:  # built without a compiler (the extension is optional)
    _jsonscan = None

NATIVE: bool = _jsonscan is not None

_BYTES_LIKE = (bytes, bytearray, memoryview)


def _int64(values: Any) -> Any:
    """``values`` as a contiguous int64 buffer for the extension (lists become
    ``array('q')``; numpy arrays of another dtype or layout are converted)."""
    if isinstance(values, _BYTES_LIKE) or (isinstance(values, array) and values.typecode == "q"):
        return values
    if hasattr(values, "__array__"):
        import numpy as np

        return np.ascontiguousarray(values, dtype=np.int64)
    return array("q", values)


def suspect_lines_native(data: bytes, offsets: Any, lines: Any) -> list[int]:
    """``suspect_lines`` by the C scanner (``NATIVE`` must be true)."""
    if _jsonscan is None:
        raise RuntimeError("opswb._jsonscan is not built")
    return _jsonscan.suspect_lines(data, _int64(offsets), _int64(lines))


class _Duplicate(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Duplicate
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity, -Infinity are not JSON


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_reject_constant)


def _too_deep(value: Any) -> bool:
    """Whether arrays and objects nest deeper than ``MAX_DEPTH`` in ``value``."""
    todo = [(value, 1)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, dict):
            v = list(v.values())
        elif not isinstance(v, list):
            continue
        if d > MAX_DEPTH:
            return True
        todo.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return False


def _line_suspect(raw: bytes) -> bool:
    try:
        return _too_deep(_DECODER.decode(raw.decode("utf-8")))
    except (_Duplicate, ValueError, RecursionError):  # a duplicate, or what json refuses
        return True


def _as_ints(values: Any) -> list[int]:
    if isinstance(values, _BYTES_LIKE):
        if len(values) % 8:
            raise TypeError("expected a buffer of int64: length is not a multiple of 8")
        return array("q", bytes(values)).tolist()
    return values.tolist() if hasattr(values, "tolist") else [int(v) for v in values]


def suspect_lines_py(data: bytes, offsets: Any, lines: Any) -> list[int]:
    """``suspect_lines`` in pure Python: exact, and slow (a ``json`` parse per line)."""
    cuts, todo, size = _as_ints(offsets), _as_ints(lines), len(data)
    found = []
    for k, i in enumerate(todo):
        if not 0 <= i < len(cuts) - 1 or not 0 <= cuts[i] <= cuts[i + 1] <= size:
            raise ValueError(f"lines[{k}] = {i}: not a line index of offsets "
                             f"({len(cuts)} offsets) or its span is outside data "
                             f"({size} bytes)")
        if _line_suspect(bytes(data[cuts[i]:cuts[i + 1]])):
            found.append(i)
    return found


def suspect_lines(data: bytes, offsets: Sequence[int] | Any,
                  lines: Sequence[int] | Any) -> list[int]:
    """Of the line indexes ``lines`` (ascending), those whose line
    ``data[offsets[i]:offsets[i + 1]]`` may name a member twice in one object, in the
    order given. ``offsets`` and ``lines``: lists of ints, numpy integer arrays, or
    buffers of native int64. Raises ``ValueError`` for an index or span out of range."""
    if NATIVE:
        return suspect_lines_native(data, offsets, lines)
    return suspect_lines_py(data, offsets, lines)

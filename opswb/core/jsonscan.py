"""Which JSON Lines may break I-JSON in a way the bulk reader cannot see (RFC 7493).

``suspect_lines_native(data, offsets, lines)`` looks at line ``i`` = ``data[offsets[i]:
offsets[i + 1]]`` for each ``i`` in ``lines`` and returns those that are *suspect*:
false positives are allowed (the bulk reader sends them to the exact per-line path),
false negatives are not. The C scanner (``opswb.core._jsonscan``, GIL released) walks
the bytes without building objects and calls a line suspect when two names in one object
are equal byte for byte, a name holds a backslash (``"a"`` and ``"\\u0061"`` are one
name), a string holds a raw control byte, a number is one a double misreads, or it cannot
follow the line (not one JSON value; nesting deeper than ``strictjson.MAX_DEPTH``;
``NaN``; a trailing comma...).

``scan_envelopes`` runs the same scan over every line of a chunk and, in the same pass,
reads the envelope's fields: with it the bulk reader needs no other parse of a clean line.

``NATIVE`` says whether the extension was built (it is optional: without a compiler the
bulk reader extracts the fields with DuckDB and keeps its orjson sub-batch check,
``jsonl_bulk._check_sub_batch``; the two give the same staged rows).
``suspect_lines_py`` is the exact answer for duplicates, nesting and text ``json``
refuses, one ``json`` parse per line: the reference the tests hold the scanner to.
"""

from __future__ import annotations

import json
from array import array
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


ENVELOPE_FIELDS = ("tenant_id", "idempotency_key", "event_type", "source", "occurred_at")


def scan_envelopes(data: Any, offsets: Any) -> tuple[bytes, tuple]:
    """Every line ``data[offsets[i]:offsets[i + 1]]`` scanned as ``suspect_lines_native``
    does, and its envelope read in the same pass (``NATIVE`` must be true): ``(plain,
    fields)``. ``plain`` holds a byte per line, 1 when the line is clean and a plain
    envelope (the three identity fields escape-free strings starting with printable
    ASCII, ``payload`` an object, ``source``/``occurred_at`` absent, null or escape-free
    strings, the line starting with ``{``); every other line must take the exact
    per-line path. ``fields`` holds, for each of ``ENVELOPE_FIELDS``, Arrow string
    buffers ``(int32 offsets, data, a validity byte per line)``: a plain line's string
    (its bytes between the quotes), otherwise null."""
    if _jsonscan is None:
        raise RuntimeError("opswb._jsonscan is not built")
    return _jsonscan.scan_envelopes(data, _int64(offsets))


def suspect_lines_native(data: bytes, offsets: Any, lines: Any) -> list[int]:
    """The suspect lines of ``lines``, in the order given, by the C scanner (``NATIVE``
    must be true). ``offsets`` and ``lines``: lists of ints, numpy integer arrays, or
    buffers of native int64. Raises ``ValueError`` for an index or span out of range."""
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
    """The exact check in pure Python, slow (a ``json`` parse per line): a line is
    suspect when it names a member twice, nests past ``MAX_DEPTH`` or is not JSON."""
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


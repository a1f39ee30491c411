"""The payload fingerprint (SPEC §4): one function, used by bulk ingest and by replay.

The fingerprint hashes the canonical JSON of ``{"event_type": ..., "payload": ...}``:
object keys sorted, no insignificant whitespace, strings by their Unicode value, numbers by
value (``100``, ``100.0`` and ``1e2`` are equal; integers exact at any size; numbers past
the double range by exact decimal value, see ``strictjson.BigNumber``).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

import orjson

from opswb.core.strictjson import dump_bytes as _dump_bytes
from opswb.core.strictjson import emit, fragment, read

_SORT = orjson.OPT_SORT_KEYS


def normalize_numbers(value: Any) -> Any:
    """Return ``value`` with every integral float turned into the equal int.

    Returns the very same object when it holds no float, so the common case allocates
    nothing.
    """
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        return value
    if isinstance(value, dict):
        out = None
        for k, v in value.items():
            nv = normalize_numbers(v)
            if nv is not v:
                if out is None:
                    out = dict(value)
                out[k] = nv
        return value if out is None else out
    if isinstance(value, list):
        out_l = None
        for i, v in enumerate(value):
            nv = normalize_numbers(v)
            if nv is not v:
                if out_l is None:
                    out_l = list(value)
                out_l[i] = nv
        return value if out_l is None else out_l
    return value


# The start of a float token in compact JSON: digits after ':', ',' or '[' (or at the very
# start), then '.', 'e' or 'E'. It can also match inside a string, which only costs the
# slow path; it never misses a float. (Kept this simple: it runs once per fingerprint.)
_FLOAT_TOKEN = re.compile(rb"[:,\[]-?\d+[.eE]")
_FLOAT_AT_START = re.compile(rb"-?\d+[.eE]")


def _has_float(out: bytes) -> bool:
    return bool(_FLOAT_TOKEN.search(out) or _FLOAT_AT_START.match(out))


def canonical_json(value: Any) -> bytes:
    """Canonical UTF-8 JSON of ``value``: sorted keys, no whitespace, numbers by value
    (out-of-range numbers in ``BigNumber``'s canonical decimal form)."""
    try:
        out = orjson.dumps(value, option=_SORT, default=fragment)
        if not _has_float(out):
            return out  # no float anywhere: nothing to normalise (the common case)
        return orjson.dumps(normalize_numbers(value), option=_SORT, default=fragment)
    except (TypeError, orjson.JSONEncodeError):
        # Integers beyond 64 bits, lone surrogates in Python strings: the exact emitter
        # (the same value always takes this path, so its fingerprint stays stable).
        return emit(normalize_numbers(value), sort_keys=True)


def fingerprint(event_type: str, payload: Any) -> str:
    """The fingerprint of an event: 32 hex digits of a hash of its canonical JSON."""
    return fingerprint_canonical(event_type, canonical_json(payload))


def fingerprint_canonical(event_type: str, payload_json: bytes) -> str:
    """``fingerprint`` from the payload's already-computed ``canonical_json``."""
    try:  # a string has no float to normalise: skip canonical_json's check
        etype = orjson.dumps(event_type) if isinstance(event_type, str) \
            else canonical_json(event_type)
    except orjson.JSONEncodeError:  # a lone surrogate: the exact path
        etype = canonical_json(event_type)
    body = b'{"event_type":' + etype + b',"payload":' + payload_json + b"}"
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def loads(text: str | bytes) -> Any:
    """Parse stored JSON text exactly (integers of any size, out-of-range numbers as
    ``BigNumber``), leniently: what was stored is read back, even from an older store
    whose rules were looser. Inputs are read with ``strictjson.parse`` instead.
    Raises ``ValueError`` if not JSON."""
    return read(text)


def dump_bytes(value: Any) -> bytes:
    """Compact JSON of ``value`` as UTF-8 bytes (keys in their given order)."""
    return _dump_bytes(value)


def dumps(value: Any) -> str:
    """Compact JSON text of ``value`` (keys in their given order)."""
    return _dump_bytes(value).decode("utf-8")

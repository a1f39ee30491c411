"""Reading JSON as I-JSON (RFC 7493, SPEC §2): the one parser every input path shares.

``parse`` accepts exactly what SPEC §2 calls a readable element and raises
``InvalidJSON`` for anything else, naming the rule that failed (``rule``) in words an
operator can act on. The rules, in the order they are checked, so that nothing recurses
before the depth is known to be bounded:

- ``not_utf8``: the bytes are not UTF-8;
- ``too_deep``: arrays and objects nested deeper than ``MAX_DEPTH``;
- ``not_json``: not JSON text at all (RFC 8259);
- ``nan_or_infinity``: a ``NaN`` / ``Infinity`` / ``-Infinity`` literal;
- ``duplicate_member``: an object that names a member twice, at any depth;
- ``lone_surrogate``: a ``\\uD800``-``\\uDFFF`` escape that is not half of a pair.

Numbers are read by exact value across the double range's edges (SPEC §4): a number
whose magnitude is past the largest double, or a non-zero number too small for one,
becomes a ``BigNumber`` (an exact ``Decimal``) instead of ``inf`` or ``0.0``; integers
stay exact ``int`` inside the range. ``emit`` writes values back as JSON, BigNumbers in
their canonical decimal form.

The common case costs one orjson parse and one orjson dump (the dump finds duplicate
members: orjson keeps one of them, so the re-dumped text has fewer member colons); the
stdlib parser with hooks runs only for texts orjson refuses or might misread.
"""

from __future__ import annotations

import json
import math
import re
import sys
from decimal import Decimal
from typing import Any

import orjson

MAX_DEPTH = 128
BOM = b"\xef\xbb\xbf"

_MAX_DOUBLE = Decimal(sys.float_info.max)


class InvalidJSON(ValueError):
    """Text that is not I-JSON; ``rule`` names the rule it broke (see the module doc)."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


class BigNumber(Decimal):
    """A JSON number outside the double range, kept at its exact decimal value."""

    __slots__ = ()

    @property
    def canonical(self) -> str:
        """``[-]DIGITSeEXP`` with no trailing zeros in DIGITS: equal values, equal text."""
        sign, digits, exp = self.as_tuple()
        text = "".join(map(str, digits)).rstrip("0")
        exp += len(digits) - len(text)
        return f"{'-' if sign else ''}{text}e{exp}"


def exact_int(value: int) -> int | BigNumber:
    """``value`` as the number type ``parse`` would give it (BigNumber past the range)."""
    if -(1 << 1023) < value < (1 << 1023) or abs(Decimal(value)) <= _MAX_DOUBLE:
        return value
    return BigNumber(value)


def _parse_int(s: str) -> int | BigNumber:
    if len(s) <= 308:
        return int(s)
    d = BigNumber(s)
    return d if abs(d) > _MAX_DOUBLE else int(s)


def _parse_float(s: str) -> float | BigNumber:
    f = float(s)
    if math.isinf(f) or (f == 0.0 and not Decimal(s).is_zero()):
        return BigNumber(s)
    return f


def _reject_constant(name: str) -> Any:
    raise InvalidJSON("nan_or_infinity", f"{name} is not a JSON number (I-JSON, RFC 7493)")


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        name = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise InvalidJSON("duplicate_member",
                          f"member {_show(name)} appears twice in one object (I-JSON)")
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_reject_constant,
                            parse_float=_parse_float, parse_int=_parse_int)

# Texts orjson might misread: integers past 64 bits (read as floats), exponents of three
# digits (over- and underflow, silently 0.0), escaped colons (which would fool the
# duplicate count). Matching more than needed only costs the slow path.
_RISKY = re.compile(
    rb"(?:^|[:,\[])\s*-?(?:\d{19}|\d+(?:\.\d+)?[eE][-+]?\d{3}|0\.0{300})|\\u003[aA]")
# A necessary condition for a ``_RISKY`` match, tested with bytes methods (translate and
# substring search run in C): every digit becomes 0, E becomes e, + becomes -. Most texts
# fail it, and skip the regex (a third of the cost of reading a payload otherwise).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789E+", b"000000000e-")
_LONG_INT, _LONG_ZERO = b"0" * 19, b"0." + b"0" * 300


def _risky(raw: bytes) -> bool:
    """Whether ``raw`` matches ``_RISKY`` (the same answer, found faster)."""
    t = raw.translate(_DIGITS_AS_ZERO)
    if not (_LONG_INT in t or b"e000" in t or b"e-000" in t or _LONG_ZERO in t
            or b"\\u003" in raw):
        return False
    return _RISKY.search(raw) is not None


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _show(text: str) -> str:
    shown = json.dumps(text[:60])
    return shown if len(text) <= 60 else shown[:-1] + '..."'


def depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in JSON text ``raw`` (strings skipped)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return min(raw.count(b"[") + raw.count(b"{"), MAX_DEPTH)
    import numpy as np

    bare = np.frombuffer(_STRING.sub(b"", raw), dtype=np.uint8)
    step = ((bare == 91) | (bare == 123)).astype(np.int32) - ((bare == 93) | (bare == 125))
    return int(np.cumsum(step).max(initial=0))


def _strings_of(value: Any, depth_left: int = MAX_DEPTH + 1):
    """Every string in ``value``, member names included (depth is bounded by then)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings_of(v, depth_left - 1)
    elif isinstance(value, list):
        for v in value:
            yield from _strings_of(v, depth_left - 1)


def _check_surrogates(value: Any) -> None:
    for s in _strings_of(value):
        if _SURROGATE.search(s):
            raise InvalidJSON("lone_surrogate",
                              "a string holds a lone surrogate escape (\\uD800-\\uDFFF "
                              "without its pair), which is not Unicode text (I-JSON)")


def _slow(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidJSON("not_utf8", f"text is not valid UTF-8 (byte {e.start})") from None
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise InvalidJSON("not_json", f"not JSON: {e}") from None
    except RecursionError:  # unreachable once depth() has passed; kept as a guard
        raise InvalidJSON("too_deep", f"nested deeper than {MAX_DEPTH} levels") from None
    if _SURROGATE_ESCAPE.search(raw):
        _check_surrogates(value)
    return value


def has_dropped_member(raw: bytes, value: Any) -> bool:
    """Whether orjson's ``value`` of ``raw`` lost a member to a duplicate name: every
    member has a colon, and colons inside strings come back as they were (``raw`` must
    not match ``_RISKY``, which catches escaped colons)."""
    return raw.count(b":") != orjson.dumps(value).count(b":")


def parse(text: str | bytes) -> Any:
    """The value of one element's JSON ``text``; raises ``InvalidJSON`` (see module doc)."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if depth(raw) > MAX_DEPTH:
        raise InvalidJSON("too_deep",
                          f"arrays and objects nested deeper than {MAX_DEPTH} levels (I-JSON)")
    if not _risky(raw):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _slow(raw)  # orjson's refusals, read again to name the rule
        if has_dropped_member(raw, value):
            return _slow(raw)  # a member was dropped: a duplicate name
        return value
    return _slow(raw)


_LENIENT = json.JSONDecoder(parse_float=_parse_float, parse_int=_parse_int)


def read(text: str | bytes) -> Any:
    """The value of stored JSON ``text``, read back as stored: numbers exactly, but none of
    ``parse``'s I-JSON refusals (an older store may hold what they refuse now). Raises
    ``ValueError`` when it is not JSON or nests too deeply to read."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    if not _risky(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return _LENIENT.decode(raw.decode("utf-8", "surrogatepass"))
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None


def check_value(value: Any) -> None:
    """Raise ``InvalidJSON`` when a Python value (a dict from an iterable or a DataFrame)
    is not what ``parse`` could return: too deep, NaN/inf, a lone surrogate, a
    non-string member name."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            if d > MAX_DEPTH:
                raise InvalidJSON("too_deep", f"nested deeper than {MAX_DEPTH} levels")
            if isinstance(v, dict):
                for k in v:
                    if not isinstance(k, str):
                        raise InvalidJSON("not_json", f"member name {k!r} is not a string")
                    if _SURROGATE.search(k):
                        _check_surrogates(k)
                stack.extend((x, d + 1) for x in v.values())
            else:
                stack.extend((x, d + 1) for x in v)
        elif isinstance(v, float) and not math.isfinite(v):
            _reject_constant(repr(v))
        elif isinstance(v, str) and _SURROGATE.search(v):
            _check_surrogates(v)


def _scalar(value: Any) -> bytes:
    if isinstance(value, BigNumber):
        return value.canonical.encode()
    if isinstance(value, bool) or value is None:
        return orjson.dumps(value)
    if isinstance(value, int):
        exact = exact_int(value)
        return exact.canonical.encode() if isinstance(exact, BigNumber) else \
            int.__repr__(value).encode()
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        # A lone surrogate in a Python str: ASCII escapes keep it storable as UTF-8.
        return json.dumps(value).encode("ascii")


def emit(value: Any, sort_keys: bool = False) -> bytes:
    """Compact JSON of ``value`` for what orjson cannot write alone (BigNumbers, integers
    past 64 bits, lone surrogates in Python strings); scalars as orjson writes them."""
    if isinstance(value, dict):
        items = sorted(value.items()) if sort_keys else value.items()
        return b"{" + b",".join(_scalar(k) + b":" + emit(v, sort_keys)
                                for k, v in items) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + b",".join(emit(v, sort_keys) for v in value) + b"]"
    return _scalar(value)


def fragment(value: Any) -> Any:
    """orjson's ``default``: a BigNumber as its canonical text."""
    if isinstance(value, BigNumber):
        return orjson.Fragment(value.canonical)
    raise TypeError(f"{type(value).__name__} is not JSON")


def dump_bytes(value: Any, sort_keys: bool = False) -> bytes:
    """Compact JSON of ``value`` (orjson; ``emit`` for what orjson refuses)."""
    try:
        return orjson.dumps(value, default=fragment,
                            option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except (TypeError, orjson.JSONEncodeError):
        return emit(value, sort_keys)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\Z)|[\[\]{},]', re.DOTALL)
_WS = " \t\n\r"
_SCAN = json.JSONDecoder()  # only finds where a well-formed element ends


def _resync(s: str, i: int) -> int:
    """Where the element starting at ``s[i]`` ends when it is not well formed: the next
    ``,`` or ``]`` outside strings and its own brackets; when its brackets never close
    (``{broken``), the first comma after which a well-formed element follows."""
    level = 0
    for m in _TOKEN.finditer(s, i):
        c = m.group()
        if c in "[{":
            level += 1
        elif c in "]}":
            if level == 0:
                return m.start()
            level -= 1
        elif c == "," and level == 0:
            return m.start()
    for m in _TOKEN.finditer(s, i):
        if m.group() == "," and _element_follows(s, m.end()):
            return m.start()
    return len(s)


def _element_follows(s: str, i: int) -> bool:
    """Whether a well-formed element, then ``,`` or ``]``, starts at ``s[i]``."""
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    try:
        _, j = _SCAN.raw_decode(s, i)
    except (ValueError, RecursionError):
        return False
    while j < n and s[j] in _WS:
        j += 1
    return j < n and s[j] in ",]"


def _array_elements(s: str) -> list[str]:
    """The elements of the JSON array text ``s`` (starting with ``[``), each as its own
    text; a malformed element ends at the next top-level ``,`` or ``]``; text after the
    closing ``]`` is one more (invalid) element."""
    out: list[str] = []
    i, n = 1, len(s)
    while True:
        while i < n and s[i] in _WS:
            i += 1
        if i >= n:
            return out
        if s[i] == "]":
            rest = s[i + 1:].strip(_WS)
            return out + [rest] if rest else out
        if s[i] == ",":  # an empty slot (",," or a trailing comma) holds no element
            i += 1
            continue
        try:
            _, end = _SCAN.raw_decode(s, i)
            j = end
            while j < n and s[j] in _WS:
                j += 1
            if j < n and s[j] not in ",]":
                end = _resync(s, i)
        except (ValueError, RecursionError):
            end = _resync(s, i)
        out.append(s[i:end].rstrip(_WS))
        i = end + 1 if end < n and s[end] == "," else end


def split_elements(data: bytes) -> list[bytes]:
    """The elements of a JSON input (a file or a request body), each as the exact bytes
    received: the elements of an array, or the one value the input holds (SPEC §2)."""
    s = strip_bom(data).decode("utf-8", "surrogateescape")
    body = s.strip(_WS)
    if not body:
        return []
    texts = _array_elements(body) if body.startswith("[") else [body]
    return [t.encode("utf-8", "surrogateescape") for t in texts]


def strip_bom(data: bytes) -> bytes:
    """``data`` without a UTF-8 byte-order mark at its start (SPEC §2: encoding)."""
    return data[3:] if data.startswith(BOM) else data

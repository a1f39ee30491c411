"""Turning one received element into a staged arrival row (SPEC §2-§4).

Every element becomes a row, whatever it is: a valid envelope, an envelope with missing
or wrong fields, or text that is not JSON at all. Invalid rows keep whatever envelope
fields did parse, so an operator filtering by tenant still finds them.
"""

from __future__ import annotations

from typing import Any

from opswb.core.fingerprint import canonical_json, dumps, fingerprint_canonical
from opswb.core.strictjson import InvalidJSON, check_value, parse

REQUIRED = ("tenant_id", "idempotency_key", "event_type")
STAGE_COLUMNS = (
    "text", "tenant_id", "idempotency_key", "event_type", "source", "occurred_at",
    "payload", "fingerprint", "valid", "error",
)
_NOT_PARSED = object()


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else dumps(value)


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean",
               type(None): "null"}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "number" if isinstance(value, int | float) else
                           type(value).__name__)


def envelope_error(obj: Any) -> str | None:
    """Why ``obj`` is not a valid envelope, as ``"rule: message"``; None when it is one.

    The rule (before the colon) is a stable name an operator can group by; the same names
    as ``strictjson.InvalidJSON.rule`` for text that is not I-JSON."""
    if not isinstance(obj, dict):
        return f"not_an_object: an event must be a JSON object, got {_json_type(obj)}"
    missing = [f for f in REQUIRED if not isinstance(obj.get(f), str) or not obj[f].strip()]
    if missing:
        return "missing_field: missing or empty required field(s): " + ", ".join(missing)
    if "payload" not in obj:
        return "missing_field: missing required field: payload"
    if not isinstance(obj["payload"], dict):
        return f"payload_not_object: payload must be a JSON object, got {_json_type(obj['payload'])}"
    return None


def split_error(error: str | None) -> tuple[str | None, str | None]:
    """``(rule, message)`` of a staged ``error`` (older stores' errors have no rule)."""
    if error is None:
        return None, None
    rule, sep, message = error.partition(": ")
    if sep and rule.replace("_", "").isalnum() and rule.islower():
        return rule, message
    return None, error


def stage_row(text: str, obj: Any = _NOT_PARSED, parse_error: str | None = None) -> tuple:
    """The staged columns (``STAGE_COLUMNS``) of one arrival received as ``text``.

    ``obj`` is the already-parsed value when the caller has it; otherwise ``text`` is
    parsed here.
    """
    if obj is _NOT_PARSED and parse_error is None:
        try:
            obj = parse(text)
        except InvalidJSON as e:
            parse_error = f"{e.rule}: {str(e)[:300]}"
    if parse_error is not None:
        return (text, None, None, None, None, None, None, None, False, parse_error)
    error = envelope_error(obj)
    if error is not None:
        if not isinstance(obj, dict):
            return (text, None, None, None, None, None, None, None, False, error)
        g = obj.get
        return (
            text,
            g("tenant_id") if isinstance(g("tenant_id"), str) else None,
            g("idempotency_key") if isinstance(g("idempotency_key"), str) else None,
            g("event_type") if isinstance(g("event_type"), str) else None,
            _opt_str(g("source")),
            _opt_str(g("occurred_at")),
            dumps(g("payload")) if "payload" in obj else None,
            None, False, error,
        )
    # The canonical payload JSON serves twice: stored, and hashed into the fingerprint.
    payload_json = canonical_json(obj["payload"])
    return (
        text, obj["tenant_id"], obj["idempotency_key"], obj["event_type"],
        _opt_str(obj.get("source")), _opt_str(obj.get("occurred_at")),
        payload_json.decode("utf-8"),
        fingerprint_canonical(obj["event_type"], payload_json), True, None,
    )


def stage_text(raw: bytes) -> tuple:
    """Stage one element received as the bytes ``raw`` (a line, an array element, a
    request body): every input path that has the element's bytes comes through here."""
    try:
        return stage_row(raw.decode("utf-8"), parse(raw))
    except InvalidJSON as e:
        text = raw.decode("utf-8", "replace") if e.rule == "not_utf8" else raw.decode("utf-8")
        return stage_row(text, parse_error=f"{e.rule}: {str(e)[:300]}")
    except UnicodeDecodeError as e:  # parse took it, decode did not (cannot happen)
        return stage_row(raw.decode("utf-8", "replace"),
                         parse_error=f"not_utf8: text is not valid UTF-8 (byte {e.start})")


def stage_element(element: Any) -> tuple:
    """Stage a Python value (a dict from an iterable, ...) held to ``parse``'s rules."""
    try:
        check_value(element)
        text = dumps(element)
    except InvalidJSON as e:
        return stage_row(repr(element)[:100_000], parse_error=f"{e.rule}: {e}")
    except (TypeError, ValueError) as e:  # not a JSON value at all (a datetime, a set...)
        return stage_row(repr(element)[:100_000], parse_error=f"not_json: {str(e)[:300]}")
    return stage_row(text, element)

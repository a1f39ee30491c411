"""Turning one received element into a staged arrival row (SPEC §2-§4).

Every element becomes a row, whatever it is: a valid envelope, an envelope with missing
or wrong fields, or text that is not JSON at all. Invalid rows keep whatever envelope
fields did parse, so an operator filtering by tenant still finds them.
"""

from __future__ import annotations

from typing import Any

from .fingerprint import canonical_json, dumps, fingerprint_canonical, loads

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


def envelope_error(obj: Any) -> str | None:
    """Why ``obj`` is not a valid envelope, or None when it is one."""
    if not isinstance(obj, dict):
        return f"an event must be a JSON object, got {type(obj).__name__ if obj is not None else 'null'}"
    missing = [f for f in REQUIRED if not isinstance(obj.get(f), str) or not obj[f].strip()]
    if missing:
        return "missing or empty required field(s): " + ", ".join(missing)
    if "payload" not in obj:
        return "missing required field: payload"
    if not isinstance(obj["payload"], dict):
        return "payload must be a JSON object"
    return None


def stage_row(text: str, obj: Any = _NOT_PARSED, parse_error: str | None = None) -> tuple:
    """The staged columns (``STAGE_COLUMNS``) of one arrival received as ``text``.

    ``obj`` is the already-parsed value when the caller has it; otherwise ``text`` is
    parsed here.
    """
    if obj is _NOT_PARSED and parse_error is None:
        try:
            obj = loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            parse_error = f"not JSON: {str(e)[:200]}"
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


def stage_element(element: Any) -> tuple:
    """Stage an already-parsed element (a dict from Python, a JSON array item, ...)."""
    return stage_row(dumps(element), element)

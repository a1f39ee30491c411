"""Records as the API shows them: field lists, ids, stored values in their public form.

Ids are integers inside a store and strings outside (``raw_id``, ``exception_id`` are
opaque to clients, SPEC §6); JSON columns are parsed; times are ISO 8601. Every backend
hands its rows through ``to_api``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from opswb.core.fingerprint import loads

EXCEPTION_FIELDS = (
    "exception_id", "tenant_id", "idempotency_key", "source", "reason_code", "details",
    "raw_id", "status", "created_at", "replay_attempts", "action", "actor",
    "resolution_notes", "canonical_raw_id", "override_patch", "resolved_at", "replay_outcome",
    "group_id", "pending", "assignee",
)
RAW_FIELDS = ("raw_id", "received_at", "text", "tenant_id", "idempotency_key", "event_type",
              "source", "occurred_at", "payload")
KEY_FIELDS = ("tenant_id", "idempotency_key", "state", "first_raw_id", "last_raw_id",
              "canonical_raw_id", "canonical_fingerprint", "arrival_count", "delivery_count",
              "adjudicated_fingerprints", "override_patch")
_ID_FIELDS = {"exception_id", "raw_id", "canonical_raw_id", "first_raw_id", "last_raw_id",
              "delivery_id", "audit_id"}
_JSON_FIELDS = {"details", "payload", "override_patch", "replay_outcome", "pending"}


# The only form in which the API writes an id: a positive decimal without leading zeros.
_ID_TEXT = re.compile(r"[1-9][0-9]{0,18}")


def parse_id(value: Any) -> int | None:
    """An API id as the store's integer, or None when it names nothing (SPEC §6).

    Only the exact string the API gave names a record: ``"1"`` does, while ``"01"``,
    ``"+1"``, ``" 1"``, ``"1.0"`` and ``"1e0"`` name nothing. A Python int is taken as
    the id it is (the local workbench's callers), a bool never.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and _ID_TEXT.fullmatch(value):
        number = int(value)
        return number if number < 2**63 else None
    return None


def to_api(name: str, value: Any) -> Any:
    """A stored value as the API shows it (ids as strings, JSON parsed, ISO times)."""
    return out_value(name, value)


def out_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _ID_FIELDS:
        return str(value)
    if name in _JSON_FIELDS:
        return loads(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# A summary bucket (SPEC §10, raw_events.outcome) as the outcome of one arrival (SPEC §9).
_OUTCOME = {"processed": "processed", "duplicates": "duplicate",
            "exceptions_opened": "exception_opened", "attached": "attached"}


def arrival_results(rows: list[tuple]) -> list[dict]:
    """``(raw_id, bucket, exception_id, reason_code)`` rows as SPEC §9's ``results``:
    ``{"raw_id", "outcome", "exception_id"?, "reason_code"?}``, ids as strings."""
    out = []
    for raw_id, bucket, exception_id, reason_code in rows:
        item = {"raw_id": str(raw_id), "outcome": _OUTCOME[bucket]}
        if exception_id is not None:
            item["exception_id"] = str(exception_id)
            item["reason_code"] = reason_code
        out.append(item)
    return out


# A stored HTTP batch (``Opswb-Batch-Id``) as the stores answer it, and its row's values.
BATCH_FIELDS = ("body_sha256", "first_raw_id", "arrivals")


def batch_rows(batches: list[tuple[str, str | None, list[dict]]]) -> list[tuple]:
    """``(batch_id, body_sha256, results)`` as ``ingest_batches`` rows: the id, the
    digest, the first raw's id (None for an empty batch), the number of arrivals."""
    return [(b, sha, int(res[0]["raw_id"]) if res else None, len(res))
            for b, sha, res in batches]


def public_key_record(rec: dict | None) -> dict | None:
    """The §5 ``events_processed`` view of a key record."""
    if rec is None:
        return None
    return {k: out_value(k, rec[k]) for k in KEY_FIELDS}



"""The detail view of one exception (GET /v1/exceptions/{id}): FIRST, LAST and their diff."""

from __future__ import annotations

import duckdb

from . import storage
from .errors import NotFound
from .jsondiff import json_diff
from .store import fetch_one


def _first_of(con: duckdb.DuckDBPyConnection, ex: dict, rec: dict | None,
              ex_id: int) -> tuple[dict | None, str | None]:
    """FIRST of a conflict and its fingerprint (SPEC §5): the key's last delivered event
    before the exception opened, as delivered (patch applied), else the raw that opened
    the key's first exception."""
    row = fetch_one(con.execute(
        "SELECT d.raw_id, d.event_type, d.payload, d.fingerprint, d.exception_id"
        " FROM outbox d, exceptions e WHERE e.exception_id = ? AND d.tenant_id = ?"
        " AND d.idempotency_key = ? AND d.delivered_at <= e.created_at"
        " AND d.exception_id IS DISTINCT FROM e.exception_id"
        " ORDER BY d.delivery_id DESC LIMIT 1",
        [ex_id, ex["tenant_id"], ex["idempotency_key"]]))
    if row:
        raw = storage.raws_by_id(con, [row[0]]).get(str(row[0]))
        if raw is None:
            return None, None
        first = dict(raw, event_type=row[1], payload=storage.loads(row[2]))
        patch = None
        if row[4] is not None:
            by = storage.exception_by_id(con, row[4])
            patch = by["override_patch"] if by else None
        first["override_patch"] = patch
        return first, row[3]
    if rec and rec.get("first_exception_raw_id") is not None:
        rid = rec["first_exception_raw_id"]
        raw = storage.raws_by_id(con, [rid]).get(str(rid))
        full = storage.raw_row(con, rid)
        if raw is not None:
            return dict(raw, override_patch=None), full["fingerprint"] if full else None
    return None, None


def _last_of(con: duckdb.DuckDBPyConnection, ex_id: int, first_fp: str | None) -> dict | None:
    row = fetch_one(con.execute(
        "SELECT max(raw_id) FROM raw_events WHERE exception_id = ?"
        " AND fingerprint IS DISTINCT FROM ?", [ex_id, first_fp]))
    if not row or row[0] is None:
        return None
    return storage.raws_by_id(con, [row[0]]).get(str(row[0]))


def exception_detail(con: duckdb.DuckDBPyConnection, exception_id: str | int) -> dict:
    """SPEC §9's detail: §6 fields, raw, events_processed, first, last, diff, arrivals,
    deliveries, plus ``decisions`` (audit entries of the exception)."""
    ex_id = storage.parse_id(exception_id)
    ex = storage.exception_by_id(con, ex_id) if ex_id is not None else None
    if ex is None:
        raise NotFound(f"no exception {exception_id!r}")
    raw_id = int(ex["raw_id"])
    raw = storage.raws_by_id(con, [raw_id]).get(ex["raw_id"])
    has_key = ex["reason_code"] != "INVALID_EVENT"
    rec = storage.key_record(con, ex["tenant_id"], ex["idempotency_key"]) if has_key else None
    first = last = diff = None
    if ex["reason_code"] == "IDEMPOTENCY_CONFLICT":
        first, first_fp = _first_of(con, ex, rec, ex_id)
        last = _last_of(con, ex_id, first_fp)
        if first is not None and last is not None:
            diff = json_diff({"event_type": first["event_type"], "payload": first["payload"]},
                             {"event_type": last["event_type"], "payload": last["payload"]})
    if rec is not None:
        arrivals, deliveries = storage.key_arrivals(con, rec), storage.key_deliveries(con, rec)
    else:
        arrivals, deliveries = [raw] if raw else [], []
    return dict(
        ex, raw=raw, events_processed=storage.public_key_record(rec), first=first, last=last,
        diff=diff, arrivals=arrivals, deliveries=deliveries,
        decisions=storage.audit_entries(con, exception_id=ex_id),
    )

"""The detail view of one exception (GET /v1/exceptions/{id}): FIRST, LAST and their diff."""

from __future__ import annotations

from datetime import datetime

import duckdb

from opswb.core.errors import NotFound
from opswb.core.jsondiff import json_diff
from opswb.store.duckdb import queries as storage
from opswb.store.duckdb.connection import fetch_one


def _first_of(con: duckdb.DuckDBPyConnection, ex: dict, rec: dict | None,
              deliveries: list[dict]) -> tuple[dict | None, str | None]:
    """FIRST of a conflict and its fingerprint (SPEC §5): the key's last delivery before
    the exception opened, as delivered (patch applied), else the raw that opened the key's
    first exception."""
    opened = datetime.fromisoformat(ex["created_at"])
    before = [d for d in deliveries if d["exception_id"] != ex["exception_id"]
              and datetime.fromisoformat(d["delivered_at"]) <= opened]
    if before:
        d = before[-1]
        raw = storage.raws_by_id(con, [int(d["raw_id"])]).get(d["raw_id"])
        if raw is None:
            return None, None
        patch = None
        if d["exception_id"] is not None:
            by = storage.exception_by_id(con, int(d["exception_id"]))
            patch = by["override_patch"] if by else None
        first = dict(raw, event_type=d["event_type"], payload=d["payload"],
                     override_patch=patch)
        return first, d["fingerprint"]
    if rec and rec.get("first_exception_raw_id") is not None:
        full = storage.raw_row(con, rec["first_exception_raw_id"])
        if full is not None:
            raw = {f: storage.to_api(f, full[f]) for f in storage.RAW_FIELDS}
            fp = full["fingerprint"] or storage.raw_fingerprints(
                con, [full["raw_id"]]).get(full["raw_id"])
            return dict(raw, override_patch=None), fp
    return None, None


def _last_of(con: duckdb.DuckDBPyConnection, ex: dict, rec: dict,
             first_fp: str | None) -> dict | None:
    """The latest arrival attached to the exception whose fingerprint differs from
    FIRST's; attached raws lie between the opening raw and the key's last raw."""
    row = fetch_one(con.execute(
        "SELECT max(raw_id) FROM raw_events WHERE raw_id BETWEEN ? AND ?"
        " AND exception_id = ? AND fingerprint IS DISTINCT FROM ?",
        [int(ex["raw_id"]), rec["last_raw_id"], int(ex["exception_id"]), first_fp]))
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
    if rec is not None:
        arrivals, deliveries = storage.key_arrivals(con, rec), storage.key_deliveries(con, rec)
    else:
        arrivals, deliveries = [raw] if raw else [], []
    if ex["reason_code"] == "IDEMPOTENCY_CONFLICT" and rec is not None:
        first, first_fp = _first_of(con, ex, rec, deliveries)
        last = _last_of(con, ex, rec, first_fp)
        if first is not None and last is not None:
            diff = json_diff({"event_type": first["event_type"], "payload": first["payload"]},
                             {"event_type": last["event_type"], "payload": last["payload"]})
    return dict(
        ex, raw=raw, events_processed=storage.public_key_record(rec), first=first, last=last,
        diff=diff, arrivals=arrivals, deliveries=deliveries,
        decisions=storage.audit_entries(con, exception_id=ex_id),
    )

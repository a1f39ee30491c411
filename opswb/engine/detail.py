"""The detail view of one exception (GET /v1/exceptions/{id}): FIRST, LAST and their diff."""

from __future__ import annotations

from datetime import datetime

from opswb.core.errors import NotFound
from opswb.core.jsondiff import json_diff
from opswb.core.records import RAW_FIELDS, parse_id, public_key_record, to_api
from opswb.store.base import Session


def _raw(db: Session, raw_id: str, arrivals: dict[str, dict]) -> dict | None:
    """A raw of the key from its arrivals (already read), else from the store."""
    return arrivals.get(raw_id) or db.raws_by_id([int(raw_id)]).get(raw_id)


def _first_of(db: Session, ex: dict, rec: dict | None, deliveries: list[dict],
              arrivals: dict[str, dict]) -> tuple[dict | None, str | None]:
    """FIRST of a conflict and its fingerprint (SPEC §5): the key's last delivery before
    the exception opened, as delivered (patch applied), else the raw that opened the key's
    first exception."""
    opened = datetime.fromisoformat(ex["created_at"])
    before = [d for d in deliveries if d["exception_id"] != ex["exception_id"]
              and datetime.fromisoformat(d["delivered_at"]) <= opened]
    if before:
        d = before[-1]
        raw = _raw(db, d["raw_id"], arrivals)
        if raw is None:
            return None, None
        patch = None
        if d["exception_id"] is not None:
            by = db.exception_by_id(int(d["exception_id"]))
            patch = by["override_patch"] if by else None
        first = dict(raw, event_type=d["event_type"], payload=d["payload"],
                     override_patch=patch)
        return first, d["fingerprint"]
    if rec and rec.get("first_exception_raw_id") is not None:
        full = db.raw_row(rec["first_exception_raw_id"])
        if full is not None:
            raw = {f: to_api(f, full[f]) for f in RAW_FIELDS}
            fp = full["fingerprint"] or db.raw_fingerprints(
                [full["raw_id"]]).get(full["raw_id"])
            return dict(raw, override_patch=None), fp
    return None, None


def exception_detail(db: Session, exception_id: str | int) -> dict:
    """SPEC §9's detail: §6 fields, raw, events_processed, first, last, diff, arrivals,
    deliveries, plus ``decisions`` (audit entries of the exception)."""
    ex_id = parse_id(exception_id)
    ex = db.exception_by_id(ex_id) if ex_id is not None else None
    if ex is None:
        raise NotFound(f"no exception {exception_id!r}")
    # Every lookup is bounded: the exception by its key, the key record by where the key
    # began (recorded on the exception), its arrivals and deliveries by the key's raw_id
    # range, so the detail reads a few row groups however large the store grows.
    has_key = ex["reason_code"] != "INVALID_EVENT"
    rec = db.key_record(ex["tenant_id"], ex["idempotency_key"], ex_id) if has_key else None
    first = last = diff = None
    if rec is not None:
        arrivals, deliveries = db.key_arrivals(rec), db.key_deliveries(rec)
        by_id = {a["raw_id"]: a for a in arrivals}
        raw = _raw(db, ex["raw_id"], by_id)
    else:
        by_id = {}
        raw = db.raws_by_id([int(ex["raw_id"])]).get(ex["raw_id"])
        arrivals, deliveries = [raw] if raw else [], []
    if ex["reason_code"] == "IDEMPOTENCY_CONFLICT" and rec is not None:
        first, first_fp = _first_of(db, ex, rec, deliveries, by_id)
        last = db.last_differing_arrival(ex, rec, first_fp)
        if first is not None and last is not None:
            diff = json_diff({"event_type": first["event_type"], "payload": first["payload"]},
                             {"event_type": last["event_type"], "payload": last["payload"]})
    return dict(
        ex, raw=raw, events_processed=public_key_record(rec), first=first, last=last,
        diff=diff, arrivals=arrivals, deliveries=deliveries,
        decisions=db.audit_entries(exception_id=ex_id),
        comments=db.comments(ex_id),
    )

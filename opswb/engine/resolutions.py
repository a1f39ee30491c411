"""Resolutions, reopen and bulk resolution (SPEC §7).

Every function here runs inside the caller's transaction (the workbench holds the write
lock around it), checks everything before it writes, and writes the audit entry in the
same transaction as the state change. A refused request raises before any write.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opswb.core.envelope import envelope_error, stage_element
from opswb.core.errors import Conflict, InvalidRequest, NotFound
from opswb.core.fingerprint import dumps, fingerprint, loads
from opswb.core.mergepatch import merge_patch
from opswb.core.models import Action, ReasonCode, Status
from opswb.core.records import parse_id
from opswb.store.base import Session

PATCHABLE = ("event_type", "payload", "source", "occurred_at")
IDENTITY = ("tenant_id", "idempotency_key")
LAST = "last"  # canonical_raw_id naming each conflict's LAST (docs/contract.md)


def require_text(name: str, value: Any) -> str:
    """``value`` trimmed, refused when blank or not a string."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name} is required and must not be blank")
    return value.strip()


def parse_action(action: Any) -> Action:
    try:
        return Action(action)
    except ValueError:
        raise InvalidRequest(
            f"unknown action {action!r}: use one of {', '.join(a.value for a in Action)}"
        ) from None


def load_exception(db: Session, exception_id: Any) -> dict:
    ex_id = parse_id(exception_id)
    ex = db.exception_by_id(ex_id) if ex_id is not None else None
    if ex is None:
        raise NotFound(f"no exception {exception_id!r}")
    return ex


def _require_open(ex: dict) -> None:
    if ex["status"] != Status.OPEN:
        by = f" by {ex['actor']}" if ex.get("actor") else ""
        when = f" at {ex['resolved_at']}" if ex.get("resolved_at") else ""
        raise Conflict(f"exception {ex['exception_id']} is already resolved{by}{when}")


def _parse_patch(patch: Any) -> dict | None:
    if patch is None or patch == "":
        return None
    if isinstance(patch, str):
        try:
            patch = loads(patch)
        except ValueError as e:
            raise InvalidRequest(f"override_patch is not JSON: {e}") from None
    if not isinstance(patch, dict):
        raise InvalidRequest("override_patch must be a JSON object (RFC 7396 merge patch)")
    return patch


def is_last(canonical_raw_id: Any) -> bool:
    """Whether ``canonical_raw_id`` is ``"last"``: the conflict's LAST (SPEC §5), the
    same choice for each exception of a bulk decision."""
    return isinstance(canonical_raw_id, str) and canonical_raw_id.strip().lower() == LAST


def first_fingerprint(db: Session, rec: dict) -> str | None:
    """FIRST's fingerprint of a quarantined key: what it delivered last (its canonical
    fingerprint), else, never delivered, that of the raw that opened its first exception."""
    if rec["canonical_fingerprint"] is not None or rec["first_exception_raw_id"] is None:
        return rec["canonical_fingerprint"]
    raw = rec["first_exception_raw_id"]
    return db.raw_fingerprints([raw]).get(raw)


def last_of(db: Session, ex: dict) -> int:
    """The raw id of a conflict's LAST: its latest attached arrival that differs from
    FIRST; refused for other reasons, or a conflict without one."""
    if ex["reason_code"] != ReasonCode.IDEMPOTENCY_CONFLICT:
        raise InvalidRequest(f"canonical_raw_id {LAST!r} applies to IDEMPOTENCY_CONFLICT "
                             f"only; exception {ex['exception_id']} is {ex['reason_code']}")
    rec = db.key_record(ex["tenant_id"], ex["idempotency_key"], int(ex["exception_id"]))
    last = db.last_differing_arrival(ex, rec, first_fingerprint(db, rec)) if rec else None
    if last is None:
        raise InvalidRequest(f"exception {ex['exception_id']} has no LAST arrival")
    return int(last["raw_id"])


def build_replay(db: Session, ex: dict, canonical_raw_id: Any = None,
                 override_patch: Any = None) -> tuple[dict, int, dict | None]:
    """The event a replay would deliver: (envelope, canonical raw id, patch).

    Raises ``InvalidRequest`` for a foreign canonical raw, a forbidden patch member, or
    a result that is not a valid, allowed envelope. Writes nothing.
    """
    raw_id = int(ex["raw_id"])
    if is_last(canonical_raw_id):
        canonical_raw_id = last_of(db, ex)
    if canonical_raw_id not in (None, ""):
        cid = parse_id(canonical_raw_id)
        row = db.raw_row(cid) if cid is not None else None
        has_key = ex["tenant_id"] is not None and ex["idempotency_key"] is not None
        same = row is not None and (
            cid == raw_id or (has_key and row["tenant_id"] == ex["tenant_id"]
                              and row["idempotency_key"] == ex["idempotency_key"]))
        if not same:
            raise InvalidRequest(
                f"canonical_raw_id {canonical_raw_id!r} is not an arrival of tenant "
                f"{ex['tenant_id']!r} and key {ex['idempotency_key']!r}")
        raw_id = cid
    row = db.raw_row(raw_id)
    patch = _parse_patch(override_patch)
    return compose_replay(ex, row, patch, db.is_allowed), raw_id, patch


def compose_replay(ex: dict, row: dict, patch: dict | None,
                   is_allowed: Callable[[str, str], bool]) -> dict:
    """The event a replay of ``row`` (a raw with its internal columns) would deliver for
    ``ex``, with ``patch`` applied; refused (``InvalidRequest``) for a forbidden patch
    member or a result that is not a valid, allowed envelope. Reads nothing itself."""
    invalid = ex["reason_code"] == ReasonCode.INVALID_EVENT
    allowed = set(PATCHABLE)
    if invalid:
        allowed |= {f for f in IDENTITY if not (row[f] or "").strip()}
    if patch:
        bad = sorted(set(patch) - allowed)
        if bad:
            raise InvalidRequest(
                f"override_patch may not change {', '.join(bad)}: a patch may only touch "
                f"{', '.join(sorted(allowed))}")
    base: dict = {}
    for f in PATCHABLE:
        if row[f] is not None:
            base[f] = loads(row[f]) if f == "payload" else row[f]
    event = merge_patch(base, patch) if patch else base
    for f in IDENTITY:
        value = (patch or {}).get(f) if f in allowed - set(PATCHABLE) else None
        event[f] = value if value is not None else row[f]
    event = {k: v for k, v in event.items() if v is not None}
    error = envelope_error(event)
    if error:
        raise InvalidRequest(f"the replayed event would be invalid: {error}")
    if not is_allowed(event["tenant_id"], event["event_type"]):
        raise InvalidRequest(
            f"event type {event['event_type']!r} is not on the allowlist for tenant "
            f"{event['tenant_id']!r}; add it (opswb types add) or patch event_type")
    return event


def preview_replay(db: Session, exception_id: Any,
                   canonical_raw_id: Any = None, override_patch: Any = None) -> dict:
    """What override_and_replay would deliver, validated, without writing anything."""
    ex = load_exception(db, exception_id)
    try:
        event, raw_id, _ = build_replay(db, ex, canonical_raw_id, override_patch)
    except InvalidRequest as e:
        return {"valid": False, "error": str(e), "event": None, "fingerprint": None}
    return {"valid": True, "error": None, "event": event, "canonical_raw_id": str(raw_id),
            "fingerprint": fingerprint(event["event_type"], event["payload"])}


def _adjudicate(db: Session, ex: dict, state: str, extra_fps: list[str],
                **sets: Any) -> str | None:
    """Move the exception's key to ``state``, adding fingerprints; returns state before."""
    rec = db.key_record(ex["tenant_id"], ex["idempotency_key"], int(ex["exception_id"]))
    if rec is None:
        return None
    # The record as read (key_record) carries a fingerprint the store left to be computed
    # (a key delivered by its only arrival); the update writes it down.
    raws = (int(ex["raw_id"]), max(int(ex["raw_id"]), rec["last_raw_id"]))
    fps = list(dict.fromkeys(rec["adjudicated_fingerprints"] + db.exception_fingerprints(
        int(ex["exception_id"]), raws) + extra_fps))
    sets.setdefault("canonical_fingerprint", rec["canonical_fingerprint"])
    db.update_key(ex["tenant_id"], ex["idempotency_key"], state, fps, None,
                  rec["first_raw_id"], **sets)
    return rec["state"]


def resolve_one(db: Session, exception_id: Any, action: Any, actor: Any,
                resolution_notes: Any, canonical_raw_id: Any = None,
                override_patch: Any = None) -> dict:
    """Resolve one open exception; returns the updated exception (§6 fields)."""
    actor = require_text("actor", actor)
    notes = require_text("resolution_notes", resolution_notes)
    act = parse_action(action)
    ex = load_exception(db, exception_id)
    _require_open(ex)
    ex_id = int(ex["exception_id"])
    keyed = ex["reason_code"] != ReasonCode.INVALID_EVENT
    outcome = None
    if act is Action.MARK_RESOLVED_NO_REPLAY:
        if canonical_raw_id not in (None, "") or _parse_patch(override_patch):
            raise InvalidRequest("canonical_raw_id and override_patch apply only to "
                                 "override_and_replay")
        before = _adjudicate(db, ex, "ignored", []) if keyed else None
        after, raw_id, patch = ("ignored" if before else None), None, None
    else:
        event, raw_id, patch = build_replay(db, ex, canonical_raw_id, override_patch)
        if keyed:
            before, after = _replay_keyed(db, ex, event, raw_id, patch), "processed"
        else:
            before, after = None, None
            outcome = _replay_invalid(db, ex_id, event)
    db.close_exception(ex_id, act.value, actor, notes, raw_id,
                       dumps(patch) if patch else None, act is Action.OVERRIDE_AND_REPLAY,
                       dumps(outcome) if outcome else None)
    if ex.get("pending"):  # decided another way: the proposal goes with it (SPEC §15)
        db.set_pending(ex_id, None)
    db.write_audit(
        actor=actor, action=act.value, exception_id=ex_id, tenant_id=ex["tenant_id"],
        idempotency_key=ex["idempotency_key"], state_before=before, state_after=after,
        notes=notes, canonical_raw_id=raw_id, override_patch=dumps(patch) if patch else None,
        details=dumps({"reason_code": ex["reason_code"], "replay_outcome": outcome}))
    return db.exception_by_id(ex_id)


def _replay_keyed(db: Session, ex: dict, event: dict, raw_id: int,
                  patch: dict | None) -> str | None:
    fp = fingerprint(event["event_type"], event["payload"])
    deliveries = db.add_replay_delivery(ex["tenant_id"], ex["idempotency_key"], raw_id,
                                        event["event_type"], dumps(event["payload"]), fp,
                                        int(ex["exception_id"]))
    return _adjudicate(
        db, ex, "processed", [fp], canonical_raw_id=raw_id, canonical_fingerprint=fp,
        override_patch=dumps(patch) if patch else None, delivery_count=deliveries)


def _replay_invalid(db: Session, ex_id: int, event: dict) -> dict:
    """Store the fixed envelope as a new raw and run it through §5 as a new arrival."""
    _, outcomes = db.store_arrivals([stage_element(event)], "replay", replay_of=ex_id,
                                    with_outcomes=True)
    return outcomes[0]  # as POST /v1/events answers for an arrival (SPEC §9's results)


def reopen_one(db: Session, exception_id: Any, actor: Any,
               resolution_notes: Any) -> dict:
    """Reopen a resolved exception (status open, key quarantined)."""
    actor = require_text("actor", actor)
    notes = require_text("resolution_notes", resolution_notes)
    ex = load_exception(db, exception_id)
    ex_id = int(ex["exception_id"])
    if ex["status"] == Status.OPEN:
        raise Conflict(f"exception {ex_id} is already open")
    keyed = ex["reason_code"] != ReasonCode.INVALID_EVENT
    before = None
    if keyed:
        other = db.open_exception_of_key(ex["tenant_id"], ex["idempotency_key"])
        if other is not None:
            raise Conflict(f"key {ex['idempotency_key']!r} already has open exception {other}")
        rec = db.key_record(ex["tenant_id"], ex["idempotency_key"], ex_id)
        before = rec["state"] if rec else None
        db.update_key(ex["tenant_id"], ex["idempotency_key"], "quarantined", None, ex_id,
                      rec["first_raw_id"] if rec else None)
    db.reopen_exception(ex_id)
    db.write_audit(
        actor=actor, action="reopen", exception_id=ex_id, tenant_id=ex["tenant_id"],
        idempotency_key=ex["idempotency_key"], state_before=before,
        state_after="quarantined" if keyed else None, notes=notes,
        details=dumps({"reason_code": ex["reason_code"], "previous_action": ex["action"],
                       "previous_actor": ex["actor"]}))
    return db.exception_by_id(ex_id)

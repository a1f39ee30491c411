"""Group decisions set-wise (issue 17): one decision for a batch of open exceptions in a
handful of statements, not a dozen per exception.

``decide_batch`` runs inside the caller's transaction (``bulk`` opens one per batch). It
reads the batch's exceptions, their key records and fingerprints in one go, checks each
item as ``resolutions.resolve_one`` would (not found, not open, an invalid replay are the
item's own refusal and write nothing for it), then writes what the accepted items decide
set-wise: the key records, the exceptions, the replays' deliveries and one audit entry
per resolved exception, chained in order. What it does not do set-wise it hands to
``resolve_one`` in the same transaction: an ``INVALID_EVENT`` replay (a new arrival
through SPEC §5), or a replay from one named canonical raw.
"""

from __future__ import annotations

from typing import Any

from opswb.core.errors import Conflict, InvalidRequest, NotFound, OpswbError
from opswb.core.fingerprint import dumps, fingerprint
from opswb.core.models import Action, ReasonCode, Status
from opswb.core.records import parse_id
from opswb.engine.foureyes import propose
from opswb.engine.resolutions import (
    _parse_patch,
    compose_replay,
    is_last,
    parse_action,
    require_text,
    resolve_one,
)
from opswb.store.base import Session

_REFUSALS = (InvalidRequest, NotFound, Conflict)


def failure(exception_id: Any, error: OpswbError) -> dict:
    """One item's refusal as SPEC §9's bulk ``results`` show it."""
    status = {404: "not_found", 409: "conflict", 422: "invalid"}.get(error.http_status,
                                                                     "error")
    return {"exception_id": str(exception_id), "status": status, "error": str(error)}


def decide_batch(db: Session, ids: list[str], decision: dict) -> list[dict]:
    """Resolve each of ``ids`` with ``decision`` (``action``, ``actor``,
    ``resolution_notes``, ``canonical_raw_id``, ``override_patch``): one result per id,
    in order."""
    actor = require_text("actor", decision.get("actor"))
    notes = require_text("resolution_notes", decision.get("resolution_notes"))
    act = parse_action(decision.get("action"))
    canonical = decision.get("canonical_raw_id")
    patch = _parse_patch(decision.get("override_patch"))
    wanted = [parse_id(i) for i in ids]
    found = db.exceptions_by_ids([i for i in wanted if i is not None])
    results: dict[int, dict] = {}  # by position in ids
    at: dict[str, int] = {}  # an exception's position, by its id
    batch: list[dict] = []
    seen: set[int] = set()
    approvals: dict[Any, bool] = {}  # tenant -> does a policy ask for four eyes?
    for n, (raw, ex_id) in enumerate(zip(ids, wanted)):
        ex = found.get(ex_id) if ex_id is not None else None
        error = _refusal(raw, ex, act, canonical, patch)
        if error is None and ex_id in seen:  # named twice: the second finds it decided
            error = Conflict(f"exception {ex_id} is already resolved by {actor}")
        seen.add(ex_id)
        if error is not None:
            results[n] = failure(raw, error)
        elif act is Action.OVERRIDE_AND_REPLAY and _four_eyes(db, ex, approvals):
            results[n] = _proposed(db, raw, ex, decision)
        elif ex["reason_code"] == ReasonCode.INVALID_EVENT or (
                act is Action.OVERRIDE_AND_REPLAY and canonical not in (None, "")
                and not is_last(canonical)):
            results[n] = _one(db, raw, decision)
        else:
            batch.append(ex)
            at[ex["exception_id"]] = n
    if batch:
        decided = _decide_keyed(db, batch, act, actor, notes, canonical, patch)
        results.update({at[ex_id]: r for ex_id, r in decided.items()})
    return [results[n] for n in range(len(ids))]


def _refusal(raw: Any, ex: dict | None, act: Action, canonical: Any,
             patch: dict | None) -> OpswbError | None:
    if ex is None:
        return NotFound(f"no exception {raw!r}")
    if ex["status"] != Status.OPEN:
        by = f" by {ex['actor']}" if ex.get("actor") else ""
        when = f" at {ex['resolved_at']}" if ex.get("resolved_at") else ""
        return Conflict(f"exception {ex['exception_id']} is already resolved{by}{when}")
    if act is Action.MARK_RESOLVED_NO_REPLAY and (canonical not in (None, "") or patch):
        return InvalidRequest("canonical_raw_id and override_patch apply only to "
                              "override_and_replay")
    if is_last(canonical) and ex["reason_code"] != ReasonCode.IDEMPOTENCY_CONFLICT:
        return InvalidRequest(f"canonical_raw_id 'last' applies to IDEMPOTENCY_CONFLICT "
                              f"only; exception {ex['exception_id']} is {ex['reason_code']}")
    return None


def _four_eyes(db: Session, ex: dict, approvals: dict[Any, bool]) -> bool:
    tenant = ex["tenant_id"]
    if tenant not in approvals:
        approvals[tenant] = db.needs_approval(tenant, Action.OVERRIDE_AND_REPLAY.value)
    return approvals[tenant]


def _proposed(db: Session, raw: Any, ex: dict, decision: dict) -> dict:
    """Under a four-eyes policy a bulk override is what a single one is (SPEC §15): a
    proposal per exception, for another approver; nothing is delivered yet."""
    try:
        propose(db, ex, decision.get("actor"), decision.get("resolution_notes"),
                decision.get("canonical_raw_id"), decision.get("override_patch"))
        return {"exception_id": str(raw), "status": "proposed"}
    except _REFUSALS as e:
        return failure(raw, e)


def _one(db: Session, raw: Any, decision: dict) -> dict:
    try:
        ex = resolve_one(db, raw, **decision)
        return {"exception_id": str(raw), "status": ex["status"]}
    except _REFUSALS as e:
        return failure(raw, e)


def _decide_keyed(db: Session, batch: list[dict], act: Action, actor: str, notes: str,
                  canonical: Any, patch: dict | None) -> dict[str, dict]:
    recs = db.key_records_of(batch)
    spans = {int(ex["exception_id"]): _span(ex, recs.get(int(ex["exception_id"])))
             for ex in batch}
    fps = db.fingerprints_of_exceptions(spans)
    out: dict[str, dict] = {}
    replays: dict[int, tuple[dict, int]] = {}
    if act is Action.OVERRIDE_AND_REPLAY:
        replays, refused = _replays(db, batch, recs, spans, is_last(canonical), patch)
        out.update(refused)
        batch = [ex for ex in batch if int(ex["exception_id"]) in replays]
    counts = db.add_replay_deliveries([
        {"tenant_id": ex["tenant_id"], "idempotency_key": ex["idempotency_key"],
         "raw_id": replays[int(ex["exception_id"])][1],
         "event_type": replays[int(ex["exception_id"])][0]["event_type"],
         "payload": dumps(replays[int(ex["exception_id"])][0]["payload"]),
         "fingerprint": _fp(replays[int(ex["exception_id"])][0]),
         "exception_id": int(ex["exception_id"])} for ex in batch]) if replays else {}
    keys, closes, audits = [], [], []
    for ex in batch:
        ex_id = int(ex["exception_id"])
        rec = recs.get(ex_id)
        event, raw_id = replays.get(ex_id, (None, None))
        if rec is not None:
            keys.append(_key_row(ex, rec, fps.get(ex_id, []), event, raw_id, patch, counts))
        before = rec["state"] if rec is not None else None
        after = "processed" if event is not None else ("ignored" if before else None)
        patch_json = dumps(patch) if patch and event is not None else None
        closes.append({"exception_id": ex_id, "canonical_raw_id": raw_id,
                       "override_patch": patch_json})
        audits.append({
            "actor": actor, "action": act.value, "exception_id": ex_id, "tenant_id": ex["tenant_id"],
            "idempotency_key": ex["idempotency_key"], "state_before": before, "state_after": after,
            "notes": notes, "canonical_raw_id": raw_id, "override_patch": patch_json,
            "details": dumps({"reason_code": ex["reason_code"], "replay_outcome": None})})
        out[ex["exception_id"]] = {"exception_id": ex["exception_id"], "status": "resolved"}
    db.update_keys(keys)
    db.close_exceptions(closes, act.value, actor, notes, act is Action.OVERRIDE_AND_REPLAY)
    db.write_audits(audits)
    return out


def _span(ex: dict, rec: dict | None) -> tuple[int, int]:
    raw = int(ex["raw_id"])
    return raw, max(raw, rec["last_raw_id"]) if rec is not None else raw


def _fp(event: dict) -> str:
    return fingerprint(event["event_type"], event["payload"])


def _replays(db: Session, batch: list[dict], recs: dict[int, dict],
             spans: dict[int, tuple[int, int]], last: bool,
             patch: dict | None) -> tuple[dict[int, tuple[dict, int]], dict[str, dict]]:
    """Each item's replay (event, canonical raw id), or its refusal."""
    canon = {int(ex["exception_id"]): int(ex["raw_id"]) for ex in batch}
    if last:
        firsts = _first_fps(db, recs)
        canon = db.last_differing_arrivals(
            {i: (*spans[i], firsts.get(i)) for i in canon if i in recs})
    rows = db.raw_rows(sorted(set(canon.values())))
    entries = {(t["tenant_id"] or "", t["event_type"]) for t in db.allowed_types()}

    def allowed(tenant: str, event_type: str) -> bool:
        return ("", event_type) in entries or (tenant, event_type) in entries

    replays: dict[int, tuple[dict, int]] = {}
    refused: dict[str, dict] = {}
    for ex in batch:
        ex_id = int(ex["exception_id"])
        try:
            if ex_id not in canon:
                raise InvalidRequest(f"exception {ex_id} has no LAST arrival")
            event = compose_replay(ex, rows[canon[ex_id]], patch, allowed)
            replays[ex_id] = (event, canon[ex_id])
        except InvalidRequest as e:
            refused[ex["exception_id"]] = failure(ex["exception_id"], e)
    return replays, refused


def _first_fps(db: Session, recs: dict[int, dict]) -> dict[int, str | None]:
    """FIRST's fingerprint of each key as ``resolutions.first_fingerprint`` has it, the
    never-delivered keys' read in one go."""
    todo = {i: r["first_exception_raw_id"] for i, r in recs.items()
            if r["canonical_fingerprint"] is None and r["first_exception_raw_id"] is not None}
    read = db.raw_fingerprints(sorted(set(todo.values()))) if todo else {}
    return {i: read.get(todo[i]) if i in todo else r["canonical_fingerprint"]
            for i, r in recs.items()}


def _key_row(ex: dict, rec: dict, fps: list[str], event: dict | None, raw_id: int | None,
             patch: dict | None, counts: dict) -> dict:
    """The key record after the decision (``resolutions._adjudicate``'s, set-wise)."""
    row = {"tenant_id": rec["tenant_id"], "idempotency_key": rec["idempotency_key"],
           "first_raw_id": rec["first_raw_id"], "state": "ignored",
           "canonical_raw_id": rec["canonical_raw_id"],
           "canonical_fingerprint": rec["canonical_fingerprint"],
           "override_patch": rec["override_patch"], "delivery_count": rec["delivery_count"]}
    extra: list[str] = []
    if event is not None:
        fp = _fp(event)
        extra = [fp]
        row.update(state="processed", canonical_raw_id=raw_id, canonical_fingerprint=fp,
                   override_patch=dumps(patch) if patch else None,
                   delivery_count=counts[(ex["tenant_id"], ex["idempotency_key"])])
    row["adjudicated_fingerprints"] = list(dict.fromkeys(
        rec["adjudicated_fingerprints"] + fps + extra))
    return row

"""Four eyes, claims and comments on open exceptions (SPEC §15).

Under a policy (``identity.set_policy``), ``override_and_replay`` becomes a proposal:
the exception stays open and carries ``pending``; a different person approves it (the
replay happens then, once) or rejects it (the proposal is dropped, the key stays
quarantined). Each function runs in the caller's transaction and audits there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opswb.core.errors import Conflict, Forbidden, InvalidRequest
from opswb.core.fingerprint import dumps
from opswb.core.models import Action, Status
from opswb.engine import resolutions
from opswb.engine.resolutions import build_replay, load_exception, parse_action, require_text
from opswb.store.base import Session

MAX_COMMENT = 10_000


def _open(ex: dict, what: str) -> int:
    if ex["status"] != Status.OPEN:
        raise Conflict(f"exception {ex['exception_id']} is resolved; only an open one can "
                       f"be {what}")
    return int(ex["exception_id"])


def resolve(db: Session, exception_id: Any, action: Any, actor: Any, notes: Any,
            canonical_raw_id: Any = None, override_patch: Any = None) -> dict:
    """A resolution, or, where a policy asks for approval, a proposal of it."""
    act = parse_action(action)
    if act is Action.OVERRIDE_AND_REPLAY:
        ex = load_exception(db, exception_id)
        if db.needs_approval(ex["tenant_id"], act.value):
            return propose(db, ex, actor, notes, canonical_raw_id, override_patch)
    return resolutions.resolve_one(db, exception_id, action, actor, notes, canonical_raw_id,
                                   override_patch)


def propose(db: Session, ex: dict, actor: Any, notes: Any, canonical_raw_id: Any,
            override_patch: Any) -> dict:
    """Record an override_and_replay as the exception's ``pending`` proposal (validated
    as the replay itself would be; nothing is delivered)."""
    actor = require_text("actor", actor)
    notes = require_text("resolution_notes", notes)
    ex_id = _open(ex, "proposed for")
    if ex.get("pending"):
        raise Conflict(f"exception {ex_id} already has a proposal by "
                       f"{ex['pending']['proposed_by']}; approve or reject it first")
    _, raw_id, patch = build_replay(db, ex, canonical_raw_id, override_patch)
    pending = {"action": Action.OVERRIDE_AND_REPLAY.value, "proposed_by": actor,
               "canonical_raw_id": str(raw_id), "override_patch": patch,
               "resolution_notes": notes,
               "proposed_at": datetime.now(UTC).isoformat()}
    db.set_pending(ex_id, dumps(pending))
    db.write_audit(actor=actor, action="propose", exception_id=ex_id,
                   tenant_id=ex["tenant_id"], idempotency_key=ex["idempotency_key"],
                   notes=notes, canonical_raw_id=raw_id,
                   override_patch=dumps(patch) if patch else None,
                   details=dumps({"proposed": pending["action"]}))
    return db.exception_by_id(ex_id)


def _decide(db: Session, exception_id: Any, actor: Any, notes: Any,
            verb: str) -> tuple[dict, dict, str, str]:
    actor = require_text("actor", actor)
    notes = require_text("resolution_notes", notes)
    ex = load_exception(db, exception_id)
    pending = ex.get("pending")
    if ex["status"] != Status.OPEN or not pending:
        raise Conflict(f"exception {ex['exception_id']} has no pending proposal to {verb}"
                       + (f" (it was resolved by {ex['actor']})" if ex.get("actor") else ""))
    if pending["proposed_by"] == actor:
        raise Forbidden(f"{actor} proposed this; four eyes: a different approver must "
                        f"{verb} it")
    return ex, pending, actor, notes


def approve(db: Session, exception_id: Any, actor: Any, notes: Any) -> dict:
    """Apply the pending proposal (the replay happens now, once); audited as the
    approval and as the resolution, both by ``actor``, naming the proposer."""
    ex, pending, actor, notes = _decide(db, exception_id, actor, notes, "approve")
    ex_id = int(ex["exception_id"])
    db.write_audit(actor=actor, action="approve", exception_id=ex_id,
                   tenant_id=ex["tenant_id"], idempotency_key=ex["idempotency_key"],
                   notes=notes, details=dumps({"proposed_by": pending["proposed_by"],
                                               "proposed_at": pending["proposed_at"]}))
    db.set_pending(ex_id, None)
    return resolutions.resolve_one(db, ex_id, pending["action"], actor,
                                   pending["resolution_notes"], pending["canonical_raw_id"],
                                   pending["override_patch"])


def reject(db: Session, exception_id: Any, actor: Any, notes: Any) -> dict:
    """Drop the pending proposal: the exception stays open, its key quarantined."""
    ex, pending, actor, notes = _decide(db, exception_id, actor, notes, "reject")
    ex_id = int(ex["exception_id"])
    db.set_pending(ex_id, None)
    db.write_audit(actor=actor, action="reject", exception_id=ex_id,
                   tenant_id=ex["tenant_id"], idempotency_key=ex["idempotency_key"],
                   notes=notes, details=dumps({"proposed_by": pending["proposed_by"],
                                               "proposed_at": pending["proposed_at"],
                                               "proposal": pending}))
    return db.exception_by_id(ex_id)


# ---- claims and comments ----------------------------------------------------------------

def claim(db: Session, exception_id: Any, actor: Any, release: bool = False) -> dict:
    """Set (or, ``release``, clear) who is working on an open exception."""
    actor = require_text("actor", actor)
    ex = load_exception(db, exception_id)
    ex_id = _open(ex, "unclaimed" if release else "claimed")
    before = ex.get("assignee")
    db.set_assignee(ex_id, None if release else actor)
    db.write_audit(actor=actor, action="unclaim" if release else "claim",
                   exception_id=ex_id, tenant_id=ex["tenant_id"],
                   idempotency_key=ex["idempotency_key"],
                   details=dumps({"assignee_before": before,
                                  "assignee": None if release else actor}))
    return db.exception_by_id(ex_id)


def comment(db: Session, exception_id: Any, actor: Any, text: Any) -> dict:
    """Add a comment to an exception (open or resolved); returns ``{"comments"}``."""
    actor = require_text("actor", actor)
    text = require_text("text", text)
    if len(text) > MAX_COMMENT:
        raise InvalidRequest(f"text is {len(text)} characters; at most {MAX_COMMENT}")
    ex = load_exception(db, exception_id)
    ex_id = int(ex["exception_id"])
    db.add_comment(ex_id, actor, text)
    db.write_audit(actor=actor, action="comment", exception_id=ex_id,
                   tenant_id=ex["tenant_id"], idempotency_key=ex["idempotency_key"],
                   notes=text)
    return {"exception_id": str(ex_id), "comments": db.comments(ex_id)}

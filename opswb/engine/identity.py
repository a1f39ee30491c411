"""Who may do what (SPEC §15): named tokens and roles, and the audit chain's check.

A token is ``secrets.token_urlsafe(32)`` (256 random bits) and is stored only as its
sha256. A slow, salted KDF protects guessable passwords; a random 256-bit token cannot be
guessed, so a plain hash loses nothing, and it lets a request find its token by one
indexed lookup instead of trying a KDF against every stored token. Every function here
runs inside the caller's snapshot or transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from opswb.core.auditchain import entry_hash
from opswb.core.errors import Conflict, InvalidRequest, NotFound
from opswb.core.fingerprint import dumps
from opswb.core.models import Role
from opswb.engine.resolutions import require_text
from opswb.store.base import Session

BOOTSTRAP_NAME = "admin"  # the name OPSWB_API_TOKEN acts under
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def acting_as(caller: str, given: str | None) -> str:
    """The actor a call over HTTP is recorded under: the caller's token name (SPEC §15),
    the bootstrap token's (``admin``) included. ``given`` may be left out or repeat it;
    any other name is refused, before anything changes."""
    name = (given or "").strip()
    if not name or name == caller:
        return caller
    raise InvalidRequest(f"actor {given!r} is not the caller: this token is {caller!r}; "
                         "leave actor out (the audit records the token's name), or call "
                         "with that person's own token")


def token_hash(token: str) -> str:
    """The stored form of a token: its sha256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_role(role: Any) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidRequest(f"unknown role {role!r}: use one of "
                             f"{', '.join(r.value for r in Role)}") from None


def add_token(db: Session, name: Any, role: Any, actor: Any) -> dict:
    """Create a token; the answer is the only place the token itself appears."""
    actor = require_text("actor", actor)
    name = require_text("name", name)
    if not _NAME.fullmatch(name):
        raise InvalidRequest(f"token name {name!r}: use 1-64 letters, digits, '.', '_', "
                             "'@' or '-', starting with a letter or digit")
    if name == BOOTSTRAP_NAME:
        raise InvalidRequest(f"{BOOTSTRAP_NAME!r} is the name of the bootstrap token "
                             "(OPSWB_API_TOKEN); choose another name")
    r = parse_role(role)
    old = db.token_by_name(name)
    if old is not None:
        state = f"revoked at {old['revoked_at']}" if old["revoked_at"] else "in use"
        raise Conflict(f"a token named {name!r} exists ({state}); names are never "
                       "reused, so the audit trail stays unambiguous")
    token = secrets.token_urlsafe(32)
    db.insert_token(name, r.value, token_hash(token), actor)
    db.write_audit(actor=actor, action="tokens.add", notes=None,
                   details=dumps({"name": name, "role": r.value}))
    return {"name": name, "role": r.value, "token": token}


def revoke_token(db: Session, name: Any, actor: Any) -> dict:
    """Revoke a token: refused from the next request on."""
    actor = require_text("actor", actor)
    name = require_text("name", name)
    row = db.token_by_name(name)
    if row is None:
        raise NotFound(f"no token named {name!r}")
    if row["revoked_at"]:
        raise Conflict(f"token {name!r} was already revoked at {row['revoked_at']}")
    db.revoke_token(name, actor)
    db.write_audit(actor=actor, action="tokens.revoke",
                   details=dumps({"name": name, "role": row["role"]}))
    return db.token_by_name(name)


def lookup(db: Session, token: str) -> tuple[dict | None, bool]:
    """``({"name", "role"} or None, whether last_used_at is due to be written)`` of a
    presented token; None for an unknown or revoked one."""
    row = db.token_by_hash(token_hash(token)) if token else None
    if row is None or row["revoked_at"] is not None:
        return None, False
    last = row["last_used_at"]
    due = last is None or datetime.now(UTC) - last >= TOUCH_EVERY
    return {"name": row["name"], "role": row["role"]}, due


# ---- four-eyes policies ---------------------------------------------------------------

def set_policy(db: Session, approve: Any, tenant_id: str | None, actor: Any) -> dict:
    """Ask for a second person's approval of ``approve`` (globally or for a tenant)."""
    actor = require_text("actor", actor)
    action = _approvable(approve)
    db.set_policy(tenant_id or "", action, actor)
    db.write_audit(actor=actor, action="policy.set", tenant_id=tenant_id or None,
                   details=dumps({"approve": action, "tenant_id": tenant_id or None}))
    return {"tenant_id": tenant_id or None, "approve": action}


def clear_policy(db: Session, approve: Any, tenant_id: str | None, actor: Any) -> dict:
    actor = require_text("actor", actor)
    action = _approvable(approve)
    if not db.clear_policy(tenant_id or "", action):
        where = f"tenant {tenant_id!r}" if tenant_id else "globally"
        raise NotFound(f"no policy asks for approval of {action} {where}")
    db.write_audit(actor=actor, action="policy.clear", tenant_id=tenant_id or None,
                   details=dumps({"approve": action, "tenant_id": tenant_id or None}))
    return {"tenant_id": tenant_id or None, "approve": action, "cleared": True}


def _approvable(approve: Any) -> str:
    if approve != "override_and_replay":
        raise InvalidRequest(f"--approve {approve!r}: only override_and_replay can be put "
                             "under four eyes")
    return approve


# ---- the audit chain --------------------------------------------------------------------

def verify_chain(chain: dict) -> dict:
    """Walk the chain (``Session.audit_chain``): ``{"ok", "checked", "unchained",
    "first_bad", "problem"}``, ``first_bad`` the audit id of the first entry that does
    not match (None when all do)."""
    prev, last_id = None, chain["chain_start"]
    out = {"ok": True, "checked": 0, "unchained": chain["unchained"],
           "chain_start": chain["chain_start"], "first_bad": None, "problem": None}

    def bad(audit_id: Any, problem: str) -> dict:
        out.update(ok=False, first_bad=str(audit_id), problem=problem)
        return out

    for row in chain["rows"]:
        aid = row["audit_id"]
        if row["entry_hash"] is None or entry_hash(row, row["prev_hash"]) != row["entry_hash"]:
            return bad(aid, f"entry {aid} was changed: its hash does not match its content")
        if aid != last_id + 1 or row["prev_hash"] != prev:
            gap = (f"; entries {last_id + 1}..{aid - 1} are missing" if aid > last_id + 1
                   else "")
            return bad(aid, f"entry {aid} does not follow entry {last_id}: an entry before "
                            f"it was deleted, changed or reordered{gap}")
        prev, last_id = row["entry_hash"], aid
        out["checked"] += 1
    if chain["head_id"] is not None and (chain["head_id"] != last_id
                                         or chain["head_hash"] != prev):
        return bad(chain["head_id"], f"the chain ends at entry {last_id} but its head is "
                                     f"entry {chain['head_id']}: newer entries were deleted")
    return out

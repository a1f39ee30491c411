"""The event-type allowlist: data, not code (SPEC §5). Global entries have tenant ''."""

from __future__ import annotations

from opswb.core.errors import InvalidRequest, NotFound
from opswb.core.fingerprint import dumps
from opswb.engine.resolutions import require_text
from opswb.store.base import Session


def add_type(db: Session, event_type: str, tenant_id: str | None, actor: str,
             notes: str | None) -> dict:
    """Allow ``event_type`` globally or for one tenant; audited."""
    event_type = require_text("event_type", event_type)
    actor = require_text("actor", actor)
    db.add_type(tenant_id or "", event_type, actor)
    db.write_audit(actor=actor, action="types.add", tenant_id=tenant_id, notes=notes,
                   details=_details(event_type, tenant_id))
    return {"tenant_id": tenant_id or None, "event_type": event_type, "allowed": True}


def remove_type(db: Session, event_type: str, tenant_id: str | None, actor: str,
                notes: str | None) -> dict:
    """Remove an entry; a global type cannot be removed for one tenant."""
    event_type = require_text("event_type", event_type)
    actor = require_text("actor", actor)
    tenant = tenant_id or ""
    if not db.has_type_entry(tenant, event_type):
        if tenant and db.has_type_entry("", event_type):
            raise InvalidRequest(
                f"{event_type!r} is allowed globally; per-tenant entries only add, so it "
                f"cannot be removed for tenant {tenant!r} alone")
        where = f"tenant {tenant!r}" if tenant else "the global allowlist"
        raise NotFound(f"{event_type!r} is not on {where}")
    db.remove_type(tenant, event_type)
    db.write_audit(actor=actor, action="types.remove", tenant_id=tenant_id, notes=notes,
                   details=_details(event_type, tenant_id))
    return {"tenant_id": tenant_id or None, "event_type": event_type, "allowed": False}


def _details(event_type: str, tenant_id: str | None) -> str:
    return dumps({"event_type": event_type, "tenant_id": tenant_id or None})

"""The event-type allowlist: data, not code (SPEC §5). Global entries have tenant ''."""

from __future__ import annotations

import duckdb

from opswb.core.errors import InvalidRequest, NotFound
from opswb.core.fingerprint import dumps
from opswb.engine.resolutions import require_text
from opswb.store.duckdb import queries as storage
from opswb.store.duckdb.connection import fetch_one


def add_type(con: duckdb.DuckDBPyConnection, event_type: str, tenant_id: str | None,
             actor: str, notes: str | None) -> dict:
    """Allow ``event_type`` globally or for one tenant; audited."""
    event_type = require_text("event_type", event_type)
    actor = require_text("actor", actor)
    con.execute("INSERT OR IGNORE INTO event_types VALUES (?, ?, ?, now())",
                [tenant_id or "", event_type, actor])
    storage.write_audit(con, actor=actor, action="types.add", tenant_id=tenant_id,
                        notes=notes, details=storage_details(event_type, tenant_id))
    return {"tenant_id": tenant_id or None, "event_type": event_type, "allowed": True}


def remove_type(con: duckdb.DuckDBPyConnection, event_type: str, tenant_id: str | None,
                actor: str, notes: str | None) -> dict:
    """Remove an entry; a global type cannot be removed for one tenant."""
    event_type = require_text("event_type", event_type)
    actor = require_text("actor", actor)
    tenant = tenant_id or ""
    exists = fetch_one(con.execute("SELECT count(*) FROM event_types WHERE tenant_id = ? AND"
                         " event_type = ?", [tenant, event_type]))[0]
    if not exists:
        if tenant and fetch_one(con.execute("SELECT count(*) FROM event_types WHERE tenant_id = ''"
                                  " AND event_type = ?", [event_type]))[0]:
            raise InvalidRequest(
                f"{event_type!r} is allowed globally; per-tenant entries only add, so it "
                f"cannot be removed for tenant {tenant!r} alone")
        where = f"tenant {tenant!r}" if tenant else "the global allowlist"
        raise NotFound(f"{event_type!r} is not on {where}")
    con.execute("DELETE FROM event_types WHERE tenant_id = ? AND event_type = ?",
                [tenant, event_type])
    storage.write_audit(con, actor=actor, action="types.remove", tenant_id=tenant_id,
                        notes=notes, details=storage_details(event_type, tenant_id))
    return {"tenant_id": tenant_id or None, "event_type": event_type, "allowed": False}


def storage_details(event_type: str, tenant_id: str | None) -> str:
    return dumps({"event_type": event_type, "tenant_id": tenant_id or None})

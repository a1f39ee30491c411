"""The event-type allowlist (SPEC §5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from opswb.api.gate import JSONOut
from opswb.api.models import TypeBody, TypeChange, TypePage
from opswb.api.routes.common import COMMON, ERR, WB, Caller, acting

router = APIRouter()


@router.get("/v1/types", response_model=TypePage, responses=COMMON, tags=["types"])
def list_types(wb: WB, tenant_id: str | None = None) -> Any:
    """The allowlist: global entries plus the tenant's own."""
    return JSONOut({"items": wb.types(tenant_id), "next_cursor": None})


@router.post("/v1/types", response_model=TypeChange, responses=COMMON, tags=["types"])
def add_type(wb: WB, who: Caller, body: TypeBody) -> Any:
    """Allow an event type globally or for one tenant (audited)."""
    return JSONOut(wb.add_type(body.event_type, body.tenant_id, acting(who, body.actor), body.notes))


@router.delete(
    "/v1/types", response_model=TypeChange, responses={**COMMON, 404: ERR}, tags=["types"]
)
def remove_type(
    wb: WB, who: Caller, event_type: str, actor: str | None = None,
    tenant_id: str | None = None, notes: str | None = None,
) -> Any:
    """Remove an allowlist entry (audited); a global type cannot be removed for one
    tenant."""
    return JSONOut(wb.remove_type(event_type, tenant_id, acting(who, actor), notes))

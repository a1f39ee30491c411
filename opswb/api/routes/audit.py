"""The audit trail (SPEC §7)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from opswb.api.gate import JSONOut
from opswb.api.models import AuditPage
from opswb.api.routes.common import COMMON, WB

router = APIRouter()


@router.get("/v1/audit", response_model=AuditPage, responses=COMMON, tags=["audit"])
def audit(
    wb: WB,
    exception_id: str | None = None,
    actor: str | None = None,
    tenant_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> Any:
    """Audit entries, newest first."""
    return JSONOut({"items": wb.audit(exception_id, actor, tenant_id, limit), "next_cursor": None})

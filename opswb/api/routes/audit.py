"""The audit trail (SPEC §7)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from opswb.api.gate import JSONOut
from opswb.api.identity_models import ChainCheck
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


@router.get("/v1/audit/verify", response_model=ChainCheck, responses=COMMON, tags=["audit"])
def verify(wb: WB) -> Any:
    """Walk the audit hash chain (SPEC §15): ``first_bad`` names the first entry that
    does not match (changed, deleted or reordered underneath)."""
    return JSONOut(wb.verify_audit())

"""Health (SPEC §8) and health snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter

from opswb.api.gate import JSONOut
from opswb.api.models import Health, Snapshot, SnapshotPage
from opswb.api.routes.common import COMMON, WB
from opswb.core.errors import InvalidRequest

router = APIRouter()


def _check_since(since: str | None) -> None:
    if since:
        try:
            datetime.fromisoformat(since)
        except ValueError:
            raise InvalidRequest(f"since must be an ISO 8601 timestamp, got {since!r}") from None


@router.get("/v1/health", response_model=Health, responses=COMMON, tags=["health"])
def get_health(wb: WB) -> Any:
    """SPEC §8 figures; reading health never writes."""
    return JSONOut(wb.health())


@router.get("/v1/health/snapshots", response_model=SnapshotPage, responses=COMMON, tags=["health"])
def list_snapshots(wb: WB, since: str | None = None) -> Any:
    """Recorded health snapshots, oldest first."""
    _check_since(since)
    return JSONOut({"items": wb.snapshots(since), "next_cursor": None})


@router.post(
    "/v1/health/snapshots",
    response_model=Snapshot,
    status_code=201,
    responses=COMMON,
    tags=["health"],
)
def post_snapshot(wb: WB) -> Any:
    """Record a health snapshot (for the trend of exceptions_open)."""
    return JSONOut(wb.record_snapshot(), status_code=201)

"""Four eyes on proposals, claims and comments on exceptions (SPEC §15)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from opswb.api.gate import JSONOut
from opswb.api.identity_models import ActorBody, CommentBody, Comments, DecideBody
from opswb.api.models import ExceptionOut
from opswb.api.routes.common import BY_ID, ERR, WB, Caller, acting

router = APIRouter()
DECIDED = {**BY_ID, 409: ERR}
EX = "/v1/exceptions/{exception_id}"


@router.post(EX + "/approve", response_model=ExceptionOut, responses=DECIDED,
             tags=["exceptions"])
def approve(wb: WB, who: Caller, exception_id: str, body: DecideBody) -> Any:
    """Apply the pending proposal (the replay happens now, once); the proposer may not
    approve their own (403); 409 when there is no proposal any more."""
    return JSONOut(wb.approve(exception_id, acting(who, body.actor), body.resolution_notes))


@router.post(EX + "/reject", response_model=ExceptionOut, responses=DECIDED,
             tags=["exceptions"])
def reject(wb: WB, who: Caller, exception_id: str, body: DecideBody) -> Any:
    """Drop the pending proposal: the exception stays open, its key quarantined."""
    return JSONOut(wb.reject(exception_id, acting(who, body.actor), body.resolution_notes))


@router.post(EX + "/claim", response_model=ExceptionOut, responses=DECIDED,
             tags=["exceptions"])
def claim(wb: WB, who: Caller, exception_id: str, body: ActorBody | None = None) -> Any:
    """Set ``assignee`` of an open exception to the caller."""
    return JSONOut(wb.claim(exception_id, acting(who, body.actor if body else None)))


@router.delete(EX + "/claim", response_model=ExceptionOut, responses=DECIDED,
               tags=["exceptions"])
def unclaim(wb: WB, who: Caller, exception_id: str) -> Any:
    """Clear ``assignee`` of an open exception."""
    return JSONOut(wb.unclaim(exception_id, who["name"]))


@router.post(EX + "/comments", response_model=Comments, responses=BY_ID,
             tags=["exceptions"])
def comment(wb: WB, who: Caller, exception_id: str, body: CommentBody) -> Any:
    """Add a comment (shown in the detail's ``comments``)."""
    return JSONOut(wb.comment(exception_id, body.text, acting(who, body.actor)))

"""What every router shares: the served workbench, the caller, the error answers'
shapes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from opswb.api.models import ErrorBody
from opswb.engine.identity import acting_as

ERR = {"model": ErrorBody}
COMMON = {401: ERR, 403: ERR, 413: ERR, 422: ERR}
BY_ID = {**COMMON, 404: ERR}


# Both are async: FastAPI runs a plain ``def`` dependency on a worker thread, a thread
# hop per request (a third of the event loop's time per single-event POST, measured).
async def workbench(request: Request) -> Any:
    """The workbench the app serves (``create_app`` puts it on ``app.state``)."""
    return request.app.state.wb


async def caller(request: Request) -> dict:
    """``{"name", "role"}`` of the bearer token (the gate put it in the scope)."""
    return request.scope["opswb.identity"]


WB = Annotated[Any, Depends(workbench)]
Caller = Annotated[dict, Depends(caller)]


def acting(who: dict, given: str | None) -> str:
    """The actor a call is recorded under: the token's name, the bootstrap token's
    (``admin``) included; a body ``actor`` naming anyone else is 422 (SPEC §15)."""
    return acting_as(who["name"], given)

"""What every router shares: the served workbench, the caller, the error answers'
shapes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from opswb.api.models import ErrorBody
from opswb.core.errors import InvalidRequest

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


def acting(wb: Any, who: dict, given: str | None) -> str:
    """The actor a call is recorded under: the token's name (SPEC §15). A body ``actor``
    may repeat it; naming someone else is refused (422).

    The bootstrap token (OPSWB_API_TOKEN) is shared, and scripts written before §15 name
    the person they act for, so it may still name an actor, with one limit: never a name
    that has a token of its own (live or revoked). Once a person has a credential, the
    audit's entries under that name come only from it (docs/contract.md)."""
    name = (given or "").strip()
    if not name or name == who["name"]:
        return who["name"]
    if who.get("bootstrap"):
        if name not in {t["name"] for t in wb.tokens()}:
            return str(given)
        raise InvalidRequest(f"actor {given!r} has a token of its own: the bootstrap token "
                             "may not act under a named token's name; use that token, or "
                             "leave actor out (recorded as admin)")
    raise InvalidRequest(f"actor {given!r} is not the caller: this token is {who['name']!r}"
                         "; leave actor out, the audit records the token's name")

"""What every router shares: the served workbench and the error answers' shapes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from opswb.api.models import ErrorBody

ERR = {"model": ErrorBody}
COMMON = {401: ERR, 413: ERR, 422: ERR}
BY_ID = {**COMMON, 404: ERR}


def workbench(request: Request) -> Any:
    """The workbench the app serves (``create_app`` puts it on ``app.state``)."""
    return request.app.state.wb


WB = Annotated[Any, Depends(workbench)]

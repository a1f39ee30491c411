"""The /v1 HTTP API of ``opswb serve`` (SPEC §9): a thin FastAPI shell over the engine.

``create_app`` assembles one router per resource (``routes/``) over a workbench (in the
server, ``ServedWorkbench``, which holds the store). Every request, the OpenAPI document
included, needs ``Authorization: Bearer <token>``; the gate that checks it also refuses
bodies over the size limit (``gate.py``, with the error answers). ``server.py`` runs it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request

from opswb import __version__
from opswb.api.gate import Gate, JSONOut, install_error_handlers
from opswb.api.roles import flat_routes, required_role
from opswb.api.routes import (
    audit,
    deliveries,
    events,
    exceptions,
    health,
    review,
    tokens,
    types,
)
from opswb.core.errors import InvalidRequest

DEFAULT_MAX_BODY = 64 * 1024 * 1024


async def _known_query_only(request: Request) -> None:
    """Refuse query parameters the route does not take: ``?tenant=acme`` for
    ``tenant_id`` would otherwise list every tenant without a word. (Async: a plain
    function would run on a worker thread, a thread hop per request.)"""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    allowed = {p.alias for p in dependant.query_params} if dependant is not None else set()
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no query parameters"
        raise InvalidRequest(f"unknown query parameter(s): {', '.join(unknown)}; "
                             f"this call takes {takes}")


def _routes(app: FastAPI) -> list:
    """The app's routes, flat, computed once (after every router is included)."""
    if getattr(app.state, "flat_routes", None) is None:
        app.state.flat_routes = flat_routes(app.routes)
    return app.state.flat_routes


def create_app(wb: Any, token: str, max_body: int = DEFAULT_MAX_BODY) -> FastAPI:
    """The /v1 application over ``wb`` (a ``ServedWorkbench``), guarded by ``token``."""
    if not token:
        raise ValueError("an API token is required")
    app = FastAPI(
        title="opswb", version=__version__, openapi_url="/v1/openapi.json", docs_url=None,
        redoc_url=None, default_response_class=JSONOut, redirect_slashes=False,
        dependencies=[Depends(_known_query_only)],
        description="Ingestion gate and exception workbench (SPEC §9). Every call needs "
                    "`Authorization: Bearer <token>`; the token's role decides what it "
                    "may call (SPEC §15, 403 beyond it).",
    )
    install_error_handlers(app)
    app.add_middleware(Gate, token=token, max_body=max_body,
                       authenticate=getattr(wb, "authenticate", None),
                       rule_for=lambda scope: required_role(_routes(app), scope),
                 fast_events=events.fast_app(wb))
    app.state.wb = wb
    for routes in (health, exceptions, events, deliveries, audit, types, tokens, review):
        app.include_router(routes.router)

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = base_openapi()
            doc.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http", "scheme": "bearer"}
            doc["security"] = [{"bearer": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document the server serves (kept in docs/openapi.json)."""
    return create_app(None, token="unused").openapi()

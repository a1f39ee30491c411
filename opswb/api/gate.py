"""The shell around every /v1 route: the bearer-token and body-size gate, and the error
answers (SPEC §9).

Every error answer is ``{"error", "status", "type"?}`` with a readable message. Engine
errors map to status codes through their ``http_status``. A failure the server did not
expect is a 500 whose message is fixed and names an incident; the type, message and
traceback go to the server's log (logger ``opswb.api``) under that incident.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from anyio.to_thread import run_sync
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opswb.api.roles import RULES, refusal
from opswb.core.errors import OpswbError
from opswb.core.fingerprint import dump_bytes
from opswb.engine.identity import BOOTSTRAP_NAME

log = logging.getLogger("opswb.api")
INTERNAL_ERROR = "internal error; the server log has the details"


class JSONOut(JSONResponse):
    """JSON via the engine's ``dump_bytes`` (orjson, with an exact stdlib fallback)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dump_bytes(content)


def _error(status: int, message: str, kind: str | None = None, **extra: Any) -> JSONOut:
    body: dict[str, Any] = {"error": message, "status": status}
    if kind:
        body["type"] = kind
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONOut(body, status_code=status, headers=headers)


error_answer = _error


def engine_error(method: str, path: str, exc: OpswbError) -> JSONOut:
    """The answer to an engine error: its status and message (a 500's stays internal)."""
    if exc.http_status == 500:  # the store failed underneath: its message is internal
        return internal_error(method, path, exc)
    return _error(exc.http_status, str(exc), type(exc).__name__)


def internal_error(method: str, path: str, exc: BaseException) -> JSONOut:
    """The answer to a failure the server did not expect (SPEC §9): no internal type,
    message or trace in it, only an incident the log entry carries with all three."""
    incident = secrets.token_hex(6)
    log.error("internal error, incident %s, answering %s %s", incident, method, path,
              exc_info=(type(exc), exc, exc.__traceback__))
    return _error(500, f"{INTERNAL_ERROR} (incident {incident})")


async def _answering_failures(app: ASGIApp, scope: Scope, receive: Receive,
                              send: Send) -> None:
    """Run ``app``; a failure it raises before its answer started becomes the 500 of
    ``internal_error``, logged once (not re-raised for the server to log again)."""
    started = False

    async def sending(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, sending)
    except Exception as exc:
        if started:
            raise  # the answer is under way: the server logs it and drops the connection
        await internal_error(scope["method"], scope["path"], exc)(scope, receive, send)


_EVENTS_ROLE = RULES[("POST", "/v1/events")]


class _TooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body is larger than the limit of {limit} bytes")


class Gate:
    """Pure ASGI middleware: the bearer token names the caller (SPEC §15) and its role
    must reach the route's (``roles.py``: 401, then 403), then the body size limit,
    from ``Content-Length`` before any byte is read and while streaming otherwise.

    ``token`` (OPSWB_API_TOKEN) is the bootstrap admin, named ``admin``; any other token
    is looked up by ``authenticate`` (the workbench's: by hash, revocation seen on the
    next request). The caller is left in ``scope["opswb.identity"]``."""

    def __init__(self, app: ASGIApp, token: str, max_body: int,
                 authenticate: Callable[[str], dict | None] | None = None,
                 rule_for: Callable[[Scope], Any] | None = None,
                 fast_events: ASGIApp | None = None):
        self.app, self.token, self.max_body = app, token.encode(), max_body
        self.authenticate, self.rule_for = authenticate, rule_for
        self.fast_events = fast_events  # POST /v1/events past FastAPI (routes/events.py)

    async def _identify(self, header: str | None) -> dict | None:
        scheme, _, given = (header or "").partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given or len(given) > 512:
            return None
        # compare_digest takes as long whatever the mismatch, so timing reveals nothing
        if hmac.compare_digest(given.encode("utf-8", "replace"), self.token):
            return {"name": BOOTSTRAP_NAME, "role": "admin", "bootstrap": True}
        if self.authenticate is None:
            return None
        return await run_sync(self.authenticate, given)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            who = await self._identify(headers.get("authorization"))
        except Exception as exc:  # noqa: BLE001 -- the store failed: a 500, an incident
            await internal_error(scope["method"], scope["path"], exc)(scope, receive, send)
            return
        if who is None:
            await _error(401, "missing, unknown or revoked bearer token: send "
                         "'Authorization: Bearer <token>' (OPSWB_API_TOKEN or one from "
                         "`opswb tokens add`)", "Unauthorized")(scope, receive, send)
            return
        fast = (self.fast_events is not None and scope["method"] == "POST"
                and scope["path"] == "/v1/events" and not scope.get("query_string")
                and len(headers.get("opswb-batch-id", "")) <= 512)
        # the fast path's role is known: no walk over the routes to find it
        need = _EVENTS_ROLE if fast else \
            self.rule_for(scope) if self.rule_for is not None else None
        why = refusal(who, need, scope) if need is not None else None
        if why:
            await _error(403, why, "Forbidden")(scope, receive, send)
            return
        scope["opswb.identity"] = who
        repeated = _repeated_query_names(scope.get("query_string", b""))
        if repeated:
            # every parameter is a single value; taking one copy silently would hide a
            # client bug (a filter that is not applied as the caller thinks)
            await _error(422, f"query parameter(s) given more than once: {repeated}",
                         "InvalidRequest")(scope, receive, send)
            return
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_body:
            await _error(413, f"request body of {int(length)} bytes is larger than the "
                         f"limit of {self.max_body} bytes; send smaller batches",
                         "TooLarge")(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge(self.max_body)
            return message

        app = self.fast_events if fast else self.app
        await _answering_failures(app, scope, limited, send)


def _repeated_query_names(query: bytes) -> str:
    names = [n for n, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]
    return ", ".join(sorted({n for n in names if names.count(n) > 1}))


def _validation_message(errors: list[dict]) -> str:
    parts = []
    for e in errors:
        if e.get("type") == "json_invalid":
            parts.append(f"request body is not JSON: {e.get('ctx', {}).get('error', '')}")
            continue
        loc = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg', 'invalid')}" if loc else e.get("msg", "invalid"))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpswbError)
    async def _engine_error(request: Request, exc: OpswbError) -> JSONOut:
        return engine_error(request.method, request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONOut:
        errors = exc.errors()
        detail = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in errors]
        return _error(422, _validation_message(errors), "InvalidRequest", detail=detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONOut:
        message, status = str(exc.detail), exc.status_code
        if status == 400 and "parsing the body" in message:
            # FastAPI's answer to a body it cannot decode (e.g. not UTF-8): not JSON, 422
            return _error(422, "request body is not JSON (it could not be decoded)",
                          "InvalidRequest")
        if exc.status_code == 404:
            message = f"no such route: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        return _error(status, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONOut:
        # only what fails outside the gate's ``_answering_failures`` reaches this
        return internal_error(request.method, request.url.path, exc)

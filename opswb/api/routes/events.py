"""POST /v1/events: arrivals in, per-arrival results out (SPEC §2, §9, §10)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from opswb.api.gate import JSONOut, engine_error, error_answer
from opswb.api.models import EventsAnswer
from opswb.api.routes.common import COMMON, ERR, WB
from opswb.core.errors import InvalidRequest, OpswbError
from opswb.core.strictjson import InvalidJSON, parse, strip_bom

router = APIRouter()

NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
}


@router.post(
    "/v1/events",
    response_model=EventsAnswer,
    responses={**COMMON, 409: ERR},
    tags=["events"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [{"type": "array", "items": {}}, {"type": "object"}],
                        "description": "a JSON array, each element one arrival whatever its "
                        "type; a single object is one arrival",
                    }
                },
                "application/x-ndjson": {
                    "schema": {
                        "description": "text, one arrival per line (any line: one that "
                        "is not JSON is an invalid arrival)"
                    }
                },
            },
        }
    },
)
async def post_events(
    wb: WB,
    request: Request,
    batch_id: Annotated[str | None, Header(alias="Opswb-Batch-Id", max_length=512)] = None,
) -> Any:
    """Ingest a JSON array or NDJSON body atomically, committed with the requests that
    arrive meanwhile (group commit, SPEC §13): the §10 summary plus
    ``results``, one per arrival in input order. A retry with an ``Opswb-Batch-Id``
    already stored and the same body answers zero counts and the first ``results``;
    the same id with another body is 409 and stores nothing."""
    return JSONOut(await answer(wb, request, batch_id or None))


async def answer(wb: Any, request: Request, batch: str | None) -> dict:
    """``post_events``' answer: the body read, checked, queued and committed."""
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in NDJSON_TYPES:
        return await _ingest(wb, "ndjson", body, batch)
    head = strip_bom(body).lstrip(b" \t\r\n")[:1]
    if head != b"[":
        try:
            value = parse(strip_bom(body))
        except InvalidJSON as e:
            if e.rule in ("not_json", "not_utf8"):
                raise InvalidRequest(
                    f"request body is not JSON ({str(e)[:120]}); send a JSON array of "
                    "events, or NDJSON with Content-Type: application/x-ndjson"
                ) from None
            value = {}  # JSON, but not I-JSON: one invalid arrival, stored as sent
        if not isinstance(value, dict):
            raise InvalidRequest(
                "send a JSON array of events (or one event object), "
                f"not a bare {type(value).__name__}"
            )
    return await _ingest(wb, "json", body, batch)


# A body this small is parsed on the event loop (well under a millisecond); a larger
# one on a worker thread, so it never holds up other requests.
INLINE_PARSE_BYTES = 16 * 1024


async def _ingest(wb: Any, kind: str, body: bytes, batch: str | None) -> dict:
    """Ingest a body through the server's group commit (``ServedWorkbench.submit_*``):
    parsed, queued, and awaited without holding a worker thread while its group commits.
    A workbench without a queue ingests on a worker thread."""
    submit = getattr(wb, f"submit_{kind}", None)
    if submit is None:
        return await run_in_threadpool(getattr(wb, f"ingest_{kind}"), body, batch)
    if len(body) <= INLINE_PARSE_BYTES:
        future = submit(body, batch)
    else:
        future = await run_in_threadpool(submit, body, batch)
    return await asyncio.wrap_future(future)


def fast_app(wb: Any) -> Any:
    """``POST /v1/events`` as a bare ASGI app, for the gate (``api.gate.Gate``) to call
    once it has checked the caller: the same ``answer`` and error answers, without
    FastAPI's routing, dependency solving and exception middleware, which cost the event
    loop more than the rest of a single-event request (measured: ~1,200 Python calls a
    request). The gate sends here only what the route would take: no query parameters,
    an ``Opswb-Batch-Id`` within its 512 characters."""

    async def events(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        try:
            response = JSONOut(await answer(wb, request,
                                            request.headers.get("opswb-batch-id") or None))
        except OpswbError as exc:
            response = engine_error(scope["method"], scope["path"], exc)
        except StarletteHTTPException as exc:  # the body passed the limit while read
            response = error_answer(exc.status_code, str(exc.detail))
        await response(scope, receive, send)

    return events

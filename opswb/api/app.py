"""The /v1 HTTP API of ``opswb serve`` (SPEC §9): a thin FastAPI shell over the engine.

The server owns the DuckDB file for its lifetime (``ServedWorkbench``). Every request,
the OpenAPI document included, needs ``Authorization: Bearer <token>``; the gate that
checks it also refuses bodies over the size limit (api_gate.py, with the error answers).
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import sys
import threading
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool

from opswb import __version__
from opswb.api.gate import Gate, JSONOut, install_error_handlers
from opswb.api.models import (
    AuditPage,
    BulkResolveBody,
    BulkResults,
    Detail,
    ErrorBody,
    EventsAnswer,
    ExceptionOut,
    ExceptionPage,
    Health,
    KeyView,
    Preview,
    PreviewBody,
    ReopenBody,
    ResolveBody,
    Snapshot,
    SnapshotPage,
    TypeBody,
    TypeChange,
    TypePage,
)
from opswb.core.errors import InvalidRequest, OpswbError
from opswb.core.strictjson import InvalidJSON, parse, strip_bom

DEFAULT_MAX_BODY = 64 * 1024 * 1024
NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl",
                "application/x-jsonlines"}
_ERR = {"model": ErrorBody}


def _known_query_only(request: Request) -> None:
    """Refuse query parameters the route does not take: ``?tenant=acme`` for
    ``tenant_id`` would otherwise list every tenant without a word."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    allowed = {p.alias for p in dependant.query_params} if dependant is not None else set()
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no query parameters"
        raise InvalidRequest(f"unknown query parameter(s): {', '.join(unknown)}; "
                             f"this call takes {takes}")


def _check_since(since: str | None) -> None:
    if since:
        try:
            datetime.fromisoformat(since)
        except ValueError:
            raise InvalidRequest(f"since must be an ISO 8601 timestamp, got {since!r}") from None


def create_app(wb: Any, token: str, max_body: int = DEFAULT_MAX_BODY) -> FastAPI:
    """The /v1 application over ``wb`` (a ``ServedWorkbench``), guarded by ``token``."""
    if not token:
        raise ValueError("an API token is required")
    app = FastAPI(
        title="opswb", version=__version__, openapi_url="/v1/openapi.json", docs_url=None,
        redoc_url=None, default_response_class=JSONOut, redirect_slashes=False,
        dependencies=[Depends(_known_query_only)],
        description="Ingestion gate and exception workbench (SPEC §9). Every call needs "
                    "`Authorization: Bearer <token>`.",
    )
    install_error_handlers(app)
    app.add_middleware(Gate, token=token, max_body=max_body)
    common = {401: _ERR, 413: _ERR, 422: _ERR}
    by_id = {**common, 404: _ERR}

    @app.get("/v1/health", response_model=Health, responses=common, tags=["health"])
    def get_health() -> Any:
        """SPEC §8 figures; reading health never writes."""
        return JSONOut(wb.health())

    @app.get("/v1/health/snapshots", response_model=SnapshotPage, responses=common,
             tags=["health"])
    def list_snapshots(since: str | None = None) -> Any:
        """Recorded health snapshots, oldest first."""
        _check_since(since)
        return JSONOut({"items": wb.snapshots(since), "next_cursor": None})

    @app.post("/v1/health/snapshots", response_model=Snapshot, status_code=201,
              responses=common, tags=["health"])
    def post_snapshot() -> Any:
        """Record a health snapshot (for the trend of exceptions_open)."""
        return JSONOut(wb.record_snapshot(), status_code=201)

    @app.get("/v1/exceptions", response_model=ExceptionPage, responses=common,
             tags=["exceptions"])
    def list_exceptions(
        status: Literal["open", "resolved", "all"] = "open",
        tenant_id: str | None = None, reason_code: str | None = None,
        source: str | None = None, idempotency_key: str | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 50, cursor: str | None = None,
    ) -> Any:
        """One page of exceptions, oldest first; ``status`` defaults to open."""
        return JSONOut(wb.list_exceptions(status, tenant_id, reason_code, source,
                                          idempotency_key, limit, cursor))

    @app.post("/v1/exceptions/resolve", response_model=BulkResults, responses=common,
              tags=["exceptions"])
    def resolve_bulk(body: BulkResolveBody) -> Any:
        """One decision for many open exceptions, by ids or by a filter; per-item outcomes."""
        flt = body.filter.model_dump(exclude_none=True) if body.filter is not None else None
        return JSONOut(wb.resolve_many(
            ids=body.ids, filter=flt, action=body.action.value, actor=body.actor,
            resolution_notes=body.resolution_notes, canonical_raw_id=body.canonical_raw_id,
            override_patch=body.override_patch))

    @app.get("/v1/exceptions/{exception_id}", response_model=Detail, responses=by_id,
             tags=["exceptions"])
    def get_exception(exception_id: str) -> Any:
        """The detail: §6 fields, raw, events_processed, first, last, diff, arrivals,
        deliveries."""
        return JSONOut(wb.exception(exception_id))

    @app.get("/v1/keys", response_model=KeyView, responses={**common, 404: _ERR},
             tags=["exceptions"])
    def get_key(tenant_id: str, idempotency_key: str) -> Any:
        """One idempotency key: its events_processed record, arrivals and deliveries."""
        return JSONOut(wb.key(tenant_id, idempotency_key))

    @app.post("/v1/exceptions/{exception_id}/resolve", response_model=ExceptionOut,
              responses={**by_id, 409: _ERR}, tags=["exceptions"])
    def resolve_one(exception_id: str, body: ResolveBody) -> Any:
        """Resolve one open exception; 409 when it is no longer open."""
        return JSONOut(wb.resolve(exception_id, body.action.value, body.actor,
                                  body.resolution_notes, body.canonical_raw_id,
                                  body.override_patch))

    @app.post("/v1/exceptions/{exception_id}/reopen", response_model=ExceptionOut,
              responses={**by_id, 409: _ERR}, tags=["exceptions"])
    def reopen(exception_id: str, body: ReopenBody) -> Any:
        """Reopen a resolved exception (status open, key quarantined)."""
        return JSONOut(wb.reopen(exception_id, body.actor, body.resolution_notes))

    @app.post("/v1/exceptions/{exception_id}/preview", response_model=Preview,
              responses=by_id, tags=["exceptions"])
    def preview(exception_id: str, body: PreviewBody | None = None) -> Any:
        """What override_and_replay would deliver, validated; writes nothing."""
        body = body or PreviewBody()
        return JSONOut(wb.preview(exception_id, body.canonical_raw_id, body.override_patch))

    @app.post("/v1/events", response_model=EventsAnswer, responses={**common, 409: _ERR},
              tags=["events"],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {
                      "anyOf": [{"type": "array", "items": {}}, {"type": "object"}],
                      "description": "a JSON array, each element one arrival whatever its "
                                     "type; a single object is one arrival"}},
                  "application/x-ndjson": {"schema": {
                      "description": "text, one arrival per line (any line: one that "
                                     "is not JSON is an invalid arrival)"}}}}})
    async def post_events(
        request: Request,
        batch_id: Annotated[str | None, Header(alias="Opswb-Batch-Id", max_length=512)] = None,
    ) -> Any:
        """Ingest a JSON array or NDJSON body in one transaction: the §10 summary plus
        ``results``, one per arrival in input order. A retry with an ``Opswb-Batch-Id``
        already stored and the same body answers zero counts and the first ``results``;
        the same id with another body is 409 and stores nothing."""
        body = await request.body()
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        batch = batch_id or None
        if kind in NDJSON_TYPES:
            summary = await run_in_threadpool(wb.ingest_ndjson, body, batch)
            return JSONOut(summary)
        head = strip_bom(body).lstrip(b" \t\r\n")[:1]
        if head != b"[":
            try:
                value = parse(strip_bom(body))
            except InvalidJSON as e:
                if e.rule in ("not_json", "not_utf8"):
                    raise InvalidRequest(
                        f"request body is not JSON ({str(e)[:120]}); send a JSON array of "
                        "events, or NDJSON with Content-Type: application/x-ndjson") from None
                value = {}  # JSON, but not I-JSON: one invalid arrival, stored as sent
            if not isinstance(value, dict):
                raise InvalidRequest("send a JSON array of events (or one event object), "
                                     f"not a bare {type(value).__name__}")
        return JSONOut(await run_in_threadpool(wb.ingest_json, body, batch))

    @app.get("/v1/audit", response_model=AuditPage, responses=common, tags=["audit"])
    def audit(exception_id: str | None = None, actor: str | None = None,
              tenant_id: str | None = None,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 200) -> Any:
        """Audit entries, newest first."""
        return JSONOut({"items": wb.audit(exception_id, actor, tenant_id, limit),
                        "next_cursor": None})

    @app.get("/v1/types", response_model=TypePage, responses=common, tags=["types"])
    def list_types(tenant_id: str | None = None) -> Any:
        """The allowlist: global entries plus the tenant's own."""
        return JSONOut({"items": wb.types(tenant_id), "next_cursor": None})

    @app.post("/v1/types", response_model=TypeChange, responses=common, tags=["types"])
    def add_type(body: TypeBody) -> Any:
        """Allow an event type globally or for one tenant (audited)."""
        return JSONOut(wb.add_type(body.event_type, body.tenant_id, body.actor, body.notes))

    @app.delete("/v1/types", response_model=TypeChange, responses={**common, 404: _ERR},
                tags=["types"])
    def remove_type(event_type: str, actor: str, tenant_id: str | None = None,
                    notes: str | None = None) -> Any:
        """Remove an allowlist entry (audited); a global type cannot be removed for one
        tenant."""
        return JSONOut(wb.remove_type(event_type, tenant_id, actor, notes))

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


def _snapshot_every(wb: Any, seconds: float, stop: threading.Event) -> None:
    """Record a health snapshot every ``seconds`` until ``stop`` is set (SPEC §8)."""
    while not stop.wait(seconds):
        try:
            wb.record_snapshot()
        except OpswbError as e:  # keep serving; the next tick tries again
            print(f"opswb serve: health snapshot failed: {e}", file=sys.stderr, flush=True)


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with opswb's own loggers (the 500s' tracebacks, api_gate.py)
    written where and as uvicorn writes its errors: stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["opswb"] = {"handlers": ["default"], "level": "INFO",
                                  "propagate": False}
    return config


def serve(db: str, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          max_body: int | None = None, snapshot_every: float | None = None) -> None:
    """Run the API server over ``db`` until interrupted; it holds the file meanwhile.

    ``snapshot_every`` (seconds, default ``OPSWB_SNAPSHOT_EVERY``, 0 = off) records health
    snapshots on a schedule, so the report's trend exists without cron.
    """
    import uvicorn

    from opswb.workbench.in_server import ServedWorkbench

    token = token or os.environ.get("OPSWB_API_TOKEN")
    if not token:
        token = secrets.token_urlsafe(32)
        print(f"opswb serve: no OPSWB_API_TOKEN set; generated token (shown once):\n"
              f"  OPSWB_API_TOKEN={token}", file=sys.stderr, flush=True)
    if max_body is None:
        max_body = int(os.environ.get("OPSWB_MAX_BODY", DEFAULT_MAX_BODY))
    if snapshot_every is None:
        snapshot_every = float(os.environ.get("OPSWB_SNAPSHOT_EVERY") or 0)
    wb = ServedWorkbench(db)
    stop = threading.Event()
    if snapshot_every > 0:
        threading.Thread(target=_snapshot_every, args=(wb, snapshot_every, stop),
                         daemon=True, name="opswb-snapshots").start()
    try:
        print(f"opswb serve: holding {db}; clients use --db http://{host}:{port}",
              file=sys.stderr, flush=True)
        uvicorn.run(create_app(wb, token, max_body), host=host, port=port,
                    log_level=os.environ.get("OPSWB_LOG_LEVEL", "info"),
                    log_config=_log_config())
    finally:
        stop.set()
        wb.close()


def _main(argv: list[str] | None = None) -> None:
    """``python -m opswb.api serve --db PATH`` or ``python -m opswb.api openapi [FILE]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m opswb.api")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--db", default=None)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)
    o = sub.add_parser("openapi")
    o.add_argument("out", nargs="?")
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        from opswb.store.config import default_db

        serve(args.db or default_db(), args.host, args.port)
        return
    text = json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    _main()

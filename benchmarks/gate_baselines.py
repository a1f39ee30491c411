"""The comparison servers of ``gate.py``, each run in a child process
(``gate.py --serve floor|sqlite|sqlite-full``) on the same FastAPI + uvicorn stack as
``opswb serve``."""

from __future__ import annotations

import json
import threading
from typing import Any

from fastapi import Request  # the handlers name these in annotations
from fastapi.responses import Response


def floor_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()
    answer = json.dumps({"received": 1, "processed": 1}).encode()

    @app.post("/v1/events")
    async def post_events(request: Request) -> Response:
        await request.body()
        return Response(answer, media_type="application/json")

    return app


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS raws (raw_id INTEGER PRIMARY KEY, text TEXT NOT NULL,
  tenant_id TEXT, idempotency_key TEXT, outcome TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (tenant_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
  state TEXT NOT NULL, fingerprint TEXT NOT NULL, PRIMARY KEY (tenant_id, idempotency_key))
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (delivery_id INTEGER PRIMARY KEY, raw_id INTEGER,
  tenant_id TEXT, idempotency_key TEXT, payload TEXT);
CREATE TABLE IF NOT EXISTS exceptions (exception_id INTEGER PRIMARY KEY, raw_id INTEGER,
  reason_code TEXT);
"""


def _store_one(con: Any, allow: set, text: bytes, ev: dict, fp: str) -> tuple[int, str]:
    """The §5 rules for one event in its own transaction: (raw id, outcome)."""
    import orjson

    tenant, key, etype = ev["tenant_id"], ev["idempotency_key"], ev["event_type"]
    con.execute("BEGIN")
    try:
        row = con.execute("SELECT state, fingerprint FROM keys WHERE tenant_id = ?"
                          " AND idempotency_key = ?", (tenant, key)).fetchone()
        if row is None:
            allowed = ("", etype) in allow or (tenant, etype) in allow
            outcome = "processed" if allowed else "exception_opened"
            con.execute("INSERT INTO keys VALUES (?, ?, ?, ?)", (
                tenant, key, "processed" if allowed else "quarantined", fp))
        elif row[0] == "quarantined":
            outcome = "attached"
        elif row[1] == fp:
            outcome = "duplicate"
        else:
            outcome = "exception_opened"
            con.execute("UPDATE keys SET state = 'quarantined' WHERE tenant_id = ?"
                        " AND idempotency_key = ?", (tenant, key))
        raw_id = con.execute("INSERT INTO raws (text, tenant_id, idempotency_key,"
                             " outcome) VALUES (?, ?, ?, ?)",
                             (text.decode(), tenant, key, outcome)).lastrowid
        if outcome == "processed":
            con.execute("INSERT INTO outbox (raw_id, tenant_id, idempotency_key,"
                        " payload) VALUES (?, ?, ?, ?)",
                        (raw_id, tenant, key, orjson.dumps(ev["payload"]).decode()))
        elif outcome == "exception_opened":
            con.execute("INSERT INTO exceptions (raw_id, reason_code) VALUES (?, ?)",
                        (raw_id, "CONFLICT_OR_UNKNOWN"))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return raw_id, outcome


def sqlite_app(db: str, synchronous: str = "NORMAL") -> Any:
    """One event per request, one transaction each, behind one lock; ``synchronous``
    FULL makes each commit wait for the WAL's fsync."""
    import hashlib
    import sqlite3

    import orjson
    from fastapi import FastAPI
    from fastapi.concurrency import run_in_threadpool

    from opswb.testing.reference import load_allowlist

    allow = load_allowlist()
    con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    con.executescript(_SQLITE_SCHEMA)
    lock = threading.Lock()

    def gate(text: bytes) -> dict:
        ev = orjson.loads(text)
        fp = hashlib.sha256(orjson.dumps({"event_type": ev["event_type"],
                                          "payload": ev["payload"]},
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()
        with lock:
            raw_id, outcome = _store_one(con, allow, text, ev, fp)
        return {"received": 1, "results": [{"raw_id": str(raw_id), "outcome": outcome}]}

    app = FastAPI()

    @app.post("/v1/events")
    async def post_events(request: Request) -> Response:
        body = await request.body()
        return Response(orjson.dumps(await run_in_threadpool(gate, body)),
                        media_type="application/json")

    return app


def serve_child(kind: str, port: int, db: str | None) -> None:
    import uvicorn

    app = (floor_app() if kind == "floor" else
           sqlite_app(str(db), "FULL" if kind == "sqlite-full" else "NORMAL"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")



"""The comparison servers of ``gate.py``, each run in a child process
(``gate.py --serve floor|sqlite|sqlite-full|duckdb``) on the same FastAPI + uvicorn
stack as ``opswb serve``."""

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


# The same tables in DuckDB: ids from sequences (no rowid), the key table's primary key
# an ART index for the lookup (as SQLite's WITHOUT ROWID key).
_DUCKDB_SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS raw_ids;
CREATE SEQUENCE IF NOT EXISTS delivery_ids;
CREATE SEQUENCE IF NOT EXISTS exception_ids;
CREATE TABLE IF NOT EXISTS raws (raw_id BIGINT DEFAULT nextval('raw_ids'), text VARCHAR
  NOT NULL, tenant_id VARCHAR, idempotency_key VARCHAR, outcome VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS keys (tenant_id VARCHAR NOT NULL, idempotency_key VARCHAR
  NOT NULL, state VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL,
  PRIMARY KEY (tenant_id, idempotency_key));
CREATE TABLE IF NOT EXISTS outbox (delivery_id BIGINT DEFAULT nextval('delivery_ids'),
  raw_id BIGINT, tenant_id VARCHAR, idempotency_key VARCHAR, payload VARCHAR);
CREATE TABLE IF NOT EXISTS exceptions (exception_id BIGINT DEFAULT
  nextval('exception_ids'), raw_id BIGINT, reason_code VARCHAR);
"""


def _store_one(con: Any, allow: set, text: bytes, ev: dict, fp: str,
               returning: bool = False) -> tuple[int, str]:
    """The §5 rules for one event in its own transaction: (raw id, outcome). The raw id
    is SQLite's ``lastrowid``, or with ``returning`` (DuckDB) the insert's answer."""
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
        cur = con.execute("INSERT INTO raws (text, tenant_id, idempotency_key, outcome)"
                          " VALUES (?, ?, ?, ?)" + (" RETURNING raw_id" if returning else ""),
                          (text.decode(), tenant, key, outcome))
        raw_id = cur.fetchone()[0] if returning else cur.lastrowid
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


def _connect(db: str, kind: str) -> Any:
    """The gate's connection: SQLite in WAL mode (``sqlite-full`` fsyncing each commit),
    or a DuckDB file (each commit waits for the WAL's fsync)."""
    if kind == "duckdb":
        import duckdb

        con = duckdb.connect(db)
        con.execute(_DUCKDB_SCHEMA)
        return con
    import sqlite3

    con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={'FULL' if kind == 'sqlite-full' else 'NORMAL'}")
    con.executescript(_SQLITE_SCHEMA)
    return con


def store_app(db: str, kind: str = "sqlite") -> Any:
    """One event per request, one transaction each, behind one lock, in SQLite (``kind``
    sqlite or sqlite-full) or DuckDB."""
    import hashlib

    import orjson
    from fastapi import FastAPI
    from fastapi.concurrency import run_in_threadpool

    from opswb.testing.reference import load_allowlist

    allow = load_allowlist()
    con = _connect(db, kind)
    lock = threading.Lock()

    def gate(text: bytes) -> dict:
        ev = orjson.loads(text)
        fp = hashlib.sha256(orjson.dumps({"event_type": ev["event_type"],
                                          "payload": ev["payload"]},
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()
        with lock:
            raw_id, outcome = _store_one(con, allow, text, ev, fp, kind == "duckdb")
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

    app = floor_app() if kind == "floor" else store_app(str(db), kind)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")



"""Small builders shared by the engine tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

TABLES = ("raw_events", "idempotency_keys", "key_activity", "exceptions", "deliveries", "audit_log",
          "event_types", "ingest_ledger", "counters")


def ev(key: str, payload: dict | None = None, event_type: str = "payment.captured",
       tenant: str = "acme", **extra: Any) -> dict:
    """An envelope; ``payload`` defaults to a small realistic one."""
    body = {"tenant_id": tenant, "idempotency_key": key, "event_type": event_type,
            "payload": {"amount": 1200, "currency": "EUR"} if payload is None else payload}
    body.update(extra)
    return body


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    """Write each item as a line: dicts as JSON, strings verbatim."""
    with open(path, "w", encoding="utf-8") as f:
        f.writelines((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    return path


def dump_store(db: str) -> dict:
    """Every row of every table, ordered: a store's whole state for before/after checks."""
    if db.startswith("postgresql://"):
        from tests.support.postgres import dump_database

        return dump_database(db)
    con = duckdb.connect(db, read_only=True)
    try:
        out = {}
        for t in TABLES:
            cols = [r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()]
            rows = con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            out[t] = [dict(zip(cols, r)) for r in rows]
        return out
    finally:
        con.close()


def observable_state(wb) -> dict:
    """What a client can see of a store through the API (works local and remote)."""
    page = wb.list_exceptions(status="all", limit=None)
    return {
        "health": {k: v for k, v in wb.health().items() if k != "oldest_open_age_seconds"},
        "exceptions": page["items"],
        "details": [wb.exception(e["exception_id"]) for e in page["items"]],
        "audit": wb.audit(),
    }


def run_async(coro):
    """``asyncio.run(coro)`` on a fresh thread: an earlier test (Playwright's sync API) may
    leave this thread inside a running event loop, where asyncio.run refuses to start."""
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()

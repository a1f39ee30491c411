"""Health figures (SPEC §8) and health snapshots. Reading health never writes."""

from __future__ import annotations

import duckdb

from opswb.core.fingerprint import dumps
from opswb.store.duckdb import queries as storage
from opswb.store.duckdb.connection import fetch_one


def health(con: duckdb.DuckDBPyConnection) -> dict:
    """The pinned figures plus breakdowns an operator wants at a glance."""
    raw_events = fetch_one(con.execute("SELECT value FROM counters WHERE name = 'raw'"))[0]
    states = dict(con.execute(
        "SELECT state, count(*) FROM idempotency_keys GROUP BY state").fetchall())
    by_reason = dict(con.execute(
        "SELECT reason_code, count(*) FROM exceptions WHERE status = 'open'"
        " GROUP BY reason_code ORDER BY reason_code").fetchall())
    by_tenant = dict(con.execute(
        "SELECT coalesce(tenant_id, '(none)'), count(*) FROM exceptions WHERE status = 'open'"
        " GROUP BY 1 ORDER BY 2 DESC, 1").fetchall())
    oldest = fetch_one(con.execute(
        "SELECT epoch(now() - min(created_at)) FROM exceptions WHERE status = 'open'"
    ))[0]
    today = dict(con.execute(
        "SELECT outcome, count(*) FROM raw_events"
        " WHERE received_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        " GROUP BY outcome").fetchall())
    return {
        "exceptions_open": int(sum(by_reason.values())),
        "raw_events": int(raw_events),
        "idempotency": {s: int(states.get(s, 0)) for s in ("processed", "quarantined", "ignored")},
        "open_by_reason": {k: int(v) for k, v in by_reason.items()},
        "open_by_tenant": {k: int(v) for k, v in by_tenant.items()},
        "oldest_open_age_seconds": round(float(oldest), 1) if oldest is not None else None,
        "arrivals_today": int(sum(today.values())),
        "duplicates_today": int(today.get("duplicates", 0)),
    }


def record_snapshot(con: duckdb.DuckDBPyConnection) -> dict:
    """Store the current health figures as a snapshot (for the trend); returns it."""
    h = health(con)
    con.execute(
        "INSERT INTO health_snapshots VALUES (now(), ?, ?, ?, ?, ?, ?)",
        [h["exceptions_open"], h["raw_events"], h["idempotency"]["processed"],
         h["idempotency"]["quarantined"], h["idempotency"]["ignored"], dumps(h)])
    return storage.snapshot_rows(con)[-1]

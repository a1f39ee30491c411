"""The DuckDB statements of decisions, the allowlist and health (SPEC §5, §7, §8).

Each runs inside the caller's transaction or snapshot; the engine decides what to write
(``opswb.engine.resolutions``, ``allowlist``, ``health``), these write or read it.
"""

from __future__ import annotations

from typing import Any

import duckdb

from opswb.core.fingerprint import dumps
from opswb.store.duckdb.connection import fetch_one
from opswb.store.duckdb.outbox import delivery_count
from opswb.store.duckdb.queries import raws_by_id

_KEY_COLUMNS = {"canonical_raw_id", "canonical_fingerprint", "override_patch",
                "delivery_count"}


def update_key(con: duckdb.DuckDBPyConnection, tenant_id: str, key: str, state: str,
               adjudicated: list[str] | None, open_exception_id: int | None,
               first_raw_id: int | None = None, **columns: Any) -> None:
    bad = set(columns) - _KEY_COLUMNS
    if bad:
        raise ValueError(f"not a key column: {', '.join(sorted(bad))}")
    if adjudicated is not None:
        columns = {"adjudicated_fingerprints": adjudicated, **columns}
    assignments = "".join(f", {k} = ?" for k in columns)
    # The key table is in first_raw_id order: with it, the update reads one row group.
    where = " AND first_raw_id = ?" if first_raw_id is not None else ""
    con.execute(
        "UPDATE idempotency_keys SET state = ?, open_exception_id = ?" + assignments
        + " WHERE tenant_id = ? AND idempotency_key = ?" + where,
        [state, open_exception_id, *columns.values(), tenant_id, key,
         *([first_raw_id] if first_raw_id is not None else [])])


def add_replay_delivery(con: duckdb.DuckDBPyConnection, tenant_id: str, key: str,
                        raw_id: int, event_type: str, payload_json: str, fingerprint: str,
                        exception_id: int) -> int:
    con.execute("UPDATE counters SET value = value + 1 WHERE name = 'delivery'")
    con.execute(
        "INSERT INTO deliveries SELECT (SELECT value FROM counters WHERE name = 'delivery'),"
        " ?, ?, ?, ?, ?, ?, true, ?, now()",
        [tenant_id, key, raw_id, event_type, payload_json, fingerprint, exception_id])
    return fetch_one(con.execute(
        "SELECT count(*) FROM deliveries WHERE tenant_id = ? AND idempotency_key = ?",
        [tenant_id, key]))[0]


def close_exception(con: duckdb.DuckDBPyConnection, exception_id: int, action: str,
                    actor: str, notes: str, canonical_raw_id: int | None,
                    patch_json: str | None, replayed: bool, outcome_json: str | None) -> None:
    con.execute(
        "UPDATE exceptions SET status = 'resolved', action = ?, actor = ?,"
        " resolution_notes = ?, canonical_raw_id = ?, override_patch = ?, resolved_at = now(),"
        " replay_attempts = replay_attempts + ?, replay_outcome = ? WHERE exception_id = ?",
        [action, actor, notes, canonical_raw_id, patch_json, 1 if replayed else 0,
         outcome_json, exception_id])


def reopen_exception(con: duckdb.DuckDBPyConnection, exception_id: int) -> None:
    con.execute(
        "UPDATE exceptions SET status = 'open', action = NULL, actor = NULL,"
        " resolution_notes = NULL, resolved_at = NULL WHERE exception_id = ?",
        [exception_id])


def last_differing_arrival(con: duckdb.DuckDBPyConnection, exception: dict, record: dict,
                           fingerprint: str | None) -> dict | None:
    """Attached raws lie between the opening raw and the key's last raw: the range keeps
    the lookup to the row groups that hold them."""
    row = fetch_one(con.execute(
        "SELECT max(raw_id) FROM raw_events WHERE raw_id BETWEEN ? AND ?"
        " AND exception_id = ? AND fingerprint IS DISTINCT FROM ?",
        [int(exception["raw_id"]), record["last_raw_id"], int(exception["exception_id"]),
         fingerprint]))
    if not row or row[0] is None:
        return None
    return raws_by_id(con, [row[0]]).get(str(row[0]))


# ---- allowlist ---------------------------------------------------------------------------

def has_type_entry(con: duckdb.DuckDBPyConnection, tenant_id: str, event_type: str) -> bool:
    return fetch_one(con.execute(
        "SELECT count(*) FROM event_types WHERE tenant_id = ? AND event_type = ?",
        [tenant_id, event_type]))[0] > 0


def add_type(con: duckdb.DuckDBPyConnection, tenant_id: str, event_type: str,
             actor: str) -> None:
    con.execute("INSERT OR IGNORE INTO event_types VALUES (?, ?, ?, now())",
                [tenant_id, event_type, actor])


def remove_type(con: duckdb.DuckDBPyConnection, tenant_id: str, event_type: str) -> None:
    con.execute("DELETE FROM event_types WHERE tenant_id = ? AND event_type = ?",
                [tenant_id, event_type])


# ---- health ------------------------------------------------------------------------------

def health_figures(con: duckdb.DuckDBPyConnection) -> dict:
    # counted, not the counter: a served store keeps that row ahead of the ids used
    raw_events = fetch_one(con.execute("SELECT count(*) FROM raw_events"))[0]
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
        "deliveries": delivery_count(con),
    }


def record_snapshot(con: duckdb.DuckDBPyConnection, h: dict) -> None:
    con.execute(
        "INSERT INTO health_snapshots VALUES (now(), ?, ?, ?, ?, ?, ?)",
        [h["exceptions_open"], h["raw_events"], h["idempotency"]["processed"],
         h["idempotency"]["quarantined"], h["idempotency"]["ignored"], dumps(h)])

"""The PostgreSQL statements of decisions, the allowlist and health (SPEC §5, §7, §8).

Each runs in the caller's transaction. A decision first locks the exception it decides
(``queries.exception_by_id(…, for_update=True)``) and then the key record: every writer
takes them in that order, and an ingest takes only key rows, so no two wait on each other.
"""

from __future__ import annotations

from typing import Any

from opswb.core.fingerprint import dumps
from opswb.store.postgres.queries import feed_lock, one, raws_by_id

_KEY_COLUMNS = {"canonical_raw_id", "canonical_fingerprint", "override_patch",
                "delivery_count"}


def update_key(con: Any, tenant_id: str, key: str, state: str, adjudicated: list[str] | None,
               open_exception_id: int | None, first_raw_id: int | None = None,
               **columns: Any) -> None:
    bad = set(columns) - _KEY_COLUMNS
    if bad:
        raise ValueError(f"not a key column: {', '.join(sorted(bad))}")
    if adjudicated is not None:
        columns = {"adjudicated_fingerprints": list(adjudicated), **columns}
    assignments = "".join(f", {k} = %s" for k in columns)
    con.execute("UPDATE idempotency_keys SET state = %s, open_exception_id = %s" + assignments
                + " WHERE tenant_id = %s AND idempotency_key = %s",
                [state, open_exception_id, *columns.values(), tenant_id, key])


def add_replay_delivery(con: Any, tenant_id: str, key: str, raw_id: int, event_type: str,
                        payload_json: str, fingerprint: str, exception_id: int) -> int:
    feed_lock(con)
    con.execute(
        "INSERT INTO deliveries (tenant_id, delivery_id, idempotency_key, raw_id, event_type,"
        " payload, fingerprint, is_replay, exception_id) VALUES"
        " (%s, nextval('delivery_id_seq'), %s, %s, %s, %s, %s, true, %s)",
        [tenant_id, key, raw_id, event_type, payload_json, fingerprint, exception_id])
    return one(con, "SELECT count(*) FROM deliveries WHERE tenant_id = %s"
                    " AND idempotency_key = %s", [tenant_id, key])[0]


def close_exception(con: Any, exception_id: int, action: str, actor: str, notes: str,
                    canonical_raw_id: int | None, patch_json: str | None, replayed: bool,
                    outcome_json: str | None) -> None:
    con.execute(
        "UPDATE exceptions SET status = 'resolved', action = %s, actor = %s,"
        " resolution_notes = %s, canonical_raw_id = %s, override_patch = %s,"
        " resolved_at = now(), replay_attempts = replay_attempts + %s, replay_outcome = %s"
        " WHERE exception_id = %s",
        [action, actor, notes, canonical_raw_id, patch_json, 1 if replayed else 0,
         outcome_json, exception_id])


def reopen_exception(con: Any, exception_id: int) -> None:
    con.execute("UPDATE exceptions SET status = 'open', action = NULL, actor = NULL,"
                " resolution_notes = NULL, resolved_at = NULL WHERE exception_id = %s",
                [exception_id])


def last_differing_arrival(con: Any, exception: dict, record: dict,
                           fingerprint: str | None) -> dict | None:
    row = one(con, "SELECT max(raw_id) FROM raw_events WHERE tenant_id = %s"
                   " AND exception_id = %s AND fingerprint IS DISTINCT FROM %s",
              [record["tenant_id"], int(exception["exception_id"]), fingerprint])
    if not row or row[0] is None:
        return None
    return raws_by_id(con, [row[0]]).get(str(row[0]))


# ---- allowlist ---------------------------------------------------------------------------

def has_type_entry(con: Any, tenant_id: str, event_type: str) -> bool:
    return one(con, "SELECT count(*) FROM event_types WHERE tenant_id = %s"
                    " AND event_type = %s", [tenant_id, event_type])[0] > 0


def add_type(con: Any, tenant_id: str, event_type: str, actor: str) -> None:
    con.execute("INSERT INTO event_types (tenant_id, event_type, added_by) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING", [tenant_id, event_type, actor])


def remove_type(con: Any, tenant_id: str, event_type: str) -> None:
    con.execute("DELETE FROM event_types WHERE tenant_id = %s AND event_type = %s",
                [tenant_id, event_type])


# ---- health ------------------------------------------------------------------------------

def health_figures(con: Any) -> dict:
    raw_events = one(con, "SELECT count(*) FROM raw_events")[0]
    states = dict(con.execute(
        "SELECT state, count(*) FROM idempotency_keys GROUP BY state").fetchall())
    by_reason = dict(con.execute(
        "SELECT reason_code, count(*) FROM exceptions WHERE status = 'open'"
        " GROUP BY reason_code ORDER BY reason_code").fetchall())
    by_tenant = dict(con.execute(
        "SELECT coalesce(nullif(tenant_id, ''), '(none)'), count(*) FROM exceptions"
        " WHERE status = 'open' GROUP BY 1 ORDER BY 2 DESC, 1").fetchall())
    oldest = one(con, "SELECT extract(epoch FROM now() - min(created_at)) FROM exceptions"
                      " WHERE status = 'open'")[0]
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
        "deliveries": int(one(con, "SELECT count(*) FROM deliveries")[0]),
    }


def record_snapshot(con: Any, h: dict) -> None:
    con.execute(
        "INSERT INTO health_snapshots (exceptions_open, raw_events, processed, quarantined,"
        " ignored, body) VALUES (%s, %s, %s, %s, %s, %s)",
        [h["exceptions_open"], h["raw_events"], h["idempotency"]["processed"],
         h["idempotency"]["quarantined"], h["idempotency"]["ignored"], dumps(h)])

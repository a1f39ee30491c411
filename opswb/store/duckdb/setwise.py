"""The DuckDB statements of a set-wise group decision (``opswb.engine.setwise``).

A batch of a thousand decisions is a handful of statements: the rows a statement needs
are registered as an Arrow table and joined (``UPDATE … FROM``, ``INSERT … SELECT``);
the lists of ids are literal ``IN`` lists, which DuckDB prunes to the row groups holding
them. Each runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from opswb.core.auditchain import entry_hash, epoch_us
from opswb.core.records import KEY_FIELDS
from opswb.store.duckdb.connection import fetch_one
from opswb.store.duckdb.queries import (
    _EX_SELECT,
    RAW_PAYLOAD,
    _rows,
    raw_fingerprints,
    remember_fingerprints,
)

_CHUNK = 1000


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, pa.Array]
                ) -> Iterator[None]:
    con.register(name, pa.table(columns))
    try:
        yield
    finally:
        con.unregister(name)


def _in_list(ids: list[int]) -> str:
    return "(" + ", ".join("?" * len(ids)) + ")"


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


def exceptions_by_ids(con: duckdb.DuckDBPyConnection, ids: list[int],
                      for_update: bool = False) -> dict[int, dict]:
    """By id. (One writer holds a DuckDB file at a time: nothing to lock.)"""
    out: dict[int, dict] = {}
    for part in _chunks(sorted(set(ids))):
        for r in _rows(con.execute(_EX_SELECT + " WHERE exception_id IN " + _in_list(part),
                                   part)):
            out[int(r["exception_id"])] = r
    return out


def key_records_of(con: duckdb.DuckDBPyConnection, exceptions: list[dict],
                   for_update: bool = False) -> dict[int, dict]:
    """The key records by exception id, found by where each key began (sql/0006)."""
    ids = [int(e["exception_id"]) for e in exceptions
           if e["tenant_id"] is not None and e["idempotency_key"] is not None]
    out: dict[int, dict] = {}
    for part in _chunks(ids):
        cur = con.execute(
            "SELECT e.exception_id, " + ", ".join(f"k.{f}" for f in KEY_FIELDS)
            + ", k.open_exception_id, k.first_exception_raw_id FROM exceptions e"
            " JOIN key_records k ON k.tenant_id = e.tenant_id"
            " AND k.idempotency_key = e.idempotency_key"
            " AND (e.key_first_raw_id IS NULL OR k.first_raw_id = e.key_first_raw_id)"
            " WHERE e.exception_id IN " + _in_list(part), part)
        names = [d[0] for d in cur.description]
        for row in cur.fetchall():
            rec = dict(zip(names, row))
            out[int(rec.pop("exception_id"))] = rec
    _fill_fingerprints(con, list(out.values()))
    return out


def _fill_fingerprints(con: duckdb.DuckDBPyConnection, recs: list[dict]) -> None:
    """``queries._fill_key_fingerprint`` for many records, in one read."""
    lazy = [r for r in recs if r["canonical_fingerprint"] is None
            and r["canonical_raw_id"] is not None]
    fps = raw_fingerprints(con, [r["canonical_raw_id"] for r in lazy]) if lazy else {}
    for r in lazy:
        fp = fps.get(r["canonical_raw_id"])
        if fp is not None:
            r["canonical_fingerprint"] = fp
            if fp not in r["adjudicated_fingerprints"]:
                r["adjudicated_fingerprints"] = [*r["adjudicated_fingerprints"], fp]


def fingerprints_of_exceptions(con: duckdb.DuckDBPyConnection,
                               spans: dict[int, tuple[int, int]]) -> dict[int, list[str]]:
    out: dict[int, set[str]] = {i: set() for i in spans}
    missing: dict[int, int] = {}
    for part in _chunks(sorted(spans)):
        low = min(spans[i][0] for i in part)
        high = max(spans[i][1] for i in part)
        for ex_id, raw_id, fp in con.execute(
                "SELECT exception_id, raw_id, fingerprint FROM raw_events WHERE raw_id"
                " BETWEEN ? AND ? AND valid AND exception_id IN " + _in_list(part),
                [low, high, *part]).fetchall():
            if fp is None:
                missing[raw_id] = ex_id
            else:
                out[ex_id].add(fp)
    computed = raw_fingerprints(con, list(missing)) if missing else {}
    remember_fingerprints(con, computed)
    for raw_id, fp in computed.items():
        out[missing[raw_id]].add(fp)
    return {i: sorted(fps) for i, fps in out.items()}


def raw_rows(con: duckdb.DuckDBPyConnection, raw_ids: list[int]) -> dict[int, dict]:
    """Raws with their internal columns (``queries.raw_row``), by id."""
    out: dict[int, dict] = {}
    for part in _chunks(sorted({int(i) for i in raw_ids})):
        cur = con.execute(f"SELECT * REPLACE ({RAW_PAYLOAD} AS payload) FROM raw_events"
                          " WHERE raw_id IN " + _in_list(part), part)
        names = [d[0] for d in cur.description]
        out.update({row[0]: dict(zip(names, row)) for row in cur.fetchall()})
    return out


def last_differing_arrivals(con: duckdb.DuckDBPyConnection,
                            items: dict[int, tuple[int, int, str | None]]) -> dict[int, int]:
    if not items:
        return {}
    ids = list(items)
    with _registered(con, "_last_in", {
            "exception_id": pa.array(ids, pa.int64()),
            "fp": pa.array([items[i][2] for i in ids], pa.string())}):
        found = con.execute(
            "SELECT r.exception_id, max(r.raw_id) FROM raw_events r JOIN _last_in i"
            " ON r.exception_id = i.exception_id WHERE r.raw_id BETWEEN ? AND ?"
            " AND r.fingerprint IS DISTINCT FROM i.fp GROUP BY 1",
            [min(v[0] for v in items.values()), max(v[1] for v in items.values())]).fetchall()
    return {int(e): int(r) for e, r in found}


def update_keys(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    if not rows:
        return
    cols = {"tenant_id": pa.string(), "idempotency_key": pa.string(),
            "first_raw_id": pa.int64(), "state": pa.string(),
            "adjudicated_fingerprints": pa.list_(pa.string()), "canonical_raw_id": pa.int64(),
            "canonical_fingerprint": pa.string(), "override_patch": pa.string(),
            "delivery_count": pa.int64()}
    with _registered(con, "_keys_in", {c: pa.array([r[c] for r in rows], t)
                                       for c, t in cols.items()}):
        con.execute(
            "UPDATE idempotency_keys AS k SET state = v.state, open_exception_id = NULL,"
            " adjudicated_fingerprints = v.adjudicated_fingerprints,"
            " canonical_raw_id = v.canonical_raw_id,"
            " canonical_fingerprint = v.canonical_fingerprint,"
            " override_patch = v.override_patch, delivery_count = v.delivery_count"
            " FROM _keys_in v WHERE k.tenant_id = v.tenant_id"
            " AND k.idempotency_key = v.idempotency_key AND k.first_raw_id = v.first_raw_id")


def close_exceptions(con: duckdb.DuckDBPyConnection, rows: list[dict], action: str,
                     actor: str, notes: str, replayed: bool) -> None:
    if not rows:
        return
    with _registered(con, "_close_in", {
            "exception_id": pa.array([r["exception_id"] for r in rows], pa.int64()),
            "canonical_raw_id": pa.array([r["canonical_raw_id"] for r in rows], pa.int64()),
            "override_patch": pa.array([r["override_patch"] for r in rows], pa.string())}):
        con.execute(
            "UPDATE exceptions AS e SET status = 'resolved', action = ?, actor = ?,"
            " resolution_notes = ?, canonical_raw_id = v.canonical_raw_id,"
            " override_patch = v.override_patch, resolved_at = now(),"
            " replay_attempts = e.replay_attempts + ?, replay_outcome = NULL, pending = NULL"
            " FROM _close_in v WHERE e.exception_id = v.exception_id",
            [action, actor, notes, 1 if replayed else 0])


def _take_ids(con: duckdb.DuckDBPyConnection, counter: str, n: int) -> int:
    """Hand out ``n`` ids of ``counter`` in this transaction; returns the first."""
    con.execute("UPDATE counters SET value = value + ? WHERE name = ?", [n, counter])
    return fetch_one(con.execute("SELECT value FROM counters WHERE name = ?",
                                 [counter]))[0] - n + 1


def add_replay_deliveries(con: duckdb.DuckDBPyConnection,
                          rows: list[dict]) -> dict[tuple[str, str], int]:
    if not rows:
        return {}
    first = _take_ids(con, "delivery", len(rows))
    cols = {"delivery_id": pa.int64(), "tenant_id": pa.string(),
            "idempotency_key": pa.string(), "raw_id": pa.int64(), "event_type": pa.string(),
            "payload": pa.string(), "fingerprint": pa.string(), "exception_id": pa.int64()}
    rows = [dict(r, delivery_id=first + n) for n, r in enumerate(rows)]
    with _registered(con, "_deliveries_in", {c: pa.array([r[c] for r in rows], t)
                                             for c, t in cols.items()}):
        con.execute(
            "INSERT INTO deliveries SELECT delivery_id, tenant_id, idempotency_key, raw_id,"
            " event_type, payload, fingerprint, true, exception_id, now()"
            " FROM _deliveries_in ORDER BY delivery_id")
        found = con.execute(
            "SELECT d.tenant_id, d.idempotency_key, count(*) FROM deliveries d"
            " SEMI JOIN _deliveries_in i ON d.tenant_id = i.tenant_id"
            " AND d.idempotency_key = i.idempotency_key GROUP BY 1, 2").fetchall()
    return {(t, k): int(n) for t, k, n in found}


_AUDIT_COLUMNS = ("audit_id", "created_at", "actor", "action", "exception_id", "tenant_id",
                  "idempotency_key", "state_before", "state_after", "notes",
                  "canonical_raw_id", "override_patch", "details", "prev_hash", "entry_hash")
_AUDIT_INTS = {"audit_id", "exception_id", "canonical_raw_id"}


def write_audits(con: duckdb.DuckDBPyConnection, entries: list[dict]) -> None:
    """Append the entries chained in order (``queries.write_audit``, set-wise)."""
    if not entries:
        return
    first = _take_ids(con, "audit", len(entries))
    at = datetime.now(UTC)
    prev = fetch_one(con.execute("SELECT head_hash FROM audit_chain"))[0]
    rows: list[dict[str, Any]] = []
    for n, entry in enumerate(entries):
        fields = {"audit_id": first + n, "at_us": epoch_us(at), **entry}
        digest = entry_hash(fields, prev)
        rows.append({**fields, "created_at": at, "prev_hash": prev, "entry_hash": digest})
        prev = digest
    table = {c: pa.array([r.get(c) for r in rows],
                         pa.int64() if c in _AUDIT_INTS else pa.timestamp("us", tz="UTC")
                         if c == "created_at" else pa.string())
             for c in _AUDIT_COLUMNS}
    with _registered(con, "_audit_in", table):
        con.execute("INSERT INTO audit_log (" + ", ".join(_AUDIT_COLUMNS) + ") SELECT "
                    + ", ".join(_AUDIT_COLUMNS) + " FROM _audit_in ORDER BY audit_id")
    con.execute("UPDATE audit_chain SET head_id = ?, head_hash = ?", [first + len(rows) - 1,
                                                                        prev])

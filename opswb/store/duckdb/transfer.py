"""A whole DuckDB store out and in, in ``store.transfer``'s neutral form (SPEC §14 copy).

Out: the large tables page by ranges of their id (raws, key records by their first raw,
exceptions, deliveries, audit entries): each page reads only the row groups its range
touches, so a million rows never sit in memory at once. A raw carries the fingerprint
computed after it was stored (``raw_fingerprints``) when its own column has none; a key
record is ``key_records`` (its later arrivals counted in). In: each chunk is handed to
DuckDB as an Arrow table and inserted set-wise; ``counters`` follow the largest ids.
"""

from __future__ import annotations

from collections.abc import Generator

import duckdb
import pyarrow as pa

from opswb.store.duckdb.connection import fetch_one
from opswb.store.transfer import REPLACED, TABLES

# Tables read a page of ids at a time: (relation, id column).
_PAGED = {
    "raw_events": ("raw_events", "raw_id"),
    "idempotency_keys": ("key_records", "first_raw_id"),
    "exceptions": ("exceptions", "exception_id"),
    "deliveries": ("deliveries", "delivery_id"),
    "audit_log": ("audit_log", "audit_id"),
}
# Columns read as an expression rather than as stored.
_EXPRESSIONS = {
    ("raw_events", "fingerprint"): (
        "coalesce(fingerprint, (SELECT any_value(f.fingerprint) FROM raw_fingerprints f"
        " WHERE f.raw_id = raw_events.raw_id)) AS fingerprint"),
}
_ORDER = {
    "exception_comments": "created_at, exception_id",
    "event_types": "tenant_id, event_type",
    "approval_policies": "tenant_id, action",
    "api_tokens": "name",
    "ingest_ledger": "committed_at, origin, chunk_no",
    "ingest_batches": "committed_at, batch_id",
    "health_snapshots": "taken_at",
    "audit_chain": "chain_start",
}
# The counter each id column feeds (where the next id starts).
_COUNTERS = {"raw": ("raw_events", "raw_id"), "exception": ("exceptions", "exception_id"),
             "delivery": ("deliveries", "delivery_id"), "audit": ("audit_log", "audit_id")}


def export_rows(con: duckdb.DuckDBPyConnection, table: str,
                chunk_rows: int) -> Generator[list[tuple], None, None]:
    cols = ", ".join(_EXPRESSIONS.get((table, c), c) for c in TABLES[table])
    if table not in _PAGED:
        rows = con.execute(f"SELECT {cols} FROM {table} ORDER BY {_ORDER[table]}").fetchall()
        for i in range(0, len(rows), chunk_rows):
            yield rows[i:i + chunk_rows]
        return
    source, id_col = _PAGED[table]
    top = fetch_one(con.execute(f"SELECT max({id_col}) FROM {source}"))[0]
    lo = 0
    while top is not None and lo <= top:
        hi = lo + chunk_rows - 1
        rows = con.execute(f"SELECT {cols} FROM {source} WHERE {id_col} BETWEEN ? AND ?"
                           f" ORDER BY {id_col}", [lo, hi]).fetchall()
        if rows:
            yield rows
        lo = hi + 1


def import_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple],
                replaced: set[str]) -> None:
    names = TABLES[table]
    if table in REPLACED and table not in replaced:
        con.execute(f"DELETE FROM {table}")
        replaced.add(table)
    if not rows:
        return
    columns = list(zip(*rows))
    chunk = pa.table({n: pa.array(list(c)) for n, c in zip(names, columns)})
    con.register("_copy_in", chunk)
    try:
        cols = ", ".join(names)
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _copy_in")
    finally:
        con.unregister("_copy_in")


def finish_import(con: duckdb.DuckDBPyConnection) -> None:
    for name, (table, id_col) in _COUNTERS.items():
        con.execute(f"UPDATE counters SET value = greatest(value, (SELECT coalesce(max("
                    f"{id_col}), 0) FROM {table})) WHERE name = ?", [name])

"""A whole PostgreSQL store out and in, in ``store.transfer``'s neutral form (SPEC §14
copy).

Out: each table through a server-side cursor inside the read snapshot (rows stream in
chunks; the large tables in the order of their id index). Tenant-less rows, stored under
tenant '', travel with tenant None; a raw's exact text is ``text_bytes`` where PostgreSQL
text could not hold it. In: ``COPY … FROM STDIN`` per chunk (a comment takes its
exception's tenant); the sequences then continue after the largest ids.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from opswb.store.postgres.text import storable
from opswb.store.transfer import REPLACED, TABLES

_TENANT_LESS = {"raw_events", "exceptions", "audit_log", "deliveries", "idempotency_keys"}
_ORDER = {
    "raw_events": "raw_id", "idempotency_keys": "first_raw_id",
    "exceptions": "exception_id", "exception_comments": "comment_id",
    "deliveries": "delivery_id", "audit_log": "audit_id", "audit_chain": "chain_start",
    "event_types": "tenant_id, event_type", "approval_policies": "tenant_id, action",
    "api_tokens": "name", "ingest_ledger": "committed_at, origin, chunk_no",
    "ingest_batches": "committed_at, batch_id", "health_snapshots": "taken_at",
}
_SEQUENCES = {"raw_id_seq": ("raw_events", "raw_id"),
              "exception_id_seq": ("exceptions", "exception_id"),
              "delivery_id_seq": ("deliveries", "delivery_id"),
              "audit_id_seq": ("audit_log", "audit_id")}


def _select(table: str) -> str:
    cols = ["nullif(tenant_id, '') AS tenant_id"
            if c == "tenant_id" and table in _TENANT_LESS else c for c in TABLES[table]]
    if table == "raw_events":
        cols.append("text_bytes")
    return f"SELECT {', '.join(cols)} FROM {table} ORDER BY {_ORDER[table]}"


def export_rows(con: Any, table: str, chunk_rows: int) -> Generator[list[tuple], None, None]:
    text_at = TABLES["raw_events"].index("text")
    with con.cursor(name=f"opswb_copy_{table}") as cur:
        cur.itersize = chunk_rows
        cur.execute(_select(table))
        while rows := cur.fetchmany(chunk_rows):
            if table == "raw_events":
                rows = [r[:text_at] + (r[text_at] if r[-1] is None else
                                       bytes(r[-1]).decode("utf-8", "surrogatepass"),)
                        + r[text_at + 1:-1] for r in rows]
            yield rows


def _stored(table: str, row: tuple) -> tuple:
    """A neutral row as this store keeps it: tenant '' for none; a raw's text as text
    can hold it, with its exact bytes beside it when that changed it."""
    names = TABLES[table]
    if table in _TENANT_LESS:
        at = names.index("tenant_id")
        row = row[:at] + (row[at] or "",) + row[at + 1:]
    if table == "raw_events":
        text = row[names.index("text")]
        exact = None if storable(text) == text else text.encode("utf-8", "surrogatepass")
        row = row + (exact,)
    return row


def import_rows(con: Any, table: str, rows: list[tuple], replaced: set[str]) -> None:
    if table in REPLACED and table not in replaced:
        con.execute(f"DELETE FROM {table}")
        replaced.add(table)
    if not rows:
        return
    names = TABLES[table]
    if table == "exception_comments":
        with con.cursor() as cur:
            cur.executemany(
                "INSERT INTO exception_comments (tenant_id, exception_id, author, text,"
                " created_at) SELECT tenant_id, exception_id, %s, %s, %s FROM exceptions"
                " WHERE exception_id = %s", [(a, t, at, e) for e, a, t, at in rows])
        return
    cols = ", ".join(names) + (", text_bytes" if table == "raw_events" else "")
    with con.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(_stored(table, row))


def finish_import(con: Any) -> None:
    for seq, (table, id_col) in _SEQUENCES.items():
        top = con.execute(f"SELECT max({id_col}) FROM {table}").fetchone()[0]
        if top is not None:
            con.execute("SELECT setval(%s, greatest(%s, (SELECT last_value FROM "
                        + seq + ")), true)", [seq, top])

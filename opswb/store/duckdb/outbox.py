"""The outbox as downstream consumers read it (SPEC §9 ``GET /v1/deliveries``).

Why a reader that follows the last delivery id it saw never skips one: the file has one
writing transaction at a time (one process holds it, SPEC §13, and inside it
``connection.write_lock`` serialises writers, the server's included), and each takes its
delivery ids inside that transaction, from the ``counters`` table or, in serve mode, from
the held store's ``gatecache.GateCache``, which hands them out in the same order and keeps
the row at or ahead of them. So a transaction that commits later holds only larger ids
than every one committed before it: commit order is id order. A snapshot shows the
commits made before it began, so the ids it shows are all the ids up to the counter it
shows, less the gaps (ids that never became a delivery, see
``classify._INSERT_DELIVERIES``, and a served store's unused reserve), and no delivery can
later appear below them. A page ends at its last delivery, behind which nothing will
ever be added.

Ordinary deliveries point at their raw for the event (a bulk-loaded raw keeps its
payload inside its text); replays carry their own patched event. Delivery ids are
written in increasing order, so DuckDB's row-group min/max skip everything outside a
range of ids: a page reads windows of ids after the cursor, widening until it is full
or the counter is reached, and then exactly the raws its rows name.
"""

from __future__ import annotations

import duckdb

from opswb.core.records import out_value
from opswb.store.duckdb.connection import fetch_one
from opswb.store.duckdb.queries import RAW_PAYLOAD

FIRST_WINDOW = 4096  # ids; a window grows fourfold until the page is full

_COLUMNS = ("delivery_id", "tenant_id", "idempotency_key", "event_type", "payload",
            "raw_id", "is_replay", "exception_id", "delivered_at")


def deliveries_after(con: duckdb.DuckDBPyConnection, after_id: int, tenant_id: str | None,
                     limit: int) -> list[dict]:
    """Up to ``limit`` deliveries after ``after_id`` (of ``tenant_id`` if given), in
    delivery order, in API form (``store.base.Session.deliveries_after``)."""
    top = fetch_one(con.execute("SELECT value FROM counters WHERE name = 'delivery'"))[0]
    rows: list[tuple] = []
    lo, span = after_id, max(FIRST_WINDOW, 2 * limit)
    while len(rows) < limit and lo < top:
        hi = min(lo + span, top)
        rows += _window(con, lo, hi, tenant_id, limit - len(rows))
        lo, span = hi, span * 4
    raws = _raw_events(con, sorted({r[5] for r in rows if r[4] is None}))
    return [_item(r, raws) for r in rows]


def _window(con: duckdb.DuckDBPyConnection, lo: int, hi: int, tenant_id: str | None,
            limit: int) -> list[tuple]:
    sql = ("SELECT " + ", ".join(_COLUMNS) + " FROM deliveries"
           " WHERE delivery_id > ? AND delivery_id <= ?")
    params: list = [lo, hi]
    if tenant_id is not None:
        sql += " AND tenant_id = ?"
        params.append(tenant_id)
    return con.execute(sql + " ORDER BY delivery_id LIMIT ?", [*params, limit]).fetchall()


def _raw_events(con: duckdb.DuckDBPyConnection,
                raw_ids: list[int]) -> dict[int, tuple[str | None, str | None, int | None]]:
    """``raw_id -> (event_type, payload JSON text, replay_of)`` of these raws only: the
    id range bounds the row groups read, the list the rows whose text is parsed."""
    if not raw_ids:
        return {}
    # One list parameter, not an IN list of a thousand: binding those cost ~5x the read.
    rows = con.execute(
        f"SELECT raw_id, event_type, {RAW_PAYLOAD} AS payload, replay_of FROM raw_events"
        " WHERE raw_id BETWEEN ? AND ? AND list_contains(?, raw_id)",
        [raw_ids[0], raw_ids[-1], raw_ids]).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _item(row: tuple, raws: dict) -> dict:
    d = dict(zip(_COLUMNS, row))
    replay_of = None
    if d["payload"] is None:  # an arrival's delivery: the event is its raw's
        d["event_type"], d["payload"], replay_of = raws.get(d["raw_id"], (None, None, None))
    exception_id = d["exception_id"] if d["exception_id"] is not None else replay_of
    return {
        "delivery_id": out_value("delivery_id", d["delivery_id"]),
        "tenant_id": d["tenant_id"],
        "idempotency_key": d["idempotency_key"],
        "event_type": d["event_type"],
        "payload": out_value("payload", d["payload"]),
        "raw_id": out_value("raw_id", d["raw_id"]),
        "replay": bool(d["is_replay"]) or replay_of is not None,
        "exception_id": out_value("exception_id", exception_id),
        "delivered_at": out_value("delivered_at", d["delivered_at"]),
    }


def delivery_count(con: duckdb.DuckDBPyConnection) -> int:
    """How many deliveries the outbox holds (health, SPEC §8)."""
    return int(fetch_one(con.execute("SELECT count(*) FROM deliveries"))[0])

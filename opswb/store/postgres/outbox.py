"""The outbox as downstream consumers read it on PostgreSQL (SPEC §9 ``GET
/v1/deliveries``), as on DuckDB (``store/duckdb/outbox.py``).

Why a reader that follows the last delivery id it saw never skips one: every
transaction that hands out delivery ids (a chunk's deliveries, a replay) first takes one
transaction-scoped advisory lock (``queries.feed_lock``) and draws its ids from the
sequence under it, so the transaction that commits later holds only larger ids than
every one committed before it, whichever of several processes wrote them. A snapshot
then shows all ids up to some point, and none can later appear below them. A page is
one range scan on the delivery id (its index), joined with exactly the raws it names.
"""

from __future__ import annotations

from typing import Any

from opswb.core.records import out_value
from opswb.store.postgres.queries import PAYLOAD_OF, tenant_out

_PAGE = f"""
SELECT d.delivery_id, d.tenant_id, d.idempotency_key,
       coalesce(d.event_type, r.event_type) AS event_type,
       coalesce(d.payload, {PAYLOAD_OF.format(s="r.")}) AS payload,
       d.raw_id, d.is_replay, coalesce(d.exception_id, r.replay_of) AS exception_id,
       r.replay_of, d.delivered_at
FROM (SELECT * FROM deliveries WHERE delivery_id > %s {{tenant}}
      ORDER BY delivery_id LIMIT %s) d
LEFT JOIN raw_events r ON r.tenant_id = d.tenant_id AND r.raw_id = d.raw_id
ORDER BY d.delivery_id
"""


def deliveries_after(con: Any, after_id: int, tenant_id: str | None,
                     limit: int) -> list[dict]:
    """Up to ``limit`` deliveries after ``after_id`` (of ``tenant_id`` if given), in
    delivery order, in API form (``store.base.Session.deliveries_after``)."""
    if tenant_id is not None:
        cur = con.execute(_PAGE.format(tenant="AND tenant_id = %s"),
                          [after_id, tenant_id, limit])
    else:
        cur = con.execute(_PAGE.format(tenant=""), [after_id, limit])
    names = [d.name for d in cur.description]
    return [_item(dict(zip(names, row))) for row in cur.fetchall()]


def _item(d: dict) -> dict:
    return {
        "delivery_id": out_value("delivery_id", d["delivery_id"]),
        "tenant_id": tenant_out(d["tenant_id"]),
        "idempotency_key": d["idempotency_key"],
        "event_type": d["event_type"],
        "payload": out_value("payload", d["payload"]),
        "raw_id": out_value("raw_id", d["raw_id"]),
        "replay": bool(d["is_replay"]) or d["replay_of"] is not None,
        "exception_id": out_value("exception_id", d["exception_id"]),
        "delivered_at": out_value("delivered_at", d["delivered_at"]),
    }

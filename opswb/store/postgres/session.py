"""The PostgreSQL session: ``store.base.Session`` over one psycopg connection.

Each method is one statement or a few, kept in ``queries`` (reads and small writes),
``classify`` (storing a chunk, SPEC §5 as SQL) and ``decisions`` (resolutions, the
allowlist, health); ``store.bound.BoundSession`` binds them to its connection; this
class adds what differs. In a write session (``for_update``) reading an exception or a
key record locks it until the transaction ends: of concurrent decisions on one exception
the first wins and the others then read it resolved (SPEC §7: 409), and an ingest of the
key waits for the decision.
"""

from __future__ import annotations

from typing import Any

from opswb.store.base import Summary
from opswb.store.bound import BoundSession
from opswb.store.postgres import classify, decisions, groups, outbox, queries, setwise, transfer
from opswb.store.postgres.identity import PostgresIdentity


class PostgresSession(PostgresIdentity, BoundSession):
    """The statements of one snapshot or transaction on ``con``."""

    _transfer = transfer
    _queries, _decisions, _groups, _outbox = queries, decisions, groups, outbox

    def __init__(self, con: Any, for_update: bool = False) -> None:
        self.con = con
        self.setwise = setwise
        self.for_update = for_update
        self._replaced: set[str] = set()  # tables a copy has replaced the rows of

    # ---- storing arrivals -------------------------------------------------------------
    def store_arrivals(self, rows: Any, origin: str | list[str] | None, *,
                       replay_of: int | None = None, with_outcomes: bool = False,
                       cache: Any = None) -> tuple[Summary, list[dict]]:
        return classify.store_chunk(self.con, rows, origin, replay_of=replay_of,
                                    with_outcomes=with_outcomes)

    # ---- the reads that differ (on PostgreSQL a write session locks what it reads) --
    def key_record(self, tenant_id: str | None, idempotency_key: str | None,
                   exception_id: int | None = None) -> dict | None:
        return queries.key_record(self.con, tenant_id, idempotency_key, self.for_update)

    def exception_by_id(self, exception_id: int) -> dict | None:
        return queries.exception_by_id(self.con, exception_id, self.for_update)

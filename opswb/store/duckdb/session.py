"""The DuckDB session: ``store.base.Session`` over one DuckDB connection or cursor.

Each method is one statement or a few, kept in ``queries`` (reads and small writes),
``classify`` (storing a chunk, SPEC §5 as SQL) and ``decisions`` (resolutions, the
allowlist, health); ``store.bound.BoundSession`` binds them to its connection; this
class adds what differs.
"""

from __future__ import annotations

from typing import Any

import duckdb

from opswb.store.base import Summary
from opswb.store.bound import BoundSession
from opswb.store.duckdb import classify, decisions, groups, outbox, queries, setwise, transfer
from opswb.store.duckdb.gatecache import GateCache
from opswb.store.duckdb.identity import DuckDBIdentity


class DuckDBSession(DuckDBIdentity, BoundSession):
    """The statements of one snapshot or transaction on ``con``."""

    _transfer = transfer
    _queries, _decisions, _groups, _outbox = queries, decisions, groups, outbox

    def __init__(self, con: duckdb.DuckDBPyConnection, gate: GateCache | None = None) -> None:
        self.con = con
        self.gate = gate  # the held store's small-path cache, in its grouped writes
        self._replaced: set[str] = set()  # tables a copy has replaced the rows of
        self.setwise = setwise

    # ---- storing arrivals -------------------------------------------------------------
    def store_arrivals(self, rows: Any, origin: str | list[str] | None, *,
                       replay_of: int | None = None, with_outcomes: bool = False,
                       cache: Any = None) -> tuple[Summary, list[dict]]:
        return classify.store_chunk(self.con, rows, origin, replay_of=replay_of,
                                    with_outcomes=with_outcomes, recent=cache,
                                    gate=self.gate)

    # ---- the reads that differ (on PostgreSQL a write session locks what it reads) --
    def key_record(self, tenant_id: str | None, idempotency_key: str | None,
                   exception_id: int | None = None) -> dict | None:
        return queries.key_record(self.con, tenant_id, idempotency_key, exception_id)

    def exception_by_id(self, exception_id: int) -> dict | None:
        return queries.exception_by_id(self.con, exception_id)

"""The DuckDB session: ``store.base.Session`` over one DuckDB connection or cursor.

Each method is one statement or a few, kept in ``queries`` (reads and small writes),
``classify`` (storing a chunk, SPEC §5 as SQL) and ``decisions`` (resolutions, the
allowlist, health); this class only binds them to its connection.
"""

from __future__ import annotations

from typing import Any

import duckdb

from opswb.store.base import Session, Summary
from opswb.store.duckdb import classify, decisions, groups, outbox, queries, setwise, transfer
from opswb.store.duckdb.gatecache import GateCache
from opswb.store.duckdb.identity import DuckDBIdentity
from opswb.store.listing import Listing
from opswb.store.setwise import SetwiseBinding
from opswb.store.transfer import TransferBinding


class DuckDBSession(DuckDBIdentity, TransferBinding, SetwiseBinding, Session):
    """The statements of one snapshot or transaction on ``con``."""

    _transfer = transfer

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

    def ledger_progress(self, origin: str) -> tuple[bool, int]:
        return queries.ledger_progress(self.con, origin)

    def ledger_record(self, origin: str, name: str, rows: int, end_offset: int) -> None:
        queries.ledger_record(self.con, origin, name, rows, end_offset)

    def ledger_complete(self, origin: str, name: str | None) -> None:
        queries.ledger_complete(self.con, origin, name)

    def batch_records(self, batch_ids: list[str]) -> dict[str, dict]:
        return queries.batch_records(self.con, batch_ids)

    def record_batches(self, batches: list[tuple[str, str | None, list[dict]]]) -> None:
        queries.record_batches(self.con, batches)

    def batch_results(self, record: dict) -> list[dict]:
        return queries.batch_results(self.con, record)

    # ---- raws and keys ----------------------------------------------------------------
    def raw_row(self, raw_id: int) -> dict | None:
        return queries.raw_row(self.con, raw_id)

    def raws_by_id(self, raw_ids: list[int]) -> dict[str, dict]:
        return queries.raws_by_id(self.con, raw_ids)

    def raw_fingerprints(self, raw_ids: list[int]) -> dict[int, str]:
        return queries.raw_fingerprints(self.con, raw_ids)

    def key_record(self, tenant_id: str | None, idempotency_key: str | None,
                   exception_id: int | None = None) -> dict | None:
        return queries.key_record(self.con, tenant_id, idempotency_key, exception_id)

    def key_arrivals(self, record: dict | None) -> list[dict]:
        return queries.key_arrivals(self.con, record)

    def key_deliveries(self, record: dict | None) -> list[dict]:
        return queries.key_deliveries(self.con, record)

    def deliveries_after(self, after_id: int, tenant_id: str | None,
                         limit: int) -> list[dict]:
        return outbox.deliveries_after(self.con, after_id, tenant_id, limit)

    def last_differing_arrival(self, exception: dict, record: dict,
                               fingerprint: str | None) -> dict | None:
        return decisions.last_differing_arrival(self.con, exception, record, fingerprint)

    # ---- exceptions and decisions ---------------------------------------------------------
    def exception_by_id(self, exception_id: int) -> dict | None:
        return queries.exception_by_id(self.con, exception_id)

    def list_exceptions(self, status: str | None = "open", tenant_id: str | None = None,
                        reason_code: str | None = None, source: str | None = None,
                        idempotency_key: str | None = None, limit: int | None = None,
                        after_raw_id: int | None = None,
                        group_id: str | None = None, *,
                        assignee: str | None = None, sort: str = "age",
                        after_value: str | None = None, q: str | None = None,
                        pending: bool | None = None) -> list[dict]:
        listing = Listing(sort, after_raw_id, after_value, q)
        return queries.list_exceptions(self.con, status, tenant_id, reason_code, source,
                                       idempotency_key, limit, group_id, assignee, listing,
                                       pending)

    def failure_groups(self, status: str | None, tenant_id: str | None,
                       reason_code: str | None, limit: int,
                       after: tuple[int, str] | None = None) -> list[dict]:
        return groups.failure_groups(self.con, status, tenant_id, reason_code, limit, after)

    def open_exception_of_key(self, tenant_id: str, idempotency_key: str) -> int | None:
        return queries.open_exception_of_key(self.con, tenant_id, idempotency_key)

    def exception_fingerprints(self, exception_id: int,
                               raw_range: tuple[int, int] | None = None) -> list[str]:
        return queries.exception_fingerprints(self.con, exception_id, raw_range)

    def update_key(self, tenant_id: str, idempotency_key: str, state: str,
                   adjudicated: list[str] | None, open_exception_id: int | None = None,
                   first_raw_id: int | None = None, **columns: Any) -> None:
        decisions.update_key(self.con, tenant_id, idempotency_key, state, adjudicated,
                             open_exception_id, first_raw_id, **columns)

    def add_replay_delivery(self, tenant_id: str, idempotency_key: str, raw_id: int,
                            event_type: str, payload_json: str, fingerprint: str,
                            exception_id: int) -> int:
        return decisions.add_replay_delivery(self.con, tenant_id, idempotency_key, raw_id,
                                             event_type, payload_json, fingerprint,
                                             exception_id)

    def close_exception(self, exception_id: int, action: str, actor: str, notes: str,
                        canonical_raw_id: int | None, patch_json: str | None,
                        replayed: bool, outcome_json: str | None) -> None:
        decisions.close_exception(self.con, exception_id, action, actor, notes,
                                  canonical_raw_id, patch_json, replayed, outcome_json)

    def reopen_exception(self, exception_id: int) -> None:
        decisions.reopen_exception(self.con, exception_id)

    def write_audit(self, **entry: Any) -> None:
        queries.write_audit(self.con, **entry)

    def audit_entries(self, exception_id: int | None = None, actor: str | None = None,
                      tenant_id: str | None = None, limit: int = 200) -> list[dict]:
        return queries.audit_entries(self.con, exception_id, actor, tenant_id, limit)

    # ---- allowlist, health ---------------------------------------------------------
    def allowed_types(self, tenant_id: str | None = None) -> list[dict]:
        return queries.allowed_types(self.con, tenant_id)

    def is_allowed(self, tenant_id: str, event_type: str) -> bool:
        return queries.is_allowed(self.con, tenant_id, event_type)

    def has_type_entry(self, tenant_id: str, event_type: str) -> bool:
        return decisions.has_type_entry(self.con, tenant_id, event_type)

    def add_type(self, tenant_id: str, event_type: str, actor: str) -> None:
        decisions.add_type(self.con, tenant_id, event_type, actor)

    def remove_type(self, tenant_id: str, event_type: str) -> None:
        decisions.remove_type(self.con, tenant_id, event_type)

    def health_figures(self) -> dict:
        return decisions.health_figures(self.con)

    def record_snapshot(self, figures: dict) -> None:
        decisions.record_snapshot(self.con, figures)

    def snapshot_rows(self, since: str | None = None) -> list[dict]:
        return queries.snapshot_rows(self.con, since)

"""The session methods both backends share: each ``store.base.Session`` method that is
one call of a function of its backend's modules (``store/<backend>/queries.py``,
``decisions.py``, ``groups.py``, ``outbox.py``), connection first.

A backend's session (``store/<backend>/session.py``) names its modules as ``_queries``,
``_decisions``, ``_groups`` and ``_outbox`` and writes only the methods that differ:
storing a chunk, and the reads that lock on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from opswb.store.base import Session
from opswb.store.listing import Listing
from opswb.store.setwise import SetwiseBinding
from opswb.store.transfer import TransferBinding


class BoundSession(TransferBinding, SetwiseBinding, Session):
    """``Session`` bound to ``con`` through the backend's modules."""

    con: Any
    _queries: Any
    _decisions: Any
    _groups: Any
    _outbox: Any

    def ledger_progress(self, origin: str) -> tuple[bool, int]:
        return self._queries.ledger_progress(self.con, origin)

    def ledger_record(self, origin: str, name: str, rows: int, end_offset: int) -> None:
        self._queries.ledger_record(self.con, origin, name, rows, end_offset)

    def ledger_complete(self, origin: str, name: str | None) -> None:
        self._queries.ledger_complete(self.con, origin, name)

    def batch_records(self, batch_ids: list[str]) -> dict[str, dict]:
        return self._queries.batch_records(self.con, batch_ids)

    def record_batches(self, batches: list[tuple[str, str | None, list[dict]]]) -> None:
        self._queries.record_batches(self.con, batches)

    def batch_results(self, record: dict) -> list[dict]:
        return self._queries.batch_results(self.con, record)

    # ---- raws and keys ----------------------------------------------------------------
    def raw_row(self, raw_id: int) -> dict | None:
        return self._queries.raw_row(self.con, raw_id)

    def raws_by_id(self, raw_ids: list[int]) -> dict[str, dict]:
        return self._queries.raws_by_id(self.con, raw_ids)

    def raw_fingerprints(self, raw_ids: list[int]) -> dict[int, str]:
        return self._queries.raw_fingerprints(self.con, raw_ids)

    def key_arrivals(self, record: dict | None) -> list[dict]:
        return self._queries.key_arrivals(self.con, record)

    def key_deliveries(self, record: dict | None) -> list[dict]:
        return self._queries.key_deliveries(self.con, record)

    def deliveries_after(self, after_id: int, tenant_id: str | None,
                         limit: int) -> list[dict]:
        return self._outbox.deliveries_after(self.con, after_id, tenant_id, limit)

    def last_differing_arrival(self, exception: dict, record: dict,
                               fingerprint: str | None) -> dict | None:
        return self._decisions.last_differing_arrival(self.con, exception, record, fingerprint)

    # ---- exceptions and decisions ---------------------------------------------------------
    def list_exceptions(self, status: str | None = "open", tenant_id: str | None = None,
                        reason_code: str | None = None, source: str | None = None,
                        idempotency_key: str | None = None, limit: int | None = None,
                        after_raw_id: int | None = None,
                        group_id: str | None = None, *,
                        assignee: str | None = None, sort: str = "age",
                        after_value: str | None = None, q: str | None = None,
                        pending: bool | None = None) -> list[dict]:
        listing = Listing(sort, after_raw_id, after_value, q)
        return self._queries.list_exceptions(self.con, status, tenant_id, reason_code, source,
                                             idempotency_key, limit, group_id, assignee,
                                             listing, pending)

    def failure_groups(self, status: str | None, tenant_id: str | None,
                       reason_code: str | None, limit: int,
                       after: tuple[int, str] | None = None) -> list[dict]:
        return self._groups.failure_groups(self.con, status, tenant_id, reason_code, limit, after)

    def open_exception_of_key(self, tenant_id: str, idempotency_key: str) -> int | None:
        return self._queries.open_exception_of_key(self.con, tenant_id, idempotency_key)

    def exception_fingerprints(self, exception_id: int,
                               raw_range: tuple[int, int] | None = None) -> list[str]:
        return self._queries.exception_fingerprints(self.con, exception_id, raw_range)

    def update_key(self, tenant_id: str, idempotency_key: str, state: str,
                   adjudicated: list[str] | None, open_exception_id: int | None = None,
                   first_raw_id: int | None = None, **columns: Any) -> None:
        self._decisions.update_key(self.con, tenant_id, idempotency_key, state, adjudicated,
                                   open_exception_id, first_raw_id, **columns)

    def add_replay_delivery(self, tenant_id: str, idempotency_key: str, raw_id: int,
                            event_type: str, payload_json: str, fingerprint: str,
                            exception_id: int) -> int:
        return self._decisions.add_replay_delivery(self.con, tenant_id, idempotency_key,
                                                   raw_id, event_type, payload_json,
                                                   fingerprint, exception_id)

    def close_exception(self, exception_id: int, action: str, actor: str, notes: str,
                        canonical_raw_id: int | None, patch_json: str | None,
                        replayed: bool, outcome_json: str | None) -> None:
        self._decisions.close_exception(self.con, exception_id, action, actor, notes,
                                        canonical_raw_id, patch_json, replayed, outcome_json)

    def reopen_exception(self, exception_id: int) -> None:
        self._decisions.reopen_exception(self.con, exception_id)

    def write_audit(self, **entry: Any) -> None:
        self._queries.write_audit(self.con, **entry)

    def audit_entries(self, exception_id: int | None = None, actor: str | None = None,
                      tenant_id: str | None = None, limit: int = 200) -> list[dict]:
        return self._queries.audit_entries(self.con, exception_id, actor, tenant_id, limit)

    # ---- allowlist, health ---------------------------------------------------------
    def allowed_types(self, tenant_id: str | None = None) -> list[dict]:
        return self._queries.allowed_types(self.con, tenant_id)

    def is_allowed(self, tenant_id: str, event_type: str) -> bool:
        return self._queries.is_allowed(self.con, tenant_id, event_type)

    def has_type_entry(self, tenant_id: str, event_type: str) -> bool:
        return self._decisions.has_type_entry(self.con, tenant_id, event_type)

    def add_type(self, tenant_id: str, event_type: str, actor: str) -> None:
        self._decisions.add_type(self.con, tenant_id, event_type, actor)

    def remove_type(self, tenant_id: str, event_type: str) -> None:
        self._decisions.remove_type(self.con, tenant_id, event_type)

    def health_figures(self) -> dict:
        return self._decisions.health_figures(self.con)

    def record_snapshot(self, figures: dict) -> None:
        self._decisions.record_snapshot(self.con, figures)

    def snapshot_rows(self, since: str | None = None) -> list[dict]:
        return self._queries.snapshot_rows(self.con, since)

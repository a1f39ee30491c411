"""Copying a whole store between backends (SPEC §14 ``opswb copy --from SRC --to DST``).

A copy moves every table of the store in one backend-neutral form, table by table, in
chunks: the source streams each table from one read snapshot (``Session.export_rows``),
the destination writes each chunk inside one write transaction
(``Session.import_rows``), so a copy that fails part-way leaves the destination as it
was. Ids, times, texts and hashes travel unchanged: raws keep their exact text and ids,
the audit trail keeps its hash chain (``opswb audit verify`` passes on the copy), tokens
travel as their hashes only.

The neutral form of each table is ``TABLES``: its columns in order. Tenant-less rows
(invalid arrivals, global allowlist changes in the audit) carry ``tenant_id`` None; a raw
carries its exact text and its SPEC §4 fingerprint where one was computed; a key record
is the one the API shows (its later arrivals counted in). What a backend keeps beside
these (DuckDB's id counters, PostgreSQL's sequences) the destination derives from the
rows (``Session.finish_import``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from opswb.core.errors import Conflict, InvalidRequest

if TYPE_CHECKING:
    from opswb.store.base import Session, Store

TABLES: dict[str, tuple[str, ...]] = {
    "raw_events": ("raw_id", "received_at", "text", "tenant_id", "idempotency_key",
                   "event_type", "source", "occurred_at", "payload", "fingerprint", "valid",
                   "error", "outcome", "exception_id", "origin", "replay_of"),
    "idempotency_keys": ("tenant_id", "idempotency_key", "state", "first_raw_id",
                         "last_raw_id", "canonical_raw_id", "canonical_fingerprint",
                         "override_patch", "arrival_count", "delivery_count",
                         "adjudicated_fingerprints", "open_exception_id",
                         "first_exception_raw_id"),
    "exceptions": ("exception_id", "tenant_id", "idempotency_key", "source", "reason_code",
                   "details", "raw_id", "status", "created_at", "replay_attempts", "action",
                   "actor", "resolution_notes", "canonical_raw_id", "override_patch",
                   "resolved_at", "replay_outcome", "signature", "group_id",
                   "key_first_raw_id", "pending", "assignee"),
    "exception_comments": ("exception_id", "author", "text", "created_at"),
    "deliveries": ("delivery_id", "tenant_id", "idempotency_key", "raw_id", "event_type",
                   "payload", "fingerprint", "is_replay", "exception_id", "delivered_at"),
    "audit_log": ("audit_id", "created_at", "actor", "action", "exception_id", "tenant_id",
                  "idempotency_key", "state_before", "state_after", "notes",
                  "canonical_raw_id", "override_patch", "details", "prev_hash",
                  "entry_hash"),
    "audit_chain": ("chain_start", "head_id", "head_hash"),
    "event_types": ("tenant_id", "event_type", "added_by", "added_at"),
    "approval_policies": ("tenant_id", "action", "set_by", "set_at"),
    "api_tokens": ("name", "role", "token_sha256", "created_at", "created_by",
                   "last_used_at", "revoked_at", "revoked_by"),
    "ingest_ledger": ("origin", "name", "chunk_no", "rows_done", "byte_offset",
                      "committed_at"),
    "ingest_batches": ("batch_id", "body_sha256", "first_raw_id", "arrivals",
                       "committed_at"),
    "health_snapshots": ("taken_at", "exceptions_open", "raw_events", "processed",
                         "quarantined", "ignored", "body"),
}

# Tables a fresh store already fills (the seed allowlist, the chain's start): the copy
# replaces their rows; any row in another table makes the destination not empty.
REPLACED = ("event_types", "audit_chain")

CHUNK_ROWS = 20_000

Progress = Callable[[str, int], None]


def copy_store(source: Store, destination: Store, chunk_rows: int = CHUNK_ROWS,
               on_progress: Progress | None = None) -> dict[str, int]:
    """Copy every table of ``source`` into ``destination``, which must be empty (fresh
    or only initialised); returns the rows copied per table. A destination holding
    anything is refused (``Conflict``) and left as it was."""
    if _same(source.target, destination.target):
        raise InvalidRequest(f"cannot copy a store onto itself ({source.target})")
    counts: dict[str, int] = {}
    with ExitStack() as stack:
        src = stack.enter_context(source.read())
        dst = stack.enter_context(destination.write_chunk())
        held = blockers(dst, chunk_rows)
        if held:
            raise Conflict(f"the destination {destination.target} is not empty (it holds "
                           + ", ".join(held) + "): copy only into a new or freshly"
                           " initialised store; nothing was copied")
        for table in TABLES:
            counts[table] = 0
            for chunk in src.export_rows(table, chunk_rows):
                dst.import_rows(table, chunk)
                counts[table] += len(chunk)
                if on_progress is not None:
                    on_progress(table, counts[table])
        dst.finish_import()
    return counts


class TransferBinding:
    """A backend session's copy statements (``Session.export_rows``, ``import_rows``,
    ``finish_import``), bound to its backend's transfer module (``_transfer``: the
    functions of ``store/<backend>/transfer.py``, each taking the connection first)."""

    con: Any
    _transfer: Any
    _replaced: set[str]  # the tables of REPLACED whose rows this session replaced

    def export_rows(self, table: str, chunk_rows: int) -> Generator[list[tuple], None, None]:
        return self._transfer.export_rows(self.con, table, chunk_rows)

    def import_rows(self, table: str, rows: list[tuple]) -> None:
        self._transfer.import_rows(self.con, table, rows, self._replaced)

    def finish_import(self) -> None:
        self._transfer.finish_import(self.con)


def blockers(session: Session, chunk_rows: int = CHUNK_ROWS) -> list[str]:
    """The tables that make a store not empty for a copy: any row, except the seed
    allowlist and the chain's start that a freshly initialised store holds."""
    held = []
    for table in TABLES:
        rows = session.export_rows(table, chunk_rows)
        try:
            first = next(rows, [])
        finally:
            rows.close()
        if table == "event_types":
            first = [r for r in first if r[TABLES[table].index("added_by")] != "seed"]
        elif table == "audit_chain":
            first = [r for r in first if r[TABLES[table].index("head_id")] is not None]
        if first:
            held.append(table)
    return held


def _same(a: str, b: str) -> bool:
    import os

    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return a != ":memory:" and os.path.abspath(a) == os.path.abspath(b)

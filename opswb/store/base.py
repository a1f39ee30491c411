"""The store seam: what the engine asks of a backend, stated once.

The engine (``opswb.engine``) owns the flow — which arrival goes where (SPEC §5), what
a resolution checks before it writes (§7), what a detail view shows (§9). A backend
owns every statement. It offers two things:

- a ``Store``: where the data lives, and how to begin work on it — ``read()`` for a
  consistent snapshot, ``write()`` for one transaction that commits on a clean exit and
  rolls back on any error;
- a ``Session``: the statements of that one snapshot or transaction, one method each.

A second backend is a new module that implements both (``opswb/store/duckdb/`` is the
first); nothing in the engine changes. Ids are integers here and strings only in what
the API shows (``opswb.core.records``); rows come back in their API form unless a method
says otherwise. A method that cannot find what it was asked for returns None (or an empty
list); refusals (``NotFound``, ``Conflict``) are the engine's to raise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator
from contextlib import AbstractContextManager
from typing import Any

from opswb.core.errors import LocalOnly
from opswb.store.commits import CommitSignal
from opswb.store.identity import IdentityStatements

Summary = dict[str, int]


class Session(IdentityStatements, ABC):
    """The statements of one read snapshot or one write transaction (SPEC §15's in
    ``store.identity``)."""

    # ---- storing arrivals (SPEC §3, §5, §10) -----------------------------------------
    @abstractmethod
    def store_arrivals(self, rows: Any, origin: str | list[str] | None, *,
                       replay_of: int | None = None, with_outcomes: bool = False,
                       cache: Any = None) -> tuple[Summary, list[dict]]:
        """Store a chunk of staged arrivals (``opswb.core.staging``: tuples or their
        table) as raws, in arrival order, and apply SPEC §5's rules to them set-wise,
        across the chunk and what the store already holds.

        Returns the chunk's §10 counts and, when ``with_outcomes``, each arrival's §9
        result (``records.arrival_results``) in input order. ``origin`` names where the
        chunk came from (a file's hash, ``batch:<id>``, ``api``, ``replay``), or is a list
        of one per arrival (requests committed together);
        ``replay_of``: the ``INVALID_EVENT`` these arrivals fix. ``cache`` is what
        ``Store.ingest_cache()`` gave, passed to every chunk of one ingest."""

    @abstractmethod
    def ledger_progress(self, origin: str) -> tuple[bool, int]:
        """(complete?, input offset after the last committed chunk) of a file."""

    @abstractmethod
    def ledger_record(self, origin: str, name: str, rows: int, end_offset: int) -> None:
        """Record a chunk of a file as stored (in the chunk's transaction)."""

    @abstractmethod
    def ledger_complete(self, origin: str, name: str | None) -> None:
        """Record a file as wholly stored: a later ingest of it skips it."""

    @abstractmethod
    def batch_records(self, batch_ids: list[str]) -> dict[str, dict]:
        """The stored HTTP batches among these ``Opswb-Batch-Id``s, by id: ``{"body_sha256",
        "first_raw_id", "arrivals"}`` each (one statement for a group's requests)."""

    @abstractmethod
    def record_batches(self, batches: list[tuple[str, str | None, list[dict]]]) -> None:
        """Record batches just stored, ``(batch_id, body_sha256, results)`` each, in
        their transaction (one statement)."""

    @abstractmethod
    def batch_results(self, record: dict) -> list[dict]:
        """A stored batch's first answer (§9 ``results``), read back from its raws."""

    # ---- raws and keys ----------------------------------------------------------------
    @abstractmethod
    def raw_row(self, raw_id: int) -> dict | None:
        """One raw with its internal columns (``fingerprint``, ``valid``,
        ``exception_id``; ``payload`` as JSON text), not in API form."""

    @abstractmethod
    def raws_by_id(self, raw_ids: list[int]) -> dict[str, dict]:
        """Raws in API form (SPEC §3), by their id string."""

    @abstractmethod
    def raw_fingerprints(self, raw_ids: list[int]) -> dict[int, str]:
        """SPEC §4 fingerprints of stored valid raws."""

    @abstractmethod
    def key_record(self, tenant_id: str | None, idempotency_key: str | None,
                   exception_id: int | None = None) -> dict | None:
        """A key's record (SPEC §5 fields plus ``open_exception_id`` and
        ``first_exception_raw_id``), not in API form; None for no key. Given the id of
        one of the key's exceptions, the lookup may use what that exception recorded of
        its key to stay selective on a large store (same answer)."""

    @abstractmethod
    def key_arrivals(self, record: dict | None) -> list[dict]:
        """Every valid arrival of a key record, in arrival order, in API form."""

    @abstractmethod
    def key_deliveries(self, record: dict | None) -> list[dict]:
        """The outbox rows of a key record, in delivery order."""

    @abstractmethod
    def deliveries_after(self, after_id: int, tenant_id: str | None,
                         limit: int) -> list[dict]:
        """The outbox for downstream consumers (SPEC §9 ``GET /v1/deliveries``): up to
        ``limit`` deliveries with ``delivery_id > after_id`` (of one tenant if given), in
        delivery order, each ``{"delivery_id", "tenant_id", "idempotency_key",
        "event_type", "payload", "raw_id", "replay", "exception_id", "delivered_at"}`` in
        API form. ``payload`` is what was delivered: the raw's for an arrival, the patched
        one for a replay; ``replay`` and ``exception_id`` mark what a resolution delivered
        (an ``override_and_replay``, or the fixed arrival of an ``INVALID_EVENT``).

        The feed is gap-free for a reader that follows the last id it saw *only if* the
        deliveries a snapshot shows are all those with an id up to some point, i.e. ids
        are handed out in commit order. A backend must make that so (the DuckDB backend
        does: one writing transaction at a time per file, and each takes its ids from the
        ``counters`` table inside that transaction). Must read only the pages' own rows
        (a range on the delivery id), never the whole outbox or every raw."""

    @abstractmethod
    def last_differing_arrival(self, exception: dict, record: dict,
                               fingerprint: str | None) -> dict | None:
        """LAST of a conflict (SPEC §5): the latest raw attached to ``exception`` whose
        fingerprint differs from ``fingerprint``, in API form."""

    # ---- exceptions and decisions (SPEC §6, §7) ------------------------------------------
    @abstractmethod
    def exception_by_id(self, exception_id: int) -> dict | None:
        """One exception's §6 fields, in API form."""

    @abstractmethod
    def list_exceptions(self, status: str | None = "open", tenant_id: str | None = None,
                        reason_code: str | None = None, source: str | None = None,
                        idempotency_key: str | None = None, limit: int | None = None,
                        after_raw_id: int | None = None,
                        group_id: str | None = None, *,
                        assignee: str | None = None, sort: str = "age",
                        after_value: str | None = None, q: str | None = None,
                        pending: bool | None = None) -> list[dict]:
        """Exceptions matching every filter given, in ``sort``'s order (``age``,
        ``tenant``, ``reason``, ``key``; ``-`` first for descending; ``age`` is oldest
        first by opening raw), after the row ``(after_value, after_raw_id)`` that ended
        the previous page (``opswb.store.listing``); ``tenant_id`` ``"(none)"`` matches
        those without a tenant; ``q`` a case-insensitive substring of the key or the
        source; ``group_id`` is a failure group's (``failure_groups``), ``assignee`` who
        claimed them, ``pending`` True/False those with/without a four-eyes proposal."""

    @abstractmethod
    def failure_groups(self, status: str | None, tenant_id: str | None,
                       reason_code: str | None, limit: int,
                       after: tuple[int, str] | None = None) -> list[dict]:
        """Failure groups of the exceptions matching every filter given (``status``
        None: any), largest first, ties by ``group_id``; at most ``limit``, after the
        ``(count, group_id)`` that ended the previous page. Each: ``group_id``,
        ``reason_code``, ``signature`` (the unknown type; a conflict's sorted list of
        JSON-Pointer paths that differed between FIRST and the opening arrival; the
        failed rule of an invalid arrival), ``count``, ``tenants``, ``tenant_count``,
        ``sources``, ``source_count``, ``first_seen``, ``last_seen``,
        ``sample_exception_id`` (the group's oldest). A group is the same whatever the
        filters: its id works as a filter of ``list_exceptions``. One statement."""

    @abstractmethod
    def open_exception_of_key(self, tenant_id: str, idempotency_key: str) -> int | None:
        """The open conflict or unknown-type exception of a key, if any."""

    @abstractmethod
    def exception_fingerprints(self, exception_id: int,
                               raw_range: tuple[int, int] | None = None) -> list[str]:
        """Fingerprints of the exception's opening raw and of every raw attached to it;
        ``raw_range`` (its opening raw, its key's last raw) keeps the lookup selective."""

    @abstractmethod
    def update_key(self, tenant_id: str, idempotency_key: str, state: str,
                   adjudicated: list[str] | None, open_exception_id: int | None = None,
                   first_raw_id: int | None = None, **columns: Any) -> None:
        """Set a key's state and open exception, its adjudicated fingerprints (None:
        unchanged), and any of ``canonical_raw_id``, ``canonical_fingerprint``,
        ``override_patch``, ``delivery_count``. ``first_raw_id`` (the record's, if known)
        keeps the update selective on a large store."""

    @abstractmethod
    def add_replay_delivery(self, tenant_id: str, idempotency_key: str, raw_id: int,
                            event_type: str, payload_json: str, fingerprint: str,
                            exception_id: int) -> int:
        """Append a replay to the outbox; returns the key's number of deliveries."""

    @abstractmethod
    def close_exception(self, exception_id: int, action: str, actor: str, notes: str,
                        canonical_raw_id: int | None, patch_json: str | None,
                        replayed: bool, outcome_json: str | None) -> None:
        """Mark an exception resolved with its decision."""

    @abstractmethod
    def reopen_exception(self, exception_id: int) -> None:
        """Mark a resolved exception open again (its decision fields cleared)."""

    # ---- decisions set-wise (issue 17: a group decision, batch by batch) ---------------
    @abstractmethod
    def exceptions_by_ids(self, exception_ids: list[int]) -> dict[int, dict]:
        """``exception_by_id`` for many, in one statement (in a write, each locked as
        ``exception_by_id`` locks it)."""

    @abstractmethod
    def key_records_of(self, exceptions: list[dict]) -> dict[int, dict]:
        """``key_record`` of each keyed exception given (§6 rows), by exception id, with
        a lazily stored canonical fingerprint filled in as ``key_record`` does."""

    @abstractmethod
    def fingerprints_of_exceptions(self, spans: dict[int, tuple[int, int]]
                                   ) -> dict[int, list[str]]:
        """``exception_fingerprints`` of each exception id, with its raw range."""

    @abstractmethod
    def raw_rows(self, raw_ids: list[int]) -> dict[int, dict]:
        """``raw_row`` for many, by raw id."""

    @abstractmethod
    def last_differing_arrivals(self, items: dict[int, tuple[int, int, str | None]]
                                ) -> dict[int, int]:
        """For each exception id with (its opening raw, its key's last raw, FIRST's
        fingerprint): the raw id of its LAST (``last_differing_arrival``), where it has
        one."""

    @abstractmethod
    def update_keys(self, rows: list[dict]) -> None:
        """Each key record of ``rows`` (``tenant_id``, ``idempotency_key``,
        ``first_raw_id``) gets the row's ``state``, ``adjudicated_fingerprints``,
        ``canonical_raw_id``, ``canonical_fingerprint``, ``override_patch`` and
        ``delivery_count``, and no open exception: one statement."""

    @abstractmethod
    def close_exceptions(self, rows: list[dict], action: str, actor: str, notes: str,
                         replayed: bool) -> None:
        """``close_exception`` for each of ``rows`` (``exception_id``,
        ``canonical_raw_id``, ``override_patch`` JSON text) with one decision, and no
        pending proposal left: one statement."""

    @abstractmethod
    def add_replay_deliveries(self, rows: list[dict]) -> dict[tuple[str, str], int]:
        """``add_replay_delivery`` for each of ``rows`` (its arguments by name,
        ``payload`` as JSON text), delivery ids in row order; returns each key's number
        of deliveries after."""

    @abstractmethod
    def write_audits(self, entries: list[dict]) -> None:
        """``write_audit`` for each entry, in order, chained one after the other."""

    @abstractmethod
    def write_audit(self, **entry: Any) -> None:
        """Append one audit entry: ``actor``, ``action`` and any of ``exception_id``,
        ``tenant_id``, ``idempotency_key``, ``state_before``, ``state_after``, ``notes``,
        ``canonical_raw_id``, ``override_patch``, ``details`` (JSON text)."""

    @abstractmethod
    def audit_entries(self, exception_id: int | None = None, actor: str | None = None,
                      tenant_id: str | None = None, limit: int = 200) -> list[dict]:
        """Audit entries matching every filter given, newest first."""

    # ---- allowlist, health ---------------------------------------------------------
    @abstractmethod
    def allowed_types(self, tenant_id: str | None = None) -> list[dict]:
        """Allowlist entries (global ones have ``tenant_id`` None), with a tenant's own."""

    @abstractmethod
    def is_allowed(self, tenant_id: str, event_type: str) -> bool:
        """Whether a type is allowed for a tenant (globally or for it)."""

    @abstractmethod
    def has_type_entry(self, tenant_id: str, event_type: str) -> bool:
        """Whether this exact entry exists (``tenant_id`` '' for a global one)."""

    @abstractmethod
    def add_type(self, tenant_id: str, event_type: str, actor: str) -> None:
        """Add an entry ('' for global); adding one that exists changes nothing."""

    @abstractmethod
    def remove_type(self, tenant_id: str, event_type: str) -> None:
        """Remove an entry."""

    @abstractmethod
    def health_figures(self) -> dict:
        """SPEC §8's figures and the breakdowns beside them."""

    @abstractmethod
    def record_snapshot(self, figures: dict) -> None:
        """Store health figures as a snapshot, now."""

    @abstractmethod
    def snapshot_rows(self, since: str | None = None) -> list[dict]:
        """Recorded snapshots, oldest first."""

    # ---- copying a whole store (SPEC §14, ``store.transfer``) ------------------------
    @abstractmethod
    def export_rows(self, table: str, chunk_rows: int) -> Generator[list[tuple], None, None]:
        """Every row of a ``transfer.TABLES`` table in its neutral form (those columns,
        in order), in chunks of at most ``chunk_rows``, streamed (never the whole table
        in memory): a generator, each chunk consumed before the next is asked for (or
        the generator closed)."""

    @abstractmethod
    def import_rows(self, table: str, rows: list[tuple]) -> None:
        """Write a chunk of a table in its neutral form (as ``export_rows`` gives it);
        a table of ``transfer.REPLACED`` has its rows replaced by its first chunk."""

    @abstractmethod
    def finish_import(self) -> None:
        """After the last chunk: set where the next ids start from the rows copied."""


class Store(ABC):
    """One store: where it is, and how to begin a snapshot or a transaction on it."""

    target: str

    @abstractmethod
    def read(self) -> AbstractContextManager[Session]:
        """A consistent snapshot for reading; writes nothing."""

    @abstractmethod
    def write(self) -> AbstractContextManager[Session]:
        """One transaction: committed on a clean exit, rolled back on any error."""

    def write_chunk(self) -> AbstractContextManager[Session]:
        """The transaction of one chunk of a bulk ingest (a backend may open it with
        bulk-friendly settings); by default ``write()``."""
        return self.write()

    def ingest_cache(self) -> Any:
        """What the chunks of one ingest share (passed to ``store_arrivals``)."""
        return None

    def prepare_chunk(self, rows: Any) -> Any:
        """``rows`` of a bulk chunk with what the backend can do ahead of its transaction
        (run on the ingest's parse thread while the previous chunk is stored); what it
        returns is what ``store_arrivals`` is given. By default ``rows`` unchanged."""
        return rows

    def close(self) -> None:
        """Let go of whatever the store holds open; idempotent."""

    def commit_signal(self) -> CommitSignal | None:
        """The signal raised after each commit, when every write to the store passes
        through this object (a store held by a server); None when other processes may
        write it unseen (embedded mode), so who waits for news polls instead."""
        return None

    def sql(self, query: str, params: list | None = None) -> Any:
        """A read-only query over the analyst views, as a DataFrame (where supported)."""
        raise LocalOnly(f"raw SQL is not available on the store {self.target}")

    def views(self) -> Any:
        """The analyst views as DataFrame-returning methods (where supported)."""
        raise LocalOnly(f"the analyst views are not available on the store {self.target}")


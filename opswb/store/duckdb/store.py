"""The DuckDB store: a file opened per call (embedded mode) or held by a server.

DuckDB lets one process hold a file at a time (SPEC §13). Embedded mode therefore opens
the file for one call and closes it again (``connection.open_store``: bounded retry while
another process holds it). ``opswb serve`` holds it instead (``held=True``): one
connection for the server's life, reads each on their own cursor inside a read
transaction (a consistent snapshot across the several queries of a detail view), writes
serialised by one lock on one writer cursor, a transaction each; after each commit the
held store raises its ``CommitSignal`` (what the deliveries feed's long poll waits on).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from opswb.core.errors import StoreError
from opswb.store.base import Store
from opswb.store.commits import CommitSignal
from opswb.store.duckdb.connection import (
    INGEST_ROW_GROUP,
    connect_raw,
    migrate,
    open_store,
    transaction,
    write_lock,
)
from opswb.store.duckdb.gatecache import GateCache
from opswb.store.duckdb.queries import RecentRaws
from opswb.store.duckdb.session import DuckDBSession


class DuckDBStore(Store):
    """A DuckDB file (or ``:memory:``)."""

    def __init__(self, path: str, busy_timeout: float | None = None, held: bool = False):
        self.target = str(path)
        self.busy_timeout = busy_timeout
        self.held = held
        self._closed = False
        if held:
            self._hold()

    def __repr__(self) -> str:
        return f"DuckDBStore({self.target!r}{', held' if self.held else ''})"

    # ---- embedded mode: the file for one call ---------------------------------------
    @contextmanager
    def _embedded_read(self) -> Iterator[DuckDBSession]:
        with open_store(self.target, self.busy_timeout) as con:
            yield DuckDBSession(con)

    @contextmanager
    def _embedded_write(self, row_group_size: int | None = None) -> Iterator[DuckDBSession]:
        with write_lock(self.target), \
                open_store(self.target, self.busy_timeout, row_group_size) as con, \
                transaction(con):
            yield DuckDBSession(con)

    # ---- held: one connection for a server's life -----------------------------------
    def _hold(self) -> None:
        if self.target != ":memory:":
            Path(self.target).parent.mkdir(parents=True, exist_ok=True)
        # Row groups of the bulk ingest's size: with the default (twice that), a checkpoint
        # merges every ingest row group in pairs, rewriting a big store (2.9 GB of writes
        # over 8M raws, minutes, the writer blocked in a commit).
        self._con = connect_raw(self.target, self.busy_timeout, row_group_size=INGEST_ROW_GROUP)
        try:
            with write_lock(self.target):
                migrate(self._con)
        except duckdb.Error as e:
            self._con.close()
            raise StoreError(f"store {self.target}: {e}") from e
        # DuckDB connections are not thread-safe; cursor() duplicates one cheaply, and
        # the guard keeps two threads from duplicating at the same instant.
        self._cursor_guard = threading.Lock()
        # An attached file is the connection's default database, but not its cursors'.
        self._use = "USE " + '"{}"'.format(
            self._con.execute("SELECT current_database()").fetchall()[0][0].replace('"', '""'))
        self._writer = self._new_cursor()
        self._commits = CommitSignal()
        self._gate = GateCache()

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self._con.cursor()
        cur.execute(self._use)
        return cur

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._cursor_guard:
            if self._closed:
                raise StoreError(f"store {self.target} is closed (the server is shutting down)")
            return self._new_cursor()

    @contextmanager
    def _held_read(self) -> Iterator[DuckDBSession]:
        cur = self._cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            yield DuckDBSession(cur)
        except duckdb.Error as e:
            raise StoreError(f"store {self.target}: {e}") from e
        finally:
            try:
                cur.execute("ROLLBACK")  # reads wrote nothing; ending the snapshot is all
            except duckdb.Error:
                pass
            cur.close()

    @contextmanager
    def _held_write(self, gated: bool = False) -> Iterator[DuckDBSession]:
        """One write transaction. Only a chunk's (``gated``) keeps the small path's
        ``GateCache``; any other write first writes back the ids it reserved and
        invalidates it; a failed transaction puts it back as it was before."""
        with write_lock(self.target):
            if self._closed:
                raise StoreError(f"store {self.target} is closed (the server is shutting down)")
            self._gate.begin()
            committed = False
            try:
                with transaction(self._writer) as con:
                    if not gated:
                        self._gate.release(con)
                    yield DuckDBSession(con, self._gate if gated else None)
                committed = True
            except duckdb.Error as e:
                raise StoreError(f"store {self.target}: {e}") from e
            finally:
                if not committed:
                    self._gate.rolled_back()
                elif not gated:
                    self._gate.invalidate()
            self._commits.notify()

    # ---- the seam -------------------------------------------------------------------
    def read(self):
        return self._held_read() if self.held else self._embedded_read()

    def write(self):
        return self._held_write() if self.held else self._embedded_write()

    def write_chunk(self):
        """A bulk chunk's transaction: in embedded mode the file is attached with the
        ingest's row groups (``connection.INGEST_ROW_GROUP``)."""
        return self._held_write(gated=True) if self.held else \
            self._embedded_write(INGEST_ROW_GROUP)

    def commit_signal(self) -> CommitSignal | None:
        """Held: every write passes through here, so commits are seen as they happen."""
        return self._commits if self.held else None

    def ingest_cache(self) -> RecentRaws:
        return RecentRaws()

    def close(self) -> None:
        """Close the held connection (checkpointing the file); idempotent."""
        if not self.held:
            return
        with write_lock(self.target), self._cursor_guard:
            if not self._closed:
                self._closed = True
                self._release_ids()
                self._writer.close()
                self._con.close()
                self._commits.close()

    def _release_ids(self) -> None:
        """The exact id counters back in the file for whoever opens it next (a failure
        here only leaves a gap before the next ids)."""
        try:
            with transaction(self._writer) as con:
                self._gate.release(con)
        except duckdb.Error:
            pass

    def sql(self, query: str, params: list | None = None) -> Any:
        from opswb.store.duckdb.views import run_sql

        return run_sql(self.target, query, params)

    def views(self) -> Any:
        from opswb.store.duckdb.views import Views

        return Views(self.target)

"""The workbench inside ``opswb serve``: one DuckDB connection held for the server's life.

Embedded mode opens the file per call (SPEC §13); the server instead owns the file, so
it opens it once. Reads run concurrently, each on its own cursor inside a read
transaction (a consistent snapshot across the several queries of a detail view); writes
are serialised by one lock and run on one writer cursor, one transaction each.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from opswb.core.errors import StoreError
from opswb.store.duckdb.connection import connect_raw, migrate, transaction, write_lock
from opswb.workbench.local import LocalWorkbench


class ServedWorkbench(LocalWorkbench):
    """A ``LocalWorkbench`` over one long-lived connection (the server holds the file)."""

    def __init__(self, db: str, busy_timeout: float | None = None):
        super().__init__(db, busy_timeout)
        if self.db != ":memory:":
            Path(self.db).parent.mkdir(parents=True, exist_ok=True)
        self._con = connect_raw(self.db, busy_timeout)
        try:
            with write_lock(self.db):
                migrate(self._con)
        except duckdb.Error as e:
            self._con.close()
            raise StoreError(f"store {self.db}: {e}") from e
        # DuckDB connections are not thread-safe; cursor() duplicates one cheaply, and
        # the guard keeps two threads from duplicating at the same instant.
        self._cursor_guard = threading.Lock()
        self._writer = self._con.cursor()
        self._closed = False

    def __repr__(self) -> str:
        return f"ServedWorkbench({self.db!r})"

    def close(self) -> None:
        """Close the held connection (checkpointing the file); idempotent."""
        with write_lock(self.db), self._cursor_guard:
            if not self._closed:
                self._closed = True
                self._writer.close()
                self._con.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._cursor_guard:
            if self._closed:
                raise StoreError(f"store {self.db} is closed (the server is shutting down)")
            return self._con.cursor()

    @contextmanager
    def _read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self._cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            yield cur
        except duckdb.Error as e:
            raise StoreError(f"store {self.db}: {e}") from e
        finally:
            try:
                cur.execute("ROLLBACK")  # reads wrote nothing; ending the snapshot is all
            except duckdb.Error:
                pass
            cur.close()

    @contextmanager
    def _write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with write_lock(self.db):
            if self._closed:
                raise StoreError(f"store {self.db} is closed (the server is shutting down)")
            try:
                with transaction(self._writer) as con:
                    yield con
            except duckdb.Error as e:
                raise StoreError(f"store {self.db}: {e}") from e

    def _ingest_target(self) -> ServedWorkbench:
        """Ingest goes through the held connection too (ingest functions take a
        StoreAccess: ``_read`` and ``_write``)."""
        return self

    def ingest_batch(self, elements: list, batch_id: str | None = None,
                     body_sha256: str | None = None) -> dict:
        """As ``LocalWorkbench.ingest_batch``; ``body_sha256``: of the request body the
        elements were read from, which a stored batch id is compared by (SPEC §9)."""
        return self._ingest_elements(list(elements), batch_id, body_sha256)

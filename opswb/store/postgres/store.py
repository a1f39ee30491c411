"""The PostgreSQL store: a ``postgresql://…`` URL, shared by any number of processes.

Exactly-once comes from the database, not from a process lock: constraints (one key
record per key, one open exception per key), ``INSERT … ON CONFLICT`` and row locks taken
in key order (``classify``), ``SELECT … FOR UPDATE`` on what a decision changes
(``session``). A write is one READ COMMITTED transaction; a read one REPEATABLE READ
READ ONLY transaction (a consistent snapshot across the queries of a detail view).

Connections: embedded use (``opswb.connect``, the CLI) opens one connection per call,
as the DuckDB store opens its file per call: a short-lived process holds nothing between
calls and leaves no idle sessions on the server. ``held`` (``opswb serve``) keeps a pool
(``psycopg_pool``) for the server's life: a request then costs no connection set-up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

from opswb.core.errors import StoreBusy, StoreError
from opswb.store.base import Store
from opswb.store.commits import CommitSignal
from opswb.store.config import busy_timeout as default_busy_timeout
from opswb.store.postgres.errors import busy_error, psycopg_module
from opswb.store.postgres.listen import CommitListener
from opswb.store.postgres.session import PostgresSession
from opswb.store.postgres.text import nul_safe_str_dumper
from opswb.store.seed import seed_rows

_MIGRATION_LOCK = 0x6F707377_62000001  # pg_advisory_lock key: "opswb" schema migration
_migrated: set[str] = set()
# A bulk chunk's memory on the server (a 122,880-arrival chunk stages ~90 MB).
BULK_TEMP_BUFFERS = "256MB"
BULK_WORK_MEM = "64MB"
_migrate_guard = threading.Lock()


def migrations() -> list[tuple[int, str]]:
    """``(version, sql)`` of ``sql/NNNN_*.sql``, in order."""
    files = resources.files("opswb.store.postgres").joinpath("sql")
    out = [(int(f.name[:4]), f.read_text()) for f in files.iterdir()
           if f.name.endswith(".sql") and f.name[:4].isdigit()]
    return sorted(out)


def migrate(con: Any) -> int:
    """Apply every schema file not yet recorded in ``schema_version`` (not only those
    above the highest recorded), under a session advisory lock: two processes migrating at once apply each file once. ``con`` is in
    autocommit mode."""
    con.execute("SELECT pg_advisory_lock(%s)", [_MIGRATION_LOCK])
    try:
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now())")
        # Every file not yet recorded, in order (as on DuckDB): a file numbered on a
        # parallel branch applies even to a store a later-numbered one already reached.
        done = {v for (v,) in con.execute("SELECT version FROM schema_version").fetchall()}
        current = max(done, default=0)
        for version, sql in migrations():
            if version in done:
                continue
            with con.transaction():
                con.execute(sql)
                con.execute("INSERT INTO schema_version (version) VALUES (%s)", [version])
                if version == 1:
                    with con.cursor() as cur:
                        cur.executemany("INSERT INTO event_types (tenant_id, event_type,"
                                        " added_by) VALUES (%s, %s, 'seed')"
                                        " ON CONFLICT DO NOTHING", seed_rows())
            current = max(current, version)
        return current
    finally:
        con.execute("SELECT pg_advisory_unlock(%s)", [_MIGRATION_LOCK])


class PostgresStore(Store):
    """A PostgreSQL database named by a ``postgresql://`` URL."""

    def __init__(self, url: str, busy_timeout: float | None = None, held: bool = False):
        self.target = url
        self.busy_timeout = default_busy_timeout() if busy_timeout is None else busy_timeout
        self.held = held
        self._pool: Any = None
        self._listener: CommitListener | None = None
        self._listener_guard = threading.Lock()
        self._migrate()
        if held:
            self.commit_signal()  # a server hears every replica's commits from the start
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(url, min_size=1, max_size=16, open=True,
                                        configure=self._configure,
                                        timeout=max(self.busy_timeout, 1.0))

    def __repr__(self) -> str:
        return f"PostgresStore({_redacted(self.target)!r}{', held' if self.held else ''})"

    def _configure(self, con: Any) -> None:
        """Every connection waits at most the busy timeout for a row lock, and binds
        strings as PostgreSQL text can hold them (``text.nul_safe_str_dumper``)."""
        con.adapters.register_dumper(str, nul_safe_str_dumper())
        con.execute("SELECT set_config('lock_timeout', %s, false)",
                    [f"{int(self.busy_timeout * 1000)}ms"])
        if not self.held:  # a short-lived connection may store a bulk chunk: its temp
            # tables stay in memory (settable only before the session's first temp table)
            con.execute(f"SET temp_buffers = '{BULK_TEMP_BUFFERS}'")
        con.commit()

    def _migrate(self) -> None:
        with _migrate_guard:
            if self.target in _migrated:
                return
            with self._raw_connection(autocommit=True) as con:
                migrate(con)
            _migrated.add(self.target)

    def _raw_connection(self, autocommit: bool = False) -> Any:
        psycopg = psycopg_module()
        try:
            con = psycopg.connect(self.target, autocommit=autocommit, connect_timeout=10)
        except psycopg.Error as e:
            raise StoreError(f"store {_redacted(self.target)}: {e}".strip()) from e
        if not autocommit:
            self._configure(con)
        return con

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if self._pool is not None:
            with self._pool.connection() as con:
                yield con
        else:
            con = self._raw_connection()
            try:
                yield con
            finally:
                con.close()

    @contextmanager
    def _transaction(self, read_only: bool) -> Iterator[Any]:
        psycopg = psycopg_module()
        try:
            with self._connection() as con:
                con.rollback()  # a pooled connection starts clean
                con.isolation_level = (psycopg.IsolationLevel.REPEATABLE_READ if read_only
                                       else psycopg.IsolationLevel.READ_COMMITTED)
                con.read_only = read_only
                try:
                    yield PostgresSession(con, for_update=not read_only)
                    if read_only:
                        con.rollback()
                    else:
                        con.commit()
                except BaseException:
                    con.rollback()
                    raise
        except psycopg.Error as e:
            if busy_error(e):
                raise StoreBusy(f"store busy, try again: {e}".strip()) from e
            raise StoreError(f"store {_redacted(self.target)}: {e}".strip()) from e

    @contextmanager
    def write_chunk(self) -> Iterator[PostgresSession]:
        """A bulk chunk's transaction: its sorts and hashes in memory (``work_mem`` for
        this transaction only)."""
        with self._transaction(read_only=False) as db:
            db.con.execute(f"SET LOCAL work_mem = '{BULK_WORK_MEM}'")
            yield db

    def prepare_chunk(self, rows: Any) -> Any:
        """Fingerprints and the COPY data of a chunk, off the store's critical path."""
        from opswb.store.postgres.staging import prepare

        return prepare(rows)

    def read(self):
        return self._transaction(read_only=True)

    def write(self):
        return self._transaction(read_only=False)

    def commit_signal(self) -> CommitSignal | None:
        """Held (``opswb serve``): raised by a commit of any process that delivers or
        audits (``LISTEN``: ``listen.CommitListener``), so the deliveries feed's long
        poll wakes on a write to another replica. Embedded: None, and a waiting reader
        polls (a short-lived process keeps no listening connection open)."""
        if not self.held:
            return None
        with self._listener_guard:
            if self._listener is None:
                try:
                    self._listener = CommitListener(self.target)
                except psycopg_module().Error as e:
                    raise StoreError(f"store {_redacted(self.target)}: {e}".strip()) from e
            return self._listener.signal

    def close(self) -> None:
        with self._listener_guard:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _redacted(url: str) -> str:
    """The URL without a password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url

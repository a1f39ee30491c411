"""Opening the DuckDB file: one short connection per call, bounded retry, migrations.

DuckDB lets one process hold a file at a time, so embedded mode never keeps a connection
between calls (SPEC §13). ``open_store`` waits with jittered backoff while another process
holds the file and gives up with a message naming the holder and the way out.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb

from opswb.core.errors import StoreBusy, StoreError, one_line
from opswb.store.config import busy_timeout
from opswb.store.seed import seed_rows

_LOCK_RE = re.compile(r"(?i)(could not set lock|conflicting lock)")
# The file attached by another connection of this process (an ingest's chunk, see below).
_IN_PROCESS_RE = re.compile(r"(?i)unique file handle conflict")
_PID_RE = re.compile(r"PID (\d+)")

# Row groups of an ingest's connections, half DuckDB's default of 122,880: a chunk of
# 122,880 arrivals then fills two, which DuckDB compresses at once, one per core (it
# compresses a row group on one thread). Measured on 1M JSON Lines, five interleaved
# pairs: 12% less time (means 17.4 and 15.3 s), a store 8% larger. DuckDB does not keep
# the size in the file, so such a connection attaches the file to an in-memory instance
# (``ATTACH ... (ROW_GROUP_SIZE n)``); other connections keep the default; row groups of
# both sizes live in one table.
INGEST_ROW_GROUP = 61_440

# Writers inside one process share one DuckDB instance; serialising them here turns
# DuckDB's optimistic write-write conflicts into plain waiting.
_write_locks: dict[str, threading.RLock] = {}
_write_locks_guard = threading.Lock()


def write_lock(path: str) -> threading.RLock:
    """The in-process lock that serialises writers of ``path``."""
    key = os.path.abspath(path)
    with _write_locks_guard:
        return _write_locks.setdefault(key, threading.RLock())


def _holder_description(pid: str | None) -> str:
    if not pid:
        return "another process"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
    except OSError:
        argv = ""
    args = [a for a in argv.split("\0") if a]
    # The program by its name, not its path: a virtualenv's long path would fill the
    # description and push out the part that tells the holder apart (a script, `-c` code).
    shown = [os.path.basename(args[0]), *args[1:]] if args else []
    cmd = one_line(" ".join(shown))  # an argument may hold a newline: the message is one line
    # `opswb serve ...`, `python -m opswb.cli serve ...` or `python -m opswb.api serve ...`
    launcher = any(a.endswith("/opswb") or a in ("opswb", "opswb.cli", "opswb.api")
                   for a in args)
    if launcher and "serve" in args:
        return f"an `opswb serve` server (PID {pid}); use its URL as --db / OPSWB_DB instead"
    return f"PID {pid}" + (f" ({cmd[:120]})" if cmd else "")


def _config() -> dict:
    # Without a limit DuckDB may use 80% of RAM; commits of a big store checkpoint, and a
    # bounded pool keeps an ingest under 1 GB (it spills to disk beyond the limit).
    # zstd for every column: measured on 600k events, commits (which checkpoint) took 40%
    # less time than DuckDB's default per-column choice, and the file came out 35% smaller.
    return {"memory_limit": os.environ.get("OPSWB_MEMORY_LIMIT", "256MB"),
            "force_compression": "zstd"}


def _attached(path: str, read_only: bool, row_group_size: int) -> duckdb.DuckDBPyConnection:
    """``path`` attached, as the default database, to a fresh in-memory instance whose
    appends make row groups of ``row_group_size``. Closing the connection releases the
    file, as for a plain connection. Spills go where a plain connection's would."""
    con = duckdb.connect(config={**_config(), "temp_directory": f"{path}.tmp"})
    options = f"ROW_GROUP_SIZE {int(row_group_size)}" + (", READ_ONLY" if read_only else "")
    try:
        quoted = path.replace("'", "''")  # ATTACH takes no bound parameters
        con.execute(f"ATTACH '{quoted}' AS store ({options})")
        con.execute("USE store")
    except BaseException:
        con.close()
        raise
    return con


def _connect(path: str, read_only: bool, row_group_size: int | None) -> duckdb.DuckDBPyConnection:
    if row_group_size and path != ":memory:":
        try:
            return _attached(path, read_only, row_group_size)
        except duckdb.ResourceInUseException as e:
            if not _IN_PROCESS_RE.search(str(e)):
                raise
            # A plain connection of this process has the file: share its instance (the
            # default row groups), as any connection of this process would.
    return duckdb.connect(path, read_only=read_only, config=_config())


def connect_raw(path: str, timeout: float | None = None, read_only: bool = False,
                row_group_size: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open ``path``, retrying while another process holds it, for at most ``timeout`` s.

    ``row_group_size`` (an ingest's ``INGEST_ROW_GROUP``) opens it attached, see above.
    While such a connection is open, this process's other connections wait for it as for
    another process: at most a chunk (about a second)."""
    timeout = busy_timeout() if timeout is None else timeout
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            return _connect(path, read_only, row_group_size)
        except (duckdb.IOException, duckdb.ResourceInUseException) as e:
            msg = str(e)
            in_process = bool(_IN_PROCESS_RE.search(msg))
            if not (in_process or _LOCK_RE.search(msg)):
                raise StoreError(f"cannot open store {path}: {msg}") from e
            if time.monotonic() >= deadline:
                m = _PID_RE.search(msg)
                holder = ("another connection of this process" if in_process
                          else _holder_description(m.group(1) if m else None))
                raise StoreBusy(
                    f"store is busy: {path} is held by {holder}; gave up after {timeout:g}s. "
                    "For several users at once, run `opswb serve --db "
                    f"{path}` and point clients at its URL."
                ) from e
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)  # short waits catch the gaps between chunks
        except duckdb.Error as e:
            raise StoreError(f"cannot open store {path}: {e}") from e


def migrations() -> list[tuple[int, str]]:
    """The numbered schema files under ``opswb/sql``, in order."""
    files = sorted(
        (p for p in resources.files(__package__).joinpath("sql").iterdir() if p.name.endswith(".sql")),
        key=lambda p: p.name,
    )
    return [(int(p.name.split("_", 1)[0]), p.read_text()) for p in files]


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply the schema files not yet recorded in ``schema_version``; return the version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)"
    )
    # Every file not yet recorded, in order: files numbered on parallel branches apply
    # even to a store a later-numbered one already reached.
    done = {v for (v,) in con.execute("SELECT version FROM schema_version").fetchall()}
    current = max(done, default=0)
    for version, sql in migrations():
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if version == 1:
            seed_allowlist(con)  # the seed needs the schema it just created
        current = max(current, version)
    return current


def seed_allowlist(con: duckdb.DuckDBPyConnection) -> int:
    """Fill an empty allowlist from the seed file (or the built-in defaults)."""
    if fetch_one(con.execute("SELECT count(*) FROM event_types"))[0]:
        return 0
    rows = seed_rows()
    con.executemany("INSERT OR IGNORE INTO event_types VALUES (?, ?, 'seed', now())", rows)
    return len(rows)


_migrated: set[str] = set()


@contextmanager
def open_store(path: str, timeout: float | None = None,
               row_group_size: int | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short-lived connection to a migrated store; closed on exit."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = connect_raw(path, timeout, row_group_size=row_group_size)
    try:
        key = os.path.abspath(path)
        if key not in _migrated:
            with write_lock(path):
                migrate(con)
            _migrated.add(key)
        yield con
    except duckdb.Error as e:
        raise StoreError(f"store {path}: {e}") from e
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, rolling back on any error."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def fetch_one(cur: duckdb.DuckDBPyConnection) -> tuple | None:
    """The first row of a result, finishing the result (DuckDB 2 refuses other work on a
    connection whose result was only partly fetched)."""
    rows = cur.fetchall()
    return rows[0] if rows else None

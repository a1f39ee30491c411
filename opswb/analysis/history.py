"""Where history analytics read: the DuckDB views of a store file (``run_sql``).

A PostgreSQL store has no such views yet; ``history_copy`` takes a consistent copy of it
into a DuckDB file (``opswb copy``, ``store.transfer``) for the analytics to read, while
decisions still go through the workbench, to the store itself.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from opswb.store import store_for
from opswb.store.transfer import copy_store


def is_postgres(db: Any) -> bool:
    """Whether ``db`` (a store name or a local workbench) is a PostgreSQL store."""
    return str(getattr(db, "db", db)).lower().startswith(("postgresql://", "postgres://"))


def history_copy(db: Any, path: str | Path | None = None) -> Any:
    """What history analytics can read for ``db``: ``db`` itself for a DuckDB store; for a
    PostgreSQL store, a DuckDB copy of it taken now, at ``path`` (default a new temp
    file), returned as its path. A remote workbench is returned as it is (the analytics
    then say they are local-only)."""
    if getattr(db, "remote", False) or not is_postgres(db):
        return db
    if path is None:
        path = Path(tempfile.mkdtemp(prefix="opswb-history-")) / "history.duckdb"
    source, copy = store_for(str(getattr(db, "db", db))), store_for(str(path))
    try:
        copy_store(source, copy)
    finally:
        source.close()
        copy.close()
    return str(path)

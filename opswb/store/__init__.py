"""Where the data lives: the store seam (``base``) and one package per backend.

``store_for(target)`` picks the backend a store name selects: PostgreSQL for a
``postgresql://`` URL (``postgres/``), DuckDB for a file path (``duckdb/``); the engine
only ever sees ``base.Store`` and ``base.Session``.
"""

from __future__ import annotations

from opswb.core.errors import InvalidRequest
from opswb.store.base import Session, Store
from opswb.store.config import busy_timeout, default_db

__all__ = ["Session", "Store", "busy_timeout", "default_db", "store_for"]


def store_for(target: str, busy_timeout: float | None = None, held: bool = False) -> Store:
    """The store ``target`` names: a ``postgresql://`` (or ``postgres://``) URL, or a
    DuckDB file path (or ``:memory:``).

    ``held``: keep it open for the caller's lifetime (``opswb serve``) instead of opening
    it per call (embedded mode, SPEC §13)."""
    target = str(target)
    scheme = target.split("://", 1)[0].lower() if "://" in target else ""
    if scheme in ("postgresql", "postgres"):
        from opswb.store.postgres.store import PostgresStore

        return PostgresStore(target, busy_timeout, held)
    if scheme:
        raise InvalidRequest(
            f"{scheme}:// stores are not supported by this opswb; give a DuckDB file path or a postgresql:// URL"
            + (" or an opswb serve URL to opswb.connect" if scheme in ("http", "https") else ""))
    from opswb.store.duckdb.store import DuckDBStore

    return DuckDBStore(target, busy_timeout, held)

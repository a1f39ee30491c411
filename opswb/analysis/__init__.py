"""For analysts: decision analytics (``decisions``) and read-only SQL over the store's
documented views (``run_sql``, ``describe_views``: DuckDB files only, SPEC §12; a
PostgreSQL store is read through a DuckDB copy, ``history_copy``)."""

from opswb.analysis.history import history_copy
from opswb.store.duckdb.views import describe_views, run_sql

__all__ = ["describe_views", "history_copy", "run_sql"]

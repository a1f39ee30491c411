"""A chunk's staged rows registered as ``_stage_in``, the table the classification's
statements (and the small path's inserts of more than ``small.VALUES_ROWS`` rows) scan."""

from __future__ import annotations

from typing import Any

import duckdb

from opswb.core.staging import stage_table
from opswb.store.duckdb.connection import INGEST_ROW_GROUP


def staged(con: duckdb.DuckDBPyConnection | None, rows: Any,
           origin: str | list[str] | None) -> Any:
    """``rows`` as the staged Arrow table (with an ``origin`` column when each arrival
    has its own), registered on ``con`` as ``_stage_in`` if given."""
    table = rows if hasattr(rows, "num_rows") else stage_table(rows)
    if isinstance(origin, list):
        import pyarrow as pa

        table = table.append_column("origin", pa.array(origin, pa.string()))
    if con is not None:
        con.register("_stage_in", _batched(table))
    return table


def _batched(table: Any) -> Any:
    """The staged table in record batches of an ingest's row group (zero-copy slices).
    DuckDB scans Arrow batch by batch, so the chunk's statements run on two cores, and
    the raw rows' insert writes a row group per batch, each compressed on its own core.
    (With 16k batches a thread's row group held parts of several, and DuckDB merged them
    on one thread.)"""
    import pyarrow as pa

    return pa.Table.from_batches(table.to_batches(max_chunksize=INGEST_ROW_GROUP),
                                 schema=table.schema)

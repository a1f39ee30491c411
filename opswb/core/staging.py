"""Staged arrivals: the Arrow table every reader produces and every store consumes.

A reader turns each arrival into a tuple of ``envelope.STAGE_COLUMNS`` (its exact text,
whether it is valid, the envelope fields that parsed, the fingerprint when known); a
chunk of them becomes one table numbered by ``seq`` from 1 in arrival order, which a
backend classifies and stores in one transaction.
"""

from __future__ import annotations

import functools
from typing import Any

from opswb.core.envelope import STAGE_COLUMNS


@functools.cache
def stage_schema() -> Any:
    """The Arrow schema of a staged chunk.

    pyarrow is imported on first use: reading paths (the CLI's health, a console page)
    never stage anything and start faster without it. A valid row without ``payload``
    has it in ``text`` (bulk JSON Lines): it is not stored twice.
    """
    import pyarrow as pa

    return pa.schema([("seq", pa.int64())] + [
        (c, pa.bool_() if c == "valid" else pa.string()) for c in STAGE_COLUMNS])


def stage_table(rows: list[tuple]) -> Any:
    """Staged tuples as the Arrow table the classification reads, numbered from 1."""
    import pyarrow as pa

    schema = stage_schema()
    cols = list(zip(*rows)) if rows else [[] for _ in STAGE_COLUMNS]
    arrays = [pa.array(range(1, len(rows) + 1), pa.int64())] + [
        pa.array(col, schema.field(i + 1).type) for i, col in enumerate(cols)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)

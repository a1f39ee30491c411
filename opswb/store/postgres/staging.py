"""A chunk of arrivals on its way into PostgreSQL: fingerprinted, then COPYed to ``_stage``.

Two ways in. A bulk chunk (an Arrow table whose strings hold no NUL, the common case) is
written as CSV by Arrow in one call and sent with one ``COPY … (FORMAT csv)``: no Python
object per value. The rest (a chunk with a NUL somewhere, tuples from the HTTP path, one
origin per arrival) goes row by row, each string as PostgreSQL text can hold it
(``text.storable``) with the exact text kept in ``text_bytes``. Either way the server
numbers the raws (``_stage.raw_id`` defaults to the next ``raw_id_seq`` value, in COPY
order, i.e. arrival order).

``prepare`` does the client's share of a chunk (SPEC §4 fingerprints, the CSV) and can
run on the ingest's parse thread (``Store.prepare_chunk``), while the server stores the
previous chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opswb.core.fingerprint import fingerprint, loads
from opswb.core.staging import stage_table
from opswb.store.postgres.text import NUL, storable

# The stage's columns as COPY fills them; raw_id is the server's.
COLUMNS = ("seq", "tenant_id", "idempotency_key", "event_type", "source", "occurred_at",
           "payload", "text", "valid", "error", "fingerprint")

CREATE_STAGE = """
CREATE TEMP TABLE _stage (seq bigint, raw_id bigint DEFAULT nextval('raw_id_seq'),
    tenant_id text, idempotency_key text, event_type text, source text, occurred_at text,
    payload text, text text, valid boolean, error text, fingerprint text, text_bytes bytea,
    origin text) ON COMMIT DROP
"""


@dataclass
class Prepared:
    """A chunk ready to COPY: its table (fingerprints filled in) and, when no string of it
    holds a NUL, its CSV."""

    table: Any
    csv: Any  # a pyarrow Buffer (sent without a copy), or None

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def prepare(rows: Any) -> Prepared:
    """``rows`` (staged tuples or their Arrow table) fingerprinted, with its CSV."""
    if isinstance(rows, Prepared):
        return rows
    table = rows if hasattr(rows, "num_rows") else stage_table(rows)
    table = _fingerprinted(table)
    return Prepared(table, None if _has_nul(table) else _csv(table))


def _fingerprinted(table: Any) -> Any:
    """``table`` with the SPEC §4 fingerprint of every valid arrival that lacks one."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    fp = table.column("fingerprint")
    todo = pc.and_(table.column("valid"), pc.is_null(fp))
    at = np.flatnonzero(todo.to_numpy(zero_copy_only=False))
    if not len(at):
        return table
    sub = table.select(["event_type", "payload", "text"]).take(pa.array(at))
    types, payloads, texts = (sub.column(c).to_pylist() for c in ("event_type", "payload",
                                                                  "text"))
    fps = [fingerprint(t, loads(p) if p is not None else loads(x)["payload"])
           for t, p, x in zip(types, payloads, texts)]
    column = pc.replace_with_mask(fp.combine_chunks(), todo.combine_chunks(),
                                  pa.array(fps, pa.string()))
    return table.set_column(table.schema.get_field_index("fingerprint"), "fingerprint", column)


def _has_nul(table: Any) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc

    return any(pc.any(pc.match_substring(table.column(f.name), NUL)).as_py()
               for f in table.schema if f.type == pa.string())


def _csv(table: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv

    out = table.select(list(COLUMNS))
    i = out.schema.get_field_index("tenant_id")  # an invalid arrival's is '' (sql/0001)
    out = out.set_column(i, "tenant_id", pc.fill_null(out.column(i), ""))
    sink = pa.BufferOutputStream()
    csv.write_csv(out, sink, csv.WriteOptions(include_header=False, batch_size=16_384))
    return sink.getvalue()


def copy_stage(con: Any, prepared: Prepared, origins: list[str] | None) -> None:
    """Create ``_stage`` and COPY the chunk into it. ``origins``: one per arrival (group
    commit), else the chunk's origin is bound when the raws are written."""
    con.execute(CREATE_STAGE)
    with con.cursor() as cur:
        if prepared.csv is not None and origins is None:
            with cur.copy(f"COPY _stage ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv)") as cp:
                cp.write(memoryview(prepared.csv))
            return
        cols = (*COLUMNS, "text_bytes", "origin")
        with cur.copy(f"COPY _stage ({', '.join(cols)}) FROM STDIN") as cp:
            for row in _rows(prepared.table, origins):
                cp.write_row(row)


def _rows(table: Any, origins: list[str] | None) -> Any:
    """The chunk row by row, as PostgreSQL text can hold it."""
    cols = table.to_pydict()
    for i in range(table.num_rows):
        text = cols["text"][i]
        stored = storable(text)
        yield (cols["seq"][i], storable(cols["tenant_id"][i]) or "",
               *(storable(cols[c][i]) for c in ("idempotency_key", "event_type", "source",
                                                "occurred_at", "payload")),
               stored, cols["valid"][i], storable(cols["error"][i]), cols["fingerprint"][i],
               None if stored == text else text.encode("utf-8", "surrogatepass"),
               origins[i] if origins else None)

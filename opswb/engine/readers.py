"""Inputs to staged chunks: JSON Lines, JSON arrays, CSV, Parquet, DataFrames, iterables.

A reader yields ``Chunk`` objects of staged rows (see ``envelope.stage_row``) together
with the offset just past them (bytes for JSON Lines, elements/rows otherwise), so a
killed ingest can resume where its last committed chunk ended.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opswb.core.envelope import stage_element, stage_row, stage_text
from opswb.core.errors import InvalidRequest
from opswb.core.fingerprint import dumps
from opswb.core.strictjson import BOM, InvalidJSON, check_value, parse, split_elements, strip_bom

# Two of an ingest's row groups (store.INGEST_ROW_GROUP): written straight to the file
# while the chunk is stored, one per core, so commits stay cheap.
DEFAULT_CHUNK_ROWS = 122_880


def chunk_rows() -> int:
    """Arrivals per committed chunk (``OPSWB_CHUNK_ROWS``): 122,880 JSON Lines hold the
    file for about a second and keep an ingest under 750 MB (655–710 MB measured)."""
    try:
        return max(1, int(os.environ.get("OPSWB_CHUNK_ROWS", DEFAULT_CHUNK_ROWS)))
    except ValueError:
        return DEFAULT_CHUNK_ROWS


@dataclass
class Chunk:
    """Staged rows plus the input offset just past the last of them."""

    rows: Any  # staged tuples, or already their Arrow table (see bulkjsonl.py)
    end_offset: int
    nbytes: int = 0

    @property
    def count(self) -> int:
        """How many arrivals the chunk holds."""
        return self.rows.num_rows if hasattr(self.rows, "num_rows") else len(self.rows)


def file_hash(path: str | Path) -> str:
    """sha256 of a file's content: its identity in the ingest ledger."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_kind(path: str | Path) -> str:
    """``jsonl``, ``json``, ``csv`` or ``parquet``: by extension (a ``.jsonl`` or
    ``.ndjson`` file is JSON Lines whatever its first line holds, SPEC §2), else by
    content (a file that starts with ``[`` is a JSON array)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson", ".jsonlines"):
        return "jsonl"
    with open(path, "rb") as f:
        head = strip_bom(f.read(4096)).lstrip()
    return "json" if head.startswith(b"[") else "jsonl"


def first_offset(path: str | Path) -> int:
    """Where a file's content starts: after a UTF-8 byte-order mark, if it has one."""
    with open(path, "rb") as f:
        return len(BOM) if f.read(len(BOM)) == BOM else 0


def decode_line(line: bytes) -> tuple:
    """The staged row of one JSON Lines line (its line end dropped)."""
    return stage_text(line.rstrip(b"\r\n"))


def read_jsonl(path: str | Path, start: int = 0, size: int | None = None) -> Iterator[Chunk]:
    """JSON Lines from byte offset ``start``, line by line; blank lines are not arrivals.

    The reference for ``bulkjsonl.read_jsonl_bulk``, which ingest uses: the tests hold
    the two to the same staged rows."""
    size = size or chunk_rows()
    start = max(start, first_offset(path))
    with open(path, "rb") as f:
        f.seek(start)
        offset = start
        rows: list[tuple] = []
        nbytes = 0
        for line in f:
            offset += len(line)
            nbytes += len(line)
            if not line.strip():
                continue
            rows.append(decode_line(line))
            if len(rows) >= size:
                yield Chunk(rows, offset, nbytes)
                rows, nbytes = [], 0
        if rows or offset > start:
            yield Chunk(rows, offset, nbytes)


def read_ndjson_text(body: bytes) -> list[tuple]:
    """Staged rows of an NDJSON request body."""
    # Only "\n" ends a line (as in a file); a raw "\r" inside a line is JSON whitespace.
    return [decode_line(line) for line in strip_bom(body).split(b"\n") if line.strip()]


def read_json_text(body: bytes) -> list[tuple]:
    """Staged rows of a JSON request body: each element of an array (its own bytes), or
    the one value it holds; elements that are not JSON are invalid arrivals too."""
    return [stage_text(el) for el in split_elements(body)]


def _chunks_of(elements: Iterable[Any], start: int, size: int,
               stage: Any = stage_element) -> Iterator[Chunk]:
    rows: list[tuple] = []
    pos = 0
    for el in elements:
        pos += 1
        if pos <= start:
            continue
        rows.append(stage(el))
        if len(rows) >= size:
            yield Chunk(rows, pos)
            rows = []
    if rows or pos == start:
        yield Chunk(rows, pos)


def read_json_array(path: str | Path, start: int = 0, size: int | None = None) -> Iterator[Chunk]:
    """A JSON array file: each element one arrival, kept as its own bytes (a file that
    holds one value: one arrival). A malformed element is an invalid arrival; the
    elements around it are read as usual."""
    elements = split_elements(Path(path).read_bytes())
    return _chunks_of(elements, start, size or chunk_rows(), stage_text)


def record_envelope(record: dict) -> dict:
    """A tabular row (CSV, Parquet, DataFrame) as an envelope: nulls dropped, a payload
    given as JSON text parsed (a struct payload is already a dict)."""
    obj = {k: v for k, v in record.items() if v is not None and not _is_nan(v)}
    payload = obj.get("payload")
    if isinstance(payload, str):
        try:
            obj["payload"] = parse(payload)
        except InvalidJSON as e:
            if e.rule != "not_json":  # JSON, but not I-JSON: say which rule it broke
                raise
            # not JSON: stays a string, and envelope_error says payload must be an object
    return obj


def _stage_record(record: dict) -> tuple:
    """Stage a tabular row: payload as JSON text (held to ``strictjson.parse``'s rules)
    or as a struct (dict)."""
    text = _row_text(record)
    try:
        obj = record_envelope(record)
        check_value(obj)
        return stage_row(text, obj)
    except InvalidJSON as e:
        return stage_row(text, parse_error=f"{e.rule}: payload text: {str(e)[:300]}")


def _row_text(record: dict) -> str:
    return dumps({k: v for k, v in record.items() if v is not None and not _is_nan(v)})


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def csv_records(path: str | Path) -> list[dict]:
    """The rows of a CSV file with the envelope columns, every value read as text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(
        path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True)
    )
    table = table.cast(pa.schema([(n, pa.string()) for n in table.column_names]))
    return table.to_pylist()


def parquet_records(path: str | Path, batch_rows: int = 65536) -> Iterator[dict]:
    """The rows of a Parquet file, read batch by batch so memory stays flat."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        yield from batch.to_pylist()


def read_csv(path: str | Path, start: int = 0, size: int | None = None) -> Iterator[Chunk]:
    """CSV with the envelope columns; every value read as text."""
    return _chunks_of(csv_records(path), start, size or chunk_rows(), _stage_record)


def read_parquet(path: str | Path, start: int = 0, size: int | None = None) -> Iterator[Chunk]:
    """Parquet, read batch by batch so memory stays flat."""
    size = size or chunk_rows()
    return _chunks_of(parquet_records(path, min(size, 65536)), start, size, _stage_record)


def dataframe_records(df: Any) -> list[dict]:
    """The rows of a pandas DataFrame, missing values as None."""
    return df.astype(object).where(df.notna(), None).to_dict("records")


def read_dataframe(df: Any, size: int | None = None) -> Iterator[Chunk]:
    """A pandas DataFrame, one arrival per row."""
    return _chunks_of(dataframe_records(df), 0, size or chunk_rows(), _stage_record)


def read_elements(elements: Iterable[Any], size: int | None = None) -> Iterator[Chunk]:
    """An iterable of dicts (or anything: a non-object element is an invalid arrival)."""
    return _chunks_of(elements, 0, size or chunk_rows())


# JSON Lines files are read by jsonl_bulk.read_jsonl_bulk (see ingest._file_chunks).
READERS = {"json": read_json_array, "csv": read_csv, "parquet": read_parquet}


def source_kind(source: Any) -> str:
    """What an ingest was given (SPEC §2's inputs), the same for every workbench:
    ``path``, ``paths`` (a list of existing files), ``dataframe``, ``event`` (one dict)
    or ``events`` (any other iterable). Anything else is refused."""
    if isinstance(source, (str, Path)):
        return "path"
    if type(source).__name__ == "DataFrame" and hasattr(source, "to_dict"):
        return "dataframe"
    if isinstance(source, dict):
        return "event"
    if isinstance(source, (list, tuple)) and source and all(
            isinstance(s, Path) or (isinstance(s, str) and os.path.isfile(s)) for s in source):
        return "paths"
    if isinstance(source, Iterable) and not isinstance(source, (bytes, str)):
        return "events"
    raise InvalidRequest(
        f"cannot ingest a {type(source).__name__}: give a path, a DataFrame or an "
        "iterable of events")

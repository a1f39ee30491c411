"""JSON Lines in bulk: numpy splits the lines, one scan reads the envelopes.

The per-line Python path (``readers.read_jsonl``) parses and fingerprints every line at
~20 µs each. Here a chunk of lines becomes one Arrow string column without a Python
object per line, and the envelope fields of every *plain* line are read in bulk: valid
I-JSON, an object whose ``tenant_id``/``idempotency_key``/``event_type`` are non-blank
strings, whose ``payload`` is an object and whose ``source``/``occurred_at`` are strings
or absent. With the C scanner (``core.jsonscan.scan_envelopes``) that is one pass over
the chunk's bytes, the GIL released, which checks the I-JSON rules and takes the fields
in the same pass; without it (the extension is optional) one DuckDB query extracts them
and ``_not_ijson_plain`` checks the rules. Every other line (not JSON, not UTF-8, missing
fields, NaN, duplicate names, lone surrogates, fields that start with whitespace or hold
an escape, ...) goes through ``envelope.stage_row``, so errors and edge cases read
exactly as on the per-line path.

Fingerprints are computed only for arrivals that need one (SPEC §4's "same event"
question only arises for a key seen more than once): here for those whose key arrives
more than once in the chunk (``contested.fingerprint_repeats``), and in ``classify`` for
those whose key the store already holds.
"""

from __future__ import annotations

import functools
import gc
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson

from opswb.core import jsonscan
from opswb.core.envelope import STAGE_COLUMNS, stage_row
from opswb.core.staging import stage_schema, stage_table
from opswb.core.strictjson import MAX_DEPTH, has_dropped_member
from opswb.engine.readers import Chunk, chunk_rows, first_offset
from opswb.store.duckdb.fingerprints import fingerprint_repeats

_WS = b" \t\n\r\x0b\x0c"  # what bytes.strip() strips: a line of only these is blank
_SCAN = 1 << 24  # newline search window (keeps numpy's temporaries small)
# What the per-line path must read: exponents of three digits or more (DuckDB's
# json_extract and orjson both read 1e-400 as 0.0), underflow spelled out, escaped colons.
_UNDERFLOW = re.compile(rb"\d[eE]-\d{3}|0\.0{300}|\\u003[aA]")
_MAX_BYTES = 1 << 28  # a chunk's text at most (offsets are 32-bit; memory stays bounded)

# Two parses per line: five envelope members as JSON texts (try: NULL when the line is not
# JSON) and the payload's type, then cheap text checks on them. The payload itself stays
# in ``text`` (its ``payload`` is NULL): classify.py extracts it where it needs it. A
# string member without a backslash is its text between the quotes; one with escapes is
# decoded by json_extract_string.
_MEMBERS = "['$.tenant_id', '$.idempotency_key', '$.event_type', '$.source', '$.occurred_at']"
_FIELDS = ", ".join(
    f"CASE WHEN m[{i}] IS NULL OR m[{i}] = 'null' THEN NULL"
    f" WHEN contains(m[{i}], chr(92)) THEN json_extract_string(m[{i}], '$')"
    f" ELSE m[{i}][2:-2] END AS {c}"
    for i, c in enumerate(("tenant_id", "idempotency_key", "event_type", "source",
                           "occurred_at"), 1))
_STAGE = f"""
WITH p AS (
    SELECT seq, text, CASE WHEN left(text, 1) = '{{' AND NOT contains(text, 'NaN')
                      AND NOT contains(text, 'Infinity')
                     THEN try(json_extract(text, {_MEMBERS}))::VARCHAR[] END AS m,
           try(json_type(text, '$.payload')) AS ptype
    FROM _lines
), q AS (
    SELECT seq, text, m, ptype, coalesce(
        left(m[1], 1) = '"' AND left(m[2], 1) = '"' AND left(m[3], 1) = '"'
        AND ptype = 'OBJECT'
        AND (m[4] IS NULL OR m[4] = 'null' OR left(m[4], 1) = '"')
        AND (m[5] IS NULL OR m[5] = 'null' OR left(m[5], 1) = '"')
        AND ascii(m[1][2]) BETWEEN 33 AND 126 AND m[1][2] NOT IN (chr(34), chr(92))
        AND ascii(m[2][2]) BETWEEN 33 AND 126 AND m[2][2] NOT IN (chr(34), chr(92))
        AND ascii(m[3][2]) BETWEEN 33 AND 126 AND m[3][2] NOT IN (chr(34), chr(92)), false) AS plain
    FROM p
)
SELECT seq, plain, {{suspect}} AS suspect, {_FIELDS}
FROM q
"""
# Lines that may hold a number DuckDB or orjson would misread, or an escaped colon (which
# would fool the Python duplicate count): looked at again with ``_UNDERFLOW``. The C
# scanner checks numbers itself and needs no such hint.
_SUSPECT = ("plain AND (contains(text, '\\u003') OR contains(text, 'e-')"
            " OR contains(text, 'E-') OR contains(text, '.0000000000'))")

@functools.cache
def _pa() -> Any:
    import pyarrow as pa

    return pa


def _np() -> Any:
    import numpy as np

    return np


def _newlines(buf: bytes) -> Any:
    """Positions of every b"\\n" in ``buf`` (int64), found window by window."""
    np = _np()
    arr = np.frombuffer(buf, dtype=np.uint8)
    parts = [np.flatnonzero(arr[i:i + _SCAN] == 10) + i for i in range(0, len(arr), _SCAN)]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _lines_array(buf: bytes, nl: Any) -> Any:
    """The non-blank lines of ``buf`` that end at the newlines ``nl`` (its first ones), as
    an Arrow binary array without their line ends. Bytes after the last of them are
    ignored (the next chunk reads them again)."""
    np, pa = _np(), _pa()
    n = len(nl)
    # A line end may carry \r's (bytes.rstrip(b"\r\n") semantics). find() is a memchr,
    # ~5x faster than looking for the pair; most files have no \r at all.
    if buf.find(b"\r") >= 0 and b"\r\n" in buf:
        buf = buf[:int(nl[-1]) + 1]
        while b"\r\n" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        nl = _newlines(buf)
    data = buf.replace(b"\n", b"")
    del buf
    offsets = np.empty(n + 1, dtype=np.int32)
    offsets[0] = 0
    offsets[1:] = nl - np.arange(n, dtype=np.int64)
    lines = pa.BinaryArray.from_buffers(pa.binary(), n,
                                        [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    # Blank lines are not arrivals: empty, or whitespace only (checked one by one).
    lengths = offsets[1:] - offsets[:-1]
    heads = np.zeros(n, np.uint8)
    full = lengths > 0
    heads[full] = np.frombuffer(data, dtype=np.uint8)[offsets[:-1][full]]
    suspects = np.flatnonzero(~full | np.isin(heads, list(_WS)))
    blank = [int(i) for i in suspects if not data[offsets[i]:offsets[i + 1]].strip(_WS)]
    if blank:
        keep = np.ones(n, bool)
        keep[blank] = False
        lines = lines.filter(pa.array(keep))
    return lines


_SUB_BATCH = 4096  # lines parsed by one orjson call in _not_ijson_plain


def _check_sub_batch(data: bytes, cuts: list[int], idx: list[int], bad: Any) -> None:
    """Mark in ``bad`` the lines ``idx`` (spans of ``data`` at ``cuts``) that orjson
    refuses or reads with a member dropped: in one parse when none is (the usual case)."""
    parts = [data[cuts[i]:cuts[i + 1]] for i in idx]
    joined = b"[" + b",".join(parts) + b"]"
    try:
        if not has_dropped_member(joined, orjson.loads(joined)):
            return
    except orjson.JSONDecodeError:
        pass
    for i, part in zip(idx, parts):
        try:
            bad[i] = has_dropped_member(part, orjson.loads(part))
        except orjson.JSONDecodeError:
            bad[i] = True


def _not_ijson_plain(text: Any, plain: Any, suspect: Any) -> Any:
    """Of the lines DuckDB found plain, those that must take the per-line path after all
    (a numpy bool mask over every line): nested more than ``MAX_DEPTH`` by a bracket
    count; holding a number DuckDB or orjson would misread (an exponent of three digits
    or more, ``_UNDERFLOW``: looked for in the lines DuckDB found ``suspect``) or an
    escaped colon; a duplicate member name anywhere, or anything else orjson refuses
    that DuckDB let through (a trailing comma, say). With the C scanner this is
    ``_not_ijson_native``; without it, duplicates are found sub-batch by sub-batch: one
    orjson parse of the lines as one array, one dump, and their colons counted
    (``strictjson.has_dropped_member``); only a sub-batch that fails is looked at line
    by line."""
    np = _np()
    n = len(text)
    data, offsets = _text_spans(text)
    data = bytes(data)
    arr = np.frombuffer(data, np.uint8)
    # Brackets per line: their positions, counted by line (a cumsum over every byte is
    # ten times slower).
    at = np.flatnonzero((arr == 91) | (arr == 123))
    bad = np.bincount(np.searchsorted(offsets, at, side="right") - 1, minlength=n)[:n] \
        > MAX_DEPTH
    cuts = offsets.tolist()  # Python ints: slicing with numpy scalars is slow
    for i in np.flatnonzero(suspect).tolist():
        bad[i] = bad[i] or _UNDERFLOW.search(data, cuts[i], cuts[i + 1]) is not None
    todo = np.flatnonzero(plain & ~bad).tolist()
    cuts = offsets.tolist()  # Python ints: slicing with numpy scalars is slow
    gc_was_on = gc.isenabled()
    gc.disable()  # thousands of fresh dicts per sub-batch: the cyclic GC doubled the time
    try:
        for b in range(0, len(todo), _SUB_BATCH):
            _check_sub_batch(data, cuts, todo[b:b + _SUB_BATCH], bad)
    finally:
        if gc_was_on:
            gc.enable()
    return bad


def _text_spans(text: Any) -> tuple[memoryview, Any]:
    """The bytes of a string array's lines, in place, and its offsets from 0 (int64)."""
    np = _np()
    n = len(text)
    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset:text.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    return memoryview(text.buffers()[2])[start:end], offsets.astype(np.int64) - start


def _fields_native(text: Any) -> tuple[Any, dict[str, Any]]:
    """``(plain, fields)`` of a chunk's lines from the C scanner's one pass
    (``jsonscan.scan_envelopes``): a clean line's envelope needs no other parse."""
    np, pa = _np(), _pa()
    n = len(text)
    flags, found = jsonscan.scan_envelopes(*_text_spans(text))
    fields = {}
    for name, (offsets, data, valid) in zip(jsonscan.ENVELOPE_FIELDS, found):
        bitmap = np.packbits(np.frombuffer(valid, np.uint8), bitorder="little")
        fields[name] = pa.Array.from_buffers(pa.string(), n, [
            pa.py_buffer(bitmap), pa.py_buffer(offsets), pa.py_buffer(data)])
    return np.frombuffer(flags, np.uint8).astype(bool), fields


def _fields_duckdb(con: duckdb.DuckDBPyConnection, text: Any) -> tuple[Any, dict[str, Any]]:
    """``(plain, fields)`` of a chunk's lines without the C scanner: DuckDB extracts the
    envelopes (``_STAGE``), then ``_not_ijson_plain`` holds the plain ones to I-JSON."""
    pa = _pa()
    n = len(text)
    lines_table = pa.table({"seq": pa.array(_np().arange(1, n + 1, dtype="int64")),
                            "text": text})
    # Record batches of 16k rows: DuckDB spreads an Arrow scan over them (zero-copy).
    con.register("_lines", pa.Table.from_batches(lines_table.to_batches(max_chunksize=16_384)))
    try:
        staged = con.sql(_STAGE.replace("{suspect}", _SUSPECT)).to_arrow_table()
    finally:
        con.unregister("_lines")
    # DuckDB keeps insertion order (preserve_insertion_order); the columns below are
    # matched to ``text`` by position, so that is checked, not assumed.
    seqs = staged.column("seq").to_numpy()
    if len(seqs) != n or (n and not (_np().diff(seqs) > 0).all()):
        staged = staged.sort_by("seq")
        if staged.num_rows != n:
            raise RuntimeError(f"staging returned {staged.num_rows} rows for {n} lines")
    plain = staged.column("plain").combine_chunks().to_numpy(zero_copy_only=False)
    suspect = staged.column("suspect").combine_chunks().to_numpy(zero_copy_only=False)
    plain = plain & ~_not_ijson_plain(text, plain, suspect)
    return plain, {c: staged.column(c).combine_chunks() for c in jsonscan.ENVELOPE_FIELDS}


def _stage_lines(con: duckdb.DuckDBPyConnection, lines: Any) -> Any:
    """The staging table (``seq`` + ``STAGE_COLUMNS``) of a chunk's lines."""
    pa = _pa()
    import pyarrow.compute as pc

    try:
        text = lines.cast(pa.string())  # validates UTF-8 for the whole chunk at C speed
    except pa.ArrowInvalid:
        # Some line is not UTF-8: this chunk takes the per-line path.
        from opswb.engine.readers import decode_line

        return stage_table([decode_line(b.as_py()) for b in lines])
    n = len(text)
    plain, fields = _fields_native(text) if jsonscan.NATIVE else _fields_duckdb(con, text)
    schema = stage_schema()
    odd = pa.array(~plain)
    odd_at = pc.indices_nonzero(odd).to_pylist()
    fixes = [stage_row(text[i].as_py()) for i in odd_at]
    cols = {"seq": pa.array(_np().arange(1, n + 1, dtype="int64")), "text": text}
    for j, c in enumerate(STAGE_COLUMNS):
        if c == "text":
            continue
        typ = schema.field(c).type
        if c == "valid":
            base = pa.array(_np().ones(n, bool))
        elif c in ("fingerprint", "error", "payload"):
            base = pa.nulls(n, typ)
        else:
            base = fields[c].cast(typ)
        if fixes:
            base = pc.replace_with_mask(base, odd, pa.array([r[j] for r in fixes], typ))
        cols[c] = base
    table = pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)
    return fingerprint_repeats(con, table)


def read_jsonl_bulk(path: str | Path, start: int = 0, size: int | None = None) -> Iterator[Chunk]:
    """``readers.read_jsonl``'s chunks (as Arrow stage tables), staged in bulk.

    A chunk is the first ``size`` lines (blank ones included) from its start offset, or
    as many whole lines as fit in ``_MAX_BYTES`` when they are long: the same lines
    whatever offset a (resumed) ingest began at. It comes from one read; what follows its
    last line is read again by the next chunk, so nothing is copied twice.
    """
    size = size or chunk_rows()
    start = max(start, first_offset(path))  # a byte-order mark is encoding, not a line
    con = duckdb.connect(config={"threads": 2, "memory_limit": "256MB"})
    try:
        with open(path, "rb") as f:
            offset, avg, limit = start, 512, _MAX_BYTES
            while True:
                f.seek(offset)
                want = max(min(size * avg, limit), 1 << 16)
                buf = f.read(want)
                if not buf:
                    return
                eof = len(buf) < want
                nl = _newlines(buf)
                rest = eof and len(nl) <= size  # this read holds the rest of the file
                if len(nl) >= size:
                    nl = nl[:size]
                elif not eof and not len(nl):  # one line longer than the window
                    limit = avg = want * 2
                    continue
                elif not eof and want < limit:  # lines longer than guessed: read more
                    avg = max(avg + 1, want * 5 // (4 * len(nl)))
                    continue
                limit = _MAX_BYTES
                cut = int(nl[-1]) + 1 if len(nl) else 0
                if rest and cut < len(buf):  # a last line without a line end
                    cut = len(buf)
                    buf += b"\n"
                    nl = _newlines(buf)
                lines = _lines_array(buf, nl)
                del buf
                offset += cut
                avg = max(64, cut * 11 // (10 * max(1, len(nl))) + 1)
                table = _stage_lines(con, lines) if len(lines) else None
                if table is not None or rest:
                    yield Chunk(table if table is not None else [], offset, cut)
                if rest:
                    return
    finally:
        con.close()

"""``opswb deliveries``: the outbox for downstream consumers (SPEC §11), read with
``wb.deliveries`` page after page by following ``next_cursor``.

On stdout each delivery is one line of JSON, exactly the item ``GET /v1/deliveries``
answers. ``--out FILE.jsonl`` writes the same lines to a file, ``--out FILE.parquet`` a
Parquet table (``payload`` as JSON text, ``delivered_at`` a UTC timestamp), and prints a
one-line summary with the cursor to continue from. ``--follow`` keeps reading as
deliveries commit — a long poll against a serve URL, polling against a file — until
Ctrl-C or SIGTERM, which end it cleanly (a Parquet file is closed and readable).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

PAGE = 1000
FOLLOW_WAIT_REMOTE = 25.0  # seconds a long poll waits on the server (its limit is 30)
FOLLOW_WAIT_LOCAL = 5.0  # an embedded store polls inside this (workbench.feed)
_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def deliveries(
    db: Annotated[str | None, typer.Option(
        "--db", help="Store path or `opswb serve` URL (default OPSWB_DB, then "
                     "data/opswb.duckdb).")] = None,
    after: Annotated[str | None, typer.Option(
        "--after", help="Cursor: the last delivery id already read (default: the start).")]
    = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="One tenant only.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="Stop after this many deliveries.")] = None,
    follow: Annotated[bool, typer.Option(
        "--follow", help="Keep reading as new deliveries commit (Ctrl-C to stop).")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write to FILE.jsonl or FILE.parquet instead of stdout.")] = None,
) -> None:
    """Read the outbox (deliveries in delivery order) as JSON lines, or export it."""
    import opswb

    kind = _out_kind(out)
    sink: Any = None  # opened after the first answer: a refused call leaves no file
    wb = opswb.connect(db)
    wait = (FOLLOW_WAIT_REMOTE if wb.remote else FOLLOW_WAIT_LOCAL) if follow else 0
    written, cursor = 0, after or "0"
    try:
        with _sigterm_as_interrupt():
            while limit is None or written < limit:
                size = PAGE if limit is None else min(PAGE, limit - written)
                page = wb.deliveries(after=cursor, tenant_id=tenant, limit=size, wait=wait)
                sink = sink or _open_sink(out, kind)
                sink.write(page["items"])
                written, cursor = written + len(page["items"]), page["next_cursor"]
                if len(page["items"]) < size and not follow:
                    break
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # the reader left (`| head`): a normal end of a stream
        if out is not None:
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
    finally:
        if sink is not None:
            sink.close()
        wb.close()
    if out is not None and sink is not None:
        typer.echo(f"wrote {written} deliveries to {out} ({sink.kind}); "
                   f"continue with --after {cursor}")


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM ends a follow as Ctrl-C does: the output is closed, the exit clean."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _out_kind(out: Path | None) -> str | None:
    if out is None:
        return None
    kind = _FORMATS.get(out.suffix.lower())
    if kind is None:
        raise ValueError(f"--out {out}: give a .jsonl, .ndjson or .parquet file")
    return kind


def _open_sink(out: Path | None, kind: str | None) -> Any:
    if out is None:
        return _Lines(sys.stdout, close=False)
    if kind == "jsonl":
        return _Lines(open(out, "w", encoding="utf-8"), close=True)
    return _Parquet(out)


class _Lines:
    """One delivery per line, flushed per page (a follower's reader sees each at once)."""

    kind = "JSON Lines"

    def __init__(self, stream: Any, close: bool):
        self.stream, self._close = stream, close

    def write(self, items: list[dict]) -> None:
        if items:
            self.stream.write("".join(json.dumps(i, ensure_ascii=False) + "\n"
                                      for i in items))
            self.stream.flush()

    def close(self) -> None:
        if self._close:
            self.stream.close()


class _Parquet:
    """A Parquet table, a row group per page; readable once closed."""

    kind = "Parquet"

    def __init__(self, path: Path):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.schema = pa.schema([
            ("delivery_id", pa.string()), ("tenant_id", pa.string()),
            ("idempotency_key", pa.string()), ("event_type", pa.string()),
            ("payload", pa.string()), ("raw_id", pa.string()), ("replay", pa.bool_()),
            ("exception_id", pa.string()), ("delivered_at", pa.timestamp("us", tz="UTC")),
        ])
        self.writer = pq.ParquetWriter(str(path), self.schema)

    def write(self, items: list[dict]) -> None:
        if not items:
            return
        from datetime import datetime

        columns = {name: [i[name] for i in items] for name in self.schema.names}
        columns["payload"] = [json.dumps(p, ensure_ascii=False) for p in columns["payload"]]
        columns["delivered_at"] = [datetime.fromisoformat(t) for t in columns["delivered_at"]]
        self.writer.write_table(self.pa.table(columns, schema=self.schema))

    def close(self) -> None:
        self.writer.close()

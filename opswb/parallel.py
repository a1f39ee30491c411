"""Parsing a large JSON Lines file in a second process while this one stores chunks.

Parsing and fingerprinting are Python and hold the GIL; storing is DuckDB. On a thread the
two still contend for the GIL; in a second process they overlap on two cores. The child
(`python -m opswb.parallel PATH OFFSET`) writes each chunk to its stdout as a small header
and the chunk's Arrow staging table in IPC form; the pipe's back-pressure keeps it at most
a chunk ahead, and it ends with a broken pipe when the parent goes away. A plain
subprocess, not multiprocessing: spawning would re-run the caller's ``__main__``.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .readers import Chunk, read_jsonl

_HEADER = struct.Struct("<qqq")  # end_offset, nbytes, length of the IPC payload


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError
    return data


def jsonl_chunks_in_subprocess(path: str | Path, start: int = 0) -> Iterator[Chunk]:
    """``read_jsonl`` chunks (rows as Arrow tables), parsed by a child process."""
    import pyarrow as pa

    # The child imports this very package, wherever the parent found it.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent)] + [p for p in [env.get("PYTHONPATH")] if p])
    errors = tempfile.TemporaryFile()  # a file, not a pipe: a chatty child never blocks
    child = subprocess.Popen([sys.executable, "-m", "opswb.parallel", str(path), str(start)],
                             stdout=subprocess.PIPE, stderr=errors, env=env)
    try:
        while True:
            try:
                end, nbytes, size = _HEADER.unpack(_read_exact(child.stdout, _HEADER.size))
            except EOFError:
                break
            table = pa.ipc.open_stream(_read_exact(child.stdout, size)).read_all()
            yield Chunk(table, end, nbytes)
        if child.wait() != 0:
            errors.seek(0)
            err = errors.read().decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(f"parsing {path} failed: {err[-1] if err else child.returncode}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        errors.close()


def _serve(path: str, start: int) -> None:
    import pyarrow as pa

    from .classify import stage_table

    out = sys.stdout.buffer
    for chunk in read_jsonl(path, start):
        table = stage_table(chunk.rows)
        end, nbytes = chunk.end_offset, chunk.nbytes
        del chunk  # drop the Python rows before the reader builds the next chunk
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        del table
        payload = sink.getvalue()
        out.write(_HEADER.pack(end, nbytes, payload.size))
        out.write(payload)
        out.flush()
        del payload

if __name__ == "__main__":
    try:
        _serve(sys.argv[1], int(sys.argv[2]))
    except BrokenPipeError:  # the parent stopped reading: nothing left to do
        sys.exit(0)

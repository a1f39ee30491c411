"""``opswb copy --from SRC --to DST``: a whole store, audit trail included, between any
two backends (SPEC §14): a DuckDB file or a ``postgresql://`` URL on either side.

The destination must be new or freshly initialised: one holding anything is refused
and left as it was. The copy streams table by table in chunks and commits the
destination once, at the end, so an interrupted copy leaves it as it was too.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

Source = Annotated[str, typer.Option(
    "--from", help="The store to copy: a DuckDB file or a postgresql:// URL.")]
Destination = Annotated[str, typer.Option(
    "--to", help="Where to: a new DuckDB file or an empty postgresql:// database.")]


def copy(source: Source, destination: Destination,
         json_: Annotated[bool, typer.Option("--json", help="Print the rows copied per table"
                                             " as JSON.")] = False) -> None:
    """Copy a whole store (raws, keys, exceptions, deliveries, audit, allowlist, policies,
    tokens by hash, snapshots, ledger) into an empty store of either backend."""
    import opswb

    def progress(table: str, rows: int) -> None:
        sys.stderr.write(f"\r{table}: {rows:,} rows\033[K")

    counts = opswb.copy(source, destination,
                        on_progress=progress if sys.stderr.isatty() and not json_ else None)
    if sys.stderr.isatty() and not json_:
        sys.stderr.write("\r\033[K")
    if json_:
        typer.echo(json.dumps({"copied": counts}, indent=2))
        return
    width = max(len(t) for t in counts)
    for table, rows in counts.items():
        typer.echo(f"{table:<{width}}  {rows:>12,}")
    typer.echo(f"copied {sum(counts.values()):,} rows into {_redacted(destination)}")


def _redacted(target: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(target)
    if parts.password:
        return target.replace(f":{parts.password}@", ":***@")
    return target

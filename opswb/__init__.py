"""opswb: an ops exception workbench for payment and order events.

    import opswb
    wb = opswb.connect("data/opswb.duckdb")      # or "http://127.0.0.1:8765", token=...
    wb.ingest("data/sample_events.jsonl")
    wb.health()
"""

from __future__ import annotations

from opswb.core.errors import (
    Conflict,
    InvalidRequest,
    LocalOnly,
    NotFound,
    OpswbError,
    RemoteError,
    StoreBusy,
    StoreError,
    Unauthorized,
)
from opswb.core.models import Action, KeyState, ReasonCode, Status
from opswb.workbench.local import LocalWorkbench

__version__ = "0.1.0"


def connect(db: str | None = None, token: str | None = None,
            busy_timeout: float | None = None):
    """A workbench over ``db``: a DuckDB path (embedded) or an ``opswb serve`` URL.

    ``db`` defaults to ``OPSWB_DB``, then ``data/opswb.duckdb``; ``token`` to
    ``OPSWB_API_TOKEN`` for a URL.
    """
    from opswb.store.config import default_db

    target = str(db or default_db())
    if target.startswith(("http://", "https://")):
        from opswb.workbench.remote import RemoteWorkbench

        return RemoteWorkbench(target, token=token)
    return LocalWorkbench(target, busy_timeout=busy_timeout)


def copy(source: str, destination: str, on_progress=None) -> dict[str, int]:
    """Copy a whole store, audit trail included, between any two backends (SPEC §14):
    a DuckDB file or a ``postgresql://`` URL each. ``destination`` must be new or freshly
    initialised (a store holding anything is refused, ``Conflict``, and left as it was).
    Returns the rows copied per table; ``on_progress(table, rows_so_far)`` follows it."""
    from pathlib import Path

    from opswb.store import store_for
    from opswb.store.transfer import copy_store

    for name, target in (("source", str(source)), ("destination", str(destination))):
        if target.startswith(("http://", "https://")):
            raise InvalidRequest(f"the {name} {target} is an opswb serve URL: copy works on"
                                 " stores (a DuckDB file or a postgresql:// URL)")
    if "://" not in str(source) and not Path(source).exists():
        raise InvalidRequest(f"no store at {source}")
    src = store_for(str(source))
    dst = store_for(str(destination))
    try:
        return copy_store(src, dst, on_progress=on_progress)
    finally:
        src.close()
        dst.close()


__all__ = [
    "Action", "Conflict", "InvalidRequest", "KeyState", "LocalOnly", "LocalWorkbench",
    "NotFound", "OpswbError", "ReasonCode", "RemoteError", "Status", "StoreBusy",
    "StoreError", "Unauthorized", "__version__", "connect", "copy",
]

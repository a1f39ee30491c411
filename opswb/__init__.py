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


__all__ = [
    "Action", "Conflict", "InvalidRequest", "KeyState", "LocalOnly", "LocalWorkbench",
    "NotFound", "OpswbError", "ReasonCode", "RemoteError", "Status", "StoreBusy",
    "StoreError", "Unauthorized", "__version__", "connect",
]

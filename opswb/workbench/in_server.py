"""The workbench inside ``opswb serve``: the local workbench over a held store.

Embedded mode opens the store per call (SPEC §13); the server owns it instead, so it
opens it once (``store_for(..., held=True)``) and closes it at shutdown.
"""

from __future__ import annotations

from opswb.store import store_for
from opswb.workbench.local import LocalWorkbench


class ServedWorkbench(LocalWorkbench):
    """A ``LocalWorkbench`` over a store held for the server's lifetime."""

    def __init__(self, db: str, busy_timeout: float | None = None):
        super().__init__(store=store_for(db, busy_timeout, held=True),
                         busy_timeout=busy_timeout)


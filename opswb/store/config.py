"""Which store, and how long to wait for it: the settings every backend shares."""

from __future__ import annotations

import os

DEFAULT_DB = "data/opswb.duckdb"
DEFAULT_BUSY_TIMEOUT = 10.0


def default_db() -> str:
    """The store named by ``OPSWB_DB``, else ``data/opswb.duckdb``."""
    return os.environ.get("OPSWB_DB") or DEFAULT_DB


def busy_timeout() -> float:
    """Seconds to wait for a busy store (``OPSWB_BUSY_TIMEOUT``, default 10)."""
    try:
        return float(os.environ.get("OPSWB_BUSY_TIMEOUT", DEFAULT_BUSY_TIMEOUT))
    except ValueError:
        return DEFAULT_BUSY_TIMEOUT

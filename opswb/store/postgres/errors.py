"""psycopg, imported when a PostgreSQL store is first used, and which of its errors
mean "busy"."""

from __future__ import annotations

from typing import Any

from opswb.core.errors import InvalidRequest


def psycopg_module() -> Any:
    try:
        import psycopg
    except ImportError:
        raise InvalidRequest("a postgresql:// store needs psycopg: pip install "
                             "'opswb[postgres]'") from None
    return psycopg


def busy_error(e: Exception) -> bool:
    """Whether a database error means "busy, try again" (lock wait, deadlock,
    serialization failure) rather than a fault."""
    psycopg = psycopg_module()
    return isinstance(e, (psycopg.errors.SerializationFailure,
                          psycopg.errors.DeadlockDetected,
                          psycopg.errors.LockNotAvailable,
                          psycopg.errors.QueryCanceled))

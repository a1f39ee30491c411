"""The one error tree of opswb.

    OpswbError                  anything opswb refuses or cannot do
    ├── InvalidRequest          the request itself is wrong (HTTP 422)
    ├── NotFound                an id that names nothing (HTTP 404)
    ├── Conflict                the state forbids it, e.g. not open any more (HTTP 409)
    ├── Forbidden               the caller's role or identity may not do it (HTTP 403)
    ├── StoreError              the DuckDB store failed underneath us
    │   └── StoreBusy           another process holds the file past the wait bound
    ├── RemoteError             a serve-mode call failed in transport or answered 5xx
    │   └── Unauthorized        the server refused the bearer token (HTTP 401)
    └── LocalOnly               an analyst convenience that needs the file itself

Duplicates and conflicts between events are *outcomes* of ingest, returned as values,
never raised.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """``text`` with every run of control characters (newlines, tabs, escapes) as one
    space: a message printed on one line stays one line, whole."""
    return _CONTROL.sub(" ", text).strip()


class OpswbError(Exception):
    """Base class of every error opswb raises on purpose."""

    http_status = 500


class InvalidRequest(OpswbError):
    """The request is malformed or not allowed; nothing was changed."""

    http_status = 422


class NotFound(OpswbError):
    """The id names no exception, raw or entry."""

    http_status = 404


class Conflict(OpswbError):
    """The target's state forbids the request (already resolved, already open, ...)."""

    http_status = 409


class Forbidden(OpswbError):
    """The caller may not do this: beyond its role, or its own proposal (four eyes)."""

    http_status = 403


class StoreError(OpswbError):
    """The underlying DuckDB store failed; the message says how."""


class StoreBusy(StoreError):
    """Another process held the store file for longer than the wait bound."""

    http_status = 503


class RemoteError(OpswbError):
    """A call to an `opswb serve` URL failed in transport or with a server error."""


class Unauthorized(RemoteError):
    """The server refused the bearer token."""

    http_status = 401


class LocalOnly(OpswbError):
    """The call needs direct access to the store file and is not available remotely."""

    http_status = 400

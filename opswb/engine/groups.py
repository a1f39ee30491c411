"""Failure groups (issue 17; SPEC §9 ``GET /v1/exceptions/groups``): the exception queue
by reason and what the exceptions share, for the API, CLI, console and notebooks alike.

A group is a reason plus a signature — the unknown event type; the sorted JSON-Pointer
paths that differed between FIRST and the arrival that opened the conflict; the rule an
invalid arrival broke — and its ``group_id`` (``unknown-…``, ``conflict-…``,
``invalid-…``) is a filter wherever the queue's filters are (list, bulk resolve, CLI
``--group``). The store counts them set-wise (``Session.failure_groups``); this module
checks the request and pages.
"""

from __future__ import annotations

import re

from opswb.core.errors import InvalidRequest
from opswb.core.models import ReasonCode
from opswb.store.base import Session

DEFAULT_PAGE = 50
MAX_PAGE = 1000
STATUSES = ("open", "resolved", "all")
_GROUP_ID = re.compile(r"(?:unknown|conflict|invalid)-[0-9a-f]{16}")
_CURSOR = re.compile(r"([1-9][0-9]{0,18}):((?:unknown|conflict|invalid)-[0-9a-f]{16})")


def check_group(group: str | None) -> str | None:
    """``group`` as a filter value: None or a well-formed group id, else refused."""
    if group in (None, ""):
        return None
    if not isinstance(group, str) or not _GROUP_ID.fullmatch(group):
        raise InvalidRequest(
            f"invalid group {group!r}: a group id looks like unknown-0123456789abcdef "
            "(see opswb groups or GET /v1/exceptions/groups)")
    return group


def check_status(status: str | None) -> str | None:
    """A queue status filter, None for all."""
    if status in (None, "", "all"):
        return None
    if status not in STATUSES:
        raise InvalidRequest(f"invalid status {status!r}: use open, resolved or all")
    return status


def _check_reason(reason_code: str | None) -> str | None:
    if reason_code in (None, ""):
        return None
    try:
        return ReasonCode(reason_code).value
    except ValueError:
        raise InvalidRequest(f"invalid reason_code {reason_code!r}: use one of "
                             f"{', '.join(r.value for r in ReasonCode)}") from None


def _parse_cursor(cursor: str | None) -> tuple[int, str] | None:
    if cursor in (None, ""):
        return None
    m = _CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None
    if m is None:
        raise InvalidRequest(f"invalid cursor {cursor!r}")
    return int(m.group(1)), m.group(2)


def group_page(db: Session, status: str | None = "open", tenant_id: str | None = None,
               reason_code: str | None = None, limit: int = DEFAULT_PAGE,
               cursor: str | None = None) -> dict:
    """One page of failure groups, largest first: ``{"items", "next_cursor"}``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
    after = _parse_cursor(cursor)
    items = db.failure_groups(check_status(status), tenant_id or None,
                              _check_reason(reason_code), limit + 1, after)
    more = len(items) > limit
    items = items[:limit]
    last = items[-1] if more else None
    return {"items": items,
            "next_cursor": f"{last['count']}:{last['group_id']}" if last else None}

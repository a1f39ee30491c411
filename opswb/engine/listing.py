"""One page of the exception queue: filters, sort, search and a cursor that stays correct.

A cursor is opaque to callers. For the default sort (``age``, oldest first) it is the
last row's ``raw_id``, as it always was; for the other sorts it also carries the sort
and the last row's sort value (a keyset: a row opened or resolved meanwhile neither
repeats nor skips a row). A cursor from one sort is refused by another.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from opswb.core.errors import InvalidRequest
from opswb.core.records import parse_id
from opswb.engine import groups as groups_mod
from opswb.store.listing import SORTS

MAX_PAGE = 10_000
_FIELD = {"tenant": "tenant_id", "reason": "reason_code", "key": "idempotency_key"}


def check_sort(sort: str | None) -> str:
    """``sort`` checked: ``age`` (oldest first, the default), ``tenant``, ``reason`` or
    ``key``, with a leading ``-`` for descending."""
    if sort in (None, ""):
        return "age"
    if not isinstance(sort, str) or sort.lstrip("-") not in SORTS or sort.count("-") > 1:
        raise InvalidRequest(f"invalid sort {sort!r}: use one of "
                             + ", ".join(f"{s}, -{s}" for s in SORTS)
                             + " (age: oldest first; -age: newest first)")
    return sort


def parse_cursor(cursor: str | None, sort: str) -> tuple[int | None, str | None]:
    """``(after_raw_id, after_value)`` from a cursor made by ``next_cursor`` for ``sort``."""
    if cursor in (None, ""):
        return None, None
    if sort.lstrip("-") == "age":
        after = parse_id(cursor)
        if after is None:
            raise InvalidRequest(f"invalid cursor {cursor!r}")
        return after, None
    try:
        made_for, raw_id, value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise InvalidRequest(f"invalid cursor {cursor!r}") from None
    after = parse_id(raw_id)
    if made_for != sort or after is None or not isinstance(value, str):
        raise InvalidRequest(f"invalid cursor {cursor!r} for sort {sort!r}: "
                             "start again without a cursor")
    return after, value


def next_cursor(item: dict, sort: str) -> str:
    """The cursor of the page after the one ending with ``item``."""
    if sort.lstrip("-") == "age":
        return str(item["raw_id"])
    value = item.get(_FIELD[sort.lstrip("-")]) or ""
    text = json.dumps([sort, str(item["raw_id"]), value], ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode()


def exception_page(db: Any, status: str | None, filters: dict, limit: int | None,
                   cursor: str | None, sort: str | None, q: str | None) -> dict:
    """``{"items", "next_cursor"}``: one page of the exceptions matching ``filters``
    (``tenant_id``, ``reason_code``, ``source``, ``idempotency_key``, ``group``,
    ``assignee``, ``pending``) and the search ``q`` (a substring of the key or the source, any case),
    in ``sort``'s order."""
    sort = check_sort(sort)
    after, after_value = parse_cursor(cursor, sort)
    if limit is not None and (not isinstance(limit, int) or limit < 1 or limit > MAX_PAGE):
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
    if q is not None and (not isinstance(q, str) or len(q) > 200):
        raise InvalidRequest("q must be text of at most 200 characters")
    if status in ("all", ""):
        status = None
    group = groups_mod.check_group(filters.get("group"))
    items = db.list_exceptions(status, filters.get("tenant_id"), filters.get("reason_code"),
                               filters.get("source"), filters.get("idempotency_key"),
                               None if limit is None else limit + 1, after, group,
                               assignee=filters.get("assignee"), sort=sort,
                               after_value=after_value, q=(q or "").strip() or None,
                               pending=filters.get("pending"))
    more = limit is not None and len(items) > limit
    items = items[:limit] if limit is not None else items
    return {"items": items, "next_cursor": next_cursor(items[-1], sort) if more else None}

"""The deliveries feed (SPEC §9 ``GET /v1/deliveries``, §12 ``wb.deliveries``).

A page is ``{"items": [...], "next_cursor": ...}``. The cursor is the id of the last
delivery the reader has seen ("0" before the first); ``next_cursor`` is never null: on
an empty page it stays where it was, so a follower that always passes it back neither
skips nor repeats a delivery (why no delivery can appear behind it:
``opswb.store.duckdb.outbox``). ``wait`` turns an empty answer into a long poll: the
reader waits for a commit (a held store's ``CommitSignal``) or, over an embedded store
that other processes may write, polls every ``POLL_SECONDS``.
"""

from __future__ import annotations

import math
import time
from typing import Any

from opswb.core.errors import InvalidRequest
from opswb.core.records import parse_id
from opswb.store import Store

MAX_LIMIT = 10_000
MAX_WAIT = 30.0
POLL_SECONDS = 0.5  # an embedded store: how often a waiting reader looks again


def parse_cursor(after: Any) -> int:
    """The cursor as the last delivery id seen: None, "" and "0" mean the start."""
    if after is None or after in ("", "0", 0):
        return 0
    after_id = parse_id(after)
    if after_id is None:
        raise InvalidRequest(f"after: invalid cursor {after!r} (pass back a next_cursor, "
                             "or 0 for the start)")
    return after_id


def check_request(after: Any, tenant_id: Any, limit: Any,
                  wait: Any) -> tuple[int, str | None, int, float]:
    """The arguments of a page, validated: ``InvalidRequest`` names what is wrong."""
    after_id = parse_cursor(after)
    if tenant_id is not None and not isinstance(tenant_id, str):
        raise InvalidRequest("tenant_id must be a string")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be an integer between 1 and {MAX_LIMIT}, "
                             f"got {limit!r}")
    if isinstance(wait, bool) or not isinstance(wait, int | float) or math.isnan(wait) \
            or not 0 <= wait <= MAX_WAIT:
        raise InvalidRequest(f"wait must be a number of seconds between 0 and "
                             f"{MAX_WAIT:g}, got {wait!r}")
    return after_id, tenant_id or None, limit, float(wait)


def read_page(store: Store, after_id: int, tenant_id: str | None, limit: int) -> dict:
    """One page from one snapshot."""
    with store.read() as db:
        items = db.deliveries_after(after_id, tenant_id, limit)
    return {"items": items,
            "next_cursor": items[-1]["delivery_id"] if items else str(after_id)}


def follow(store: Store, after_id: int, tenant_id: str | None, limit: int,
           wait: float) -> dict:
    """A page, waiting up to ``wait`` seconds for one that is not empty."""
    signal = store.commit_signal()
    deadline = time.monotonic() + wait
    while True:
        seen = signal.count if signal is not None else 0  # before reading: no lost wake-up
        page = read_page(store, after_id, tenant_id, limit)
        remaining = deadline - time.monotonic()
        if page["items"] or remaining <= 0 or (signal is not None and signal.closed):
            return page
        if signal is not None:
            signal.wait(seen, remaining)
        else:
            time.sleep(min(POLL_SECONDS, remaining))

"""Bulk resolution (SPEC §7, issue 17): one decision for many open exceptions, in batches.

A group of 20,000 exceptions is not one transaction: the decisions are committed in
batches of at most ``BATCH_ITEMS``, sized from the previous batch's pace to take about
``BATCH_SECONDS`` each, so other writers (an ingest, another operator) get the store
between batches (SPEC §13), and each item's outcome is its own. Each batch is decided
set-wise (``setwise.decide_batch``): a refused item (not found, no longer open, an
invalid replay) is recorded and writes nothing, and the batch goes on; any other failure
rolls its batch back, and that batch is done again one item per transaction, so one
failing item never undoes another.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from opswb.core.errors import OpswbError
from opswb.engine.foureyes import resolve as resolve_or_propose
from opswb.engine.setwise import decide_batch, failure
from opswb.store.base import Store

BATCH_ITEMS = 1000
BATCH_SECONDS = 1.0


def resolve_all(store: Store, targets: list[str], decision: dict,
                on_progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Resolve each of ``targets`` with ``decision`` (``action``, ``actor``,
    ``resolution_notes``, ``canonical_raw_id``, ``override_patch``); one result per
    target, in order. ``on_progress(done, total)`` after each committed batch."""
    results: list[dict] = []
    size = min(100, BATCH_ITEMS)  # the first batch measures the pace for the next ones
    while len(results) < len(targets):
        rest = targets[len(results):len(results) + size]
        began = time.monotonic()
        try:
            with store.write() as db:
                results += decide_batch(db, rest, decision)
        except Exception:  # noqa: BLE001 -- rolled back: redo it item by item
            results += [_alone(store, ex_id, decision) for ex_id in rest]
        took = max(time.monotonic() - began, 1e-3)
        size = max(1, min(BATCH_ITEMS, int(len(rest) * BATCH_SECONDS / took)))
        if on_progress:
            on_progress(len(results), len(targets))
    return results


def _alone(store: Store, ex_id: str, decision: dict) -> dict:
    try:
        with store.write() as db:
            ex = resolve_or_propose(db, ex_id, decision.get("action"), decision.get("actor"),
                                    decision.get("resolution_notes"),
                                    decision.get("canonical_raw_id"),
                                    decision.get("override_patch"))
            status = "proposed" if ex.get("pending") and ex["status"] == "open" else ex["status"]
            return {"exception_id": str(ex_id), "status": status}
    except OpswbError as e:
        return failure(ex_id, e)

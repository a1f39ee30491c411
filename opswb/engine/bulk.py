"""Bulk resolution (SPEC §7, issue 17): one decision for many open exceptions, in batches.

A group of 20,000 exceptions is not one transaction: the decisions are committed in
batches of at most ``BATCH_ITEMS`` or about ``BATCH_SECONDS`` each, so other writers
(an ingest, another operator) get the store between batches (SPEC §13), and each item's
outcome is its own. A refused item (not found, no longer open, an invalid replay) raises
before it writes anything (``resolutions``), so it is recorded and the batch goes on; any
other failure rolls its batch back, and that batch is done again one item per
transaction, so one failing item never undoes another.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opswb.core.errors import Conflict, InvalidRequest, NotFound, OpswbError
from opswb.engine.resolutions import resolve_one
from opswb.store.base import Store

BATCH_ITEMS = 250
BATCH_SECONDS = 1.0
_REFUSALS = (InvalidRequest, NotFound, Conflict)


def failure(exception_id: Any, error: OpswbError) -> dict:
    """One item's refusal as SPEC §9's bulk ``results`` show it."""
    status = {404: "not_found", 409: "conflict", 422: "invalid"}.get(error.http_status,
                                                                     "error")
    return {"exception_id": str(exception_id), "status": status, "error": str(error)}


def resolve_all(store: Store, targets: list[str], decision: dict,
                on_progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Resolve each of ``targets`` with ``decision`` (``action``, ``actor``,
    ``resolution_notes``, ``canonical_raw_id``, ``override_patch``); one result per
    target, in order. ``on_progress(done, total)`` after each committed batch."""
    results: list[dict] = []
    while len(results) < len(targets):
        rest = targets[len(results):len(results) + BATCH_ITEMS]
        try:
            results += _batch(store, rest, decision)
        except Exception:  # noqa: BLE001 -- rolled back: redo it item by item
            results += [_alone(store, ex_id, decision) for ex_id in rest]
        if on_progress:
            on_progress(len(results), len(targets))
    return results


def _batch(store: Store, ids: list[str], decision: dict) -> list[dict]:
    """As many of ``ids`` as fit in one batch, in one transaction."""
    out: list[dict] = []
    deadline = time.monotonic() + BATCH_SECONDS
    with store.write() as db:
        for ex_id in ids:
            try:
                out.append(_done(ex_id, resolve_one(db, ex_id, **decision)))
            except _REFUSALS as e:
                out.append(failure(ex_id, e))
            if time.monotonic() >= deadline:
                break
    return out


def _alone(store: Store, ex_id: str, decision: dict) -> dict:
    try:
        with store.write() as db:
            return _done(ex_id, resolve_one(db, ex_id, **decision))
    except OpswbError as e:
        return failure(ex_id, e)


def _done(ex_id: str, ex: dict) -> dict:
    return {"exception_id": str(ex_id), "status": ex["status"]}

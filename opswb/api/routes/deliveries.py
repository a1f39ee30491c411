"""The outbox for downstream consumers: ``GET /v1/deliveries`` (SPEC §9).

A long poll (``wait``) must not hold one of the server's worker threads for up to 30 s
(a few dozen followers would starve every other call), so this handler is a coroutine:
each read runs in the thread pool, and the wait between reads is an asyncio wait on the
held store's commit signal (``opswb.store.commits``), woken by the next commit.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from opswb.api.gate import JSONOut
from opswb.api.models import DeliveryPage
from opswb.api.routes.common import COMMON, WB
from opswb.workbench.feed import MAX_LIMIT, MAX_WAIT, POLL_SECONDS

router = APIRouter()

CHECK_CLIENT_EVERY = 1.0  # seconds: a waiting request notices a client gone this soon


@router.get("/v1/deliveries", response_model=DeliveryPage, responses=COMMON,
            tags=["deliveries"])
async def list_deliveries(
    request: Request,
    wb: WB,
    after: Annotated[str | None, Query(
        description="next_cursor of the previous page; absent or 0: from the start")] = None,
    tenant_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    wait: Annotated[float, Query(
        ge=0, le=MAX_WAIT, allow_inf_nan=False,
        description="seconds to wait for a delivery when none is new (long poll)")] = 0,
) -> Any:
    """The outbox after ``after``, in delivery order; gap-free for a reader that
    follows ``next_cursor``. With ``wait``, an empty answer waits for a commit."""
    store = getattr(wb, "store", None)  # the served workbench's held store
    signal = store.commit_signal() if store is not None else None
    deadline = time.monotonic() + wait
    while True:
        seen = signal.count if signal is not None else 0  # before reading: no lost wake-up
        page = await run_in_threadpool(wb.deliveries, after, tenant_id, limit)
        if page["items"] or time.monotonic() >= deadline \
                or (signal is not None and signal.closed):  # shutting down: answer now
            return JSONOut(page)
        while signal is None or signal.count == seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or await request.is_disconnected():
                return JSONOut(page)
            if signal is None:  # nothing tells of commits: look again shortly
                await asyncio.sleep(min(POLL_SECONDS, remaining))
                break
            await signal.wait_async(seen, min(CHECK_CLIENT_EVERY, remaining))

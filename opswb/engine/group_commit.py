"""Group commit: the server's one writer of HTTP batches (SPEC §9, §13).

Every ``POST /v1/events`` becomes a ``Pending`` request on one queue. One writer thread
takes whatever is queued when it is free (at most ``max_events`` arrivals and
``max_bytes`` of text, so a group's latency stays flat under bulk posts; a request larger
than that goes alone) and stores the whole group in ONE transaction: the requests' staged
rows concatenated in arrival order, classified together by one ``store_arrivals`` (SPEC
§5 holds across requests exactly as within one batch), then the per-arrival results split
back per request. Each request's future is settled only after the commit that holds it.

A request's own refusal never fails its group-mates: its ``Opswb-Batch-Id`` is decided
first (a stored id with the same body answers the first answer again; another body is a
``Conflict``), and two requests of one group with the same new id are the first storing
and the second its retry (or its 409). If the grouped transaction fails as a whole, each
request is retried alone, so only the one at fault fails.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from opswb.core.errors import Conflict, StoreError
from opswb.core.models import empty_summary
from opswb.store.base import Store

MAX_GROUP_EVENTS = 4096
MAX_GROUP_BYTES = 8 * 1024 * 1024

_BUCKET = {"processed": "processed", "duplicate": "duplicates",
           "exception_opened": "exceptions_opened", "attached": "attached"}


@dataclass
class Pending:
    """One request waiting for its commit: staged rows, batch id, body digest."""

    rows: list[tuple]
    batch_id: str | None = None
    body_sha256: str | None = None
    nbytes: int = 0
    future: Future = field(default_factory=Future)


def conflict(batch_id: str) -> Conflict:
    """The refusal of a batch id already used with another body (SPEC §9)."""
    return Conflict(
        f"Opswb-Batch-Id {batch_id!r} is already stored with a different body; nothing "
        "was stored. A retry must send the same bytes; a new batch needs a new id")


def summary_of(results: list[dict]) -> dict:
    """A request's §10 summary, counted from its per-arrival results."""
    total = empty_summary()
    total["received"] = len(results)
    for r in results:
        total[_BUCKET[r["outcome"]]] += 1
    return total


def retry_answer(batch_id: str, results: list[dict]) -> dict:
    """What a retry of a stored batch answers: zero counts, the first answer's results."""
    total = empty_summary()
    total["skipped_files"].append("batch:" + batch_id)
    return dict(total, results=results)


def _origin(p: Pending) -> str:
    return "batch:" + p.batch_id if p.batch_id else "api"


def store_group(store: Store, group: list[Pending]) -> list[Any]:
    """Store ``group`` in one transaction; one answer (a dict, or the exception to raise)
    per request, in order. Raises if the transaction itself fails. The group's batch ids
    are looked up in one statement and the new ones recorded in one."""
    answers: list[Any] = [None] * len(group)
    fresh: list[int] = []          # requests whose rows are stored now
    first_of: dict[str, int] = {}  # a batch id new in this group -> its first request
    retries: list[tuple[int, int]] = []  # (request, the request of this group it retries)
    with store.write_chunk() as db:
        ids = list(dict.fromkeys(p.batch_id for p in group if p.batch_id is not None))
        stored_batches = db.batch_records(ids) if ids else {}
        for i, p in enumerate(group):
            if p.batch_id is None:
                fresh.append(i)
            elif p.batch_id in first_of:
                j = first_of[p.batch_id]
                if group[j].body_sha256 != p.body_sha256:
                    answers[i] = conflict(p.batch_id)
                else:
                    retries.append((i, j))
            elif (stored := stored_batches.get(p.batch_id)) is not None:
                # A batch stored before schema 4 has no recorded body: a retry, as it was.
                if stored["body_sha256"] is not None and stored["body_sha256"] != p.body_sha256:
                    answers[i] = conflict(p.batch_id)
                else:
                    answers[i] = retry_answer(p.batch_id, db.batch_results(stored))
            else:
                first_of[p.batch_id] = i
                fresh.append(i)
        rows = [r for i in fresh for r in group[i].rows]
        origins = [_origin(group[i]) for i in fresh for _ in group[i].rows]
        _, results = db.store_arrivals(rows, origins, with_outcomes=True) if rows \
            else ({}, [])
        at, batches = 0, []
        for i in fresh:
            p = group[i]
            mine = results[at:at + len(p.rows)]
            at += len(p.rows)
            if p.batch_id is not None:
                batches.append((p.batch_id, p.body_sha256, mine))
            answers[i] = dict(summary_of(mine), results=mine)
        if batches:
            db.record_batches(batches)
    for i, j in retries:
        answers[i] = retry_answer(group[i].batch_id or "", answers[j]["results"])
    return answers


class GroupCommitter:
    """The queue of pending requests and the writer thread that commits them in groups."""

    def __init__(self, store: Store, max_events: int = MAX_GROUP_EVENTS,
                 max_bytes: int = MAX_GROUP_BYTES):
        self.store = store
        self.max_events, self.max_bytes = max_events, max_bytes
        self._queue: deque[Pending] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="opswb-writer")
        self._thread.start()

    def submit(self, rows: list[tuple], batch_id: str | None = None,
               body_sha256: str | None = None, nbytes: int = 0) -> Future:
        """Queue one request; its future holds the answer once its group committed."""
        p = Pending(rows, batch_id, body_sha256, nbytes)
        with self._cond:
            if self._closing:
                raise StoreError("the server is shutting down; nothing was stored")
            self._queue.append(p)
            self._cond.notify()
        return p.future

    def close(self) -> None:
        """Commit what is queued, then stop the writer; idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _take_group(self) -> list[Pending] | None:
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            group = [self._queue.popleft()]
            events, size = len(group[0].rows), group[0].nbytes
            while self._queue:
                nxt = self._queue[0]
                if events + len(nxt.rows) > self.max_events or size + nxt.nbytes > self.max_bytes:
                    break
                group.append(self._queue.popleft())
                events, size = events + len(nxt.rows), size + nxt.nbytes
            return group

    def _run(self) -> None:
        while (group := self._take_group()) is not None:
            self._commit(group)

    def _commit(self, group: list[Pending]) -> None:
        try:
            answers = store_group(self.store, group)
        except Exception as e:  # noqa: BLE001 -- settled on the futures, raised there
            if len(group) == 1:
                answers = [e]
            else:  # find the request at fault: each alone, in order
                for p in group:
                    self._commit([p])
                return
        for p, a in zip(group, answers):
            if isinstance(a, BaseException):
                p.future.set_exception(a)
            else:
                p.future.set_result(a)

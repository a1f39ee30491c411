"""The commit signal of a held store: who waits for the next commit is woken by it.

The deliveries feed (``GET /v1/deliveries?wait=…``, ``wb.deliveries(wait=…)``) answers
at once when something is new and otherwise waits for a commit. Inside ``opswb serve``
every write passes through one held store, which raises this signal after each commit;
a waiter remembers the count it saw *before* it read, so a commit that lands between
its read and its wait still wakes it (no lost wake-up). Threads wait on a condition;
asyncio tasks (the HTTP long poll, which must not hold a worker thread for 30 s) wait on
an event that the committing thread sets through their loop.
"""

from __future__ import annotations

import asyncio
import threading


class CommitSignal:
    """A count of commits, and a way to wait until it moves."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._count = 0
        self._closed = False
        self._tasks: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def closed(self) -> bool:
        """No more waiting: the store is closing (or the server shutting down)."""
        return self._closed

    @property
    def count(self) -> int:
        """Commits so far (compare with a later value; the number itself means nothing)."""
        return self._count

    def notify(self) -> None:
        """A write has committed: wake every waiter."""
        self._wake(close=False)

    def close(self) -> None:
        """The store is closing, or the server shutting down: wake every waiter, now and
        from now on (a long poll then answers what it has instead of holding the
        server's shutdown for up to 30 s)."""
        self._wake(close=True)

    def _wake(self, close: bool) -> None:
        with self._cond:
            self._count += 1
            self._closed = self._closed or close
            self._cond.notify_all()
            tasks = list(self._tasks)
        for loop, event in tasks:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop has closed; its waiter is gone
                pass

    def wait(self, seen: int, timeout: float) -> int:
        """Block until the count differs from ``seen`` (or ``timeout`` seconds pass, or
        the store closes); returns the count."""
        with self._cond:
            self._cond.wait_for(lambda: self._count != seen or self._closed, timeout)
            return self._count

    async def wait_async(self, seen: int, timeout: float) -> int:
        """``wait`` for an asyncio task, without holding a thread."""
        item = (asyncio.get_running_loop(), asyncio.Event())
        with self._cond:
            if self._count != seen or self._closed:
                return self._count
            self._tasks.add(item)
        try:
            await asyncio.wait_for(item[1].wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._cond:
                self._tasks.discard(item)
        return self._count

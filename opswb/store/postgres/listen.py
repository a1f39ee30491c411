"""Commits of any process, heard: the PostgreSQL store's ``CommitSignal``.

On DuckDB a held store sees every commit because every write passes through it. On
PostgreSQL any number of replicas, CLI calls and notebooks write the same database, so a
commit is announced by the database instead: each transaction that hands out delivery
ids or chains audit entries sends ``NOTIFY opswb_commits`` (``queries.feed_lock``),
delivered when it commits. A held store (``opswb serve``) keeps one listening
connection (``LISTEN``) and a thread that turns each notification into
``CommitSignal.notify``: a consumer long-polling one replica is woken by a post to
another.

The connection listens before ``commit_signal()`` returns, so a waiter that reads the
count, then the feed, then waits misses no commit. If the connection drops, the thread
reconnects and raises the signal once (what was announced meanwhile is lost, so waiters
read again).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from opswb.store.commits import CommitSignal
from opswb.store.postgres.errors import psycopg_module
from opswb.store.postgres.queries import COMMITS_CHANNEL

log = logging.getLogger("opswb")
POLL_SECONDS = 1.0  # how often the listening thread looks whether it should stop
RETRY_SECONDS = 1.0  # how long it waits before reconnecting a dropped connection


class CommitListener:
    """One listening connection and its thread, for one store."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.signal = CommitSignal()
        self._stop = threading.Event()
        self._con = self._connect()
        self._thread = threading.Thread(target=self._run, name="opswb-listen", daemon=True)
        self._thread.start()

    def _connect(self) -> Any:
        con = psycopg_module().connect(self.url, autocommit=True, connect_timeout=10)
        con.execute(f"LISTEN {COMMITS_CHANNEL}")
        return con

    def _run(self) -> None:
        psycopg = psycopg_module()
        while not self._stop.is_set():
            try:
                if self._con is None:
                    self._con = self._connect()
                    self.signal.notify()  # notifications may have been missed: look again
                for _ in self._con.notifies(timeout=POLL_SECONDS, stop_after=1):
                    self.signal.notify()
            except psycopg.Error as e:
                if self._stop.is_set():
                    return
                if self._con is not None:  # once per outage, not at every retry
                    log.warning("opswb: lost the commit listener's connection (%s);"
                                " reconnecting", e)
                self._drop()
                self._stop.wait(RETRY_SECONDS)

    def _drop(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                con.close()

    def close(self) -> None:
        """Stop listening, end every wait (``CommitSignal.close``); idempotent."""
        self._stop.set()
        self.signal.close()
        self._thread.join(timeout=POLL_SECONDS + 1)
        self._drop()

"""What the live gate's small path needs to know, held in memory by the serving process.

``opswb serve`` holds the DuckDB file: no other process writes it (SPEC §13), and every
write of this process passes through the held store. So the answers the small path
reads before storing a chunk of new keys — the id counters, the allowlist, and whether a
key is stored — can be kept here, in step with every commit, instead of read by a
statement each transaction:

* after a transaction whose only writes were small-path chunks (``GateCache.took``),
  the cache already holds what it wrote;
* after any other write (a full classification, a bulk ingest, a resolution, an
  allowlist change, a rolled back transaction) the store calls ``invalidate``, and the
  next gated transaction reloads the counters and the allowlist and reads the keys
  created since the cache's watermark (keys are never deleted, and a key is created by
  an arrival, whose raw id comes from the counter).

The raw and delivery ids are handed out from memory too: the counters row is moved only
when the ids handed out pass the value it holds, and then ``RESERVE`` ids ahead, inside
the transaction that needs them (``claim``). So a one-event transaction is three inserts
instead of three inserts and an update. Between reservations the table is ahead of the
ids used; every other writer must see the exact values, so the store writes them back
(``release``) at the start of any other write, before a chunk goes the full way, and
when it closes; a transaction that fails restores the values as they were before it
(``begin``/``rolled_back``). Only a process killed between two commits leaves the table
ahead: the next ids then start after a gap, never below an id handed out (ids stay
increasing in commit order; the deliveries feed reads by id, gaps included, and health
counts raws rather than reading the counter).

Keys are kept as 64-bit digests (``md5_number_lower`` of tenant, NUL, key), a sorted
numpy array for the bulk of them and a set for the newest: ~8 bytes a key. A digest
present means "maybe stored" and the chunk goes the exact way (SQL); only "certainly not
stored" is trusted, so a collision costs time, never a wrong answer.
"""

from __future__ import annotations

import hashlib
from typing import Any

import duckdb

# DuckDB's side of the digest; ``digest`` is Python's (the same 64 bits).
KEY_DIGEST_SQL = "md5_number_lower(tenant_id || chr(0) || idempotency_key)"
_MERGE_AT = 65536  # newest digests kept in a set until there are this many
RESERVE = 4096  # ids the counters row moves ahead of the ids handed out
_IDS = ("raw", "delivery")  # the counters the small path hands out
_SET_COUNTERS = ("UPDATE counters SET value = CASE name WHEN 'raw' THEN ? ELSE ? END"
                 " WHERE name IN ('raw', 'delivery')")


def digest(tenant_id: str, idempotency_key: str) -> int:
    """``KEY_DIGEST_SQL`` computed in Python."""
    d = hashlib.md5(f"{tenant_id}\0{idempotency_key}".encode()).digest()
    return int.from_bytes(d[8:], "little")


class GateCache:
    """Counters, allowlist and key digests of a held store, in step with its commits."""

    def __init__(self) -> None:
        self.counters: dict[str, int] | None = None
        self.allowed: set[tuple[str, str]] | None = None
        self._sorted: Any = None       # numpy uint64, sorted; None until first loaded
        self._newest: set[int] = set()
        self._watermark = 0            # keys with first_raw_id <= this are loaded
        self.reserved: dict[str, int] = {}  # raw/delivery as the counters row holds them
        self._saved: tuple = (None, {}, 0)  # counters, reservation, watermark before a txn

    def invalidate(self) -> None:
        """Something other than the small path wrote: reload at the next gated write.
        The counters row is exact then (``release`` ran before that write)."""
        self.counters = None
        self.allowed = None
        self.reserved = {}

    def begin(self) -> None:
        """A write transaction starts: remember what to go back to if it fails."""
        self._saved = (self.counters, self.reserved, self._watermark)

    def rolled_back(self) -> None:
        """The transaction failed: the values before it hold again (the counters row
        too: its moves in the transaction are undone), or reload if there were none.
        The watermark goes back too: keys a later write creates with the ids this one
        used must be read at the next reload."""
        self.counters, self.reserved, self._watermark = self._saved
        if self.counters is None:
            self.invalidate()

    def claim(self, con: duckdb.DuckDBPyConnection, n: int) -> tuple[int, int]:
        """The raw and delivery id bases for ``n`` arrivals (ids base+1..base+n), moving
        the counters row ``RESERVE`` ahead in this transaction when it falls short."""
        assert self.counters is not None
        if any(self.counters[c] + n > self.reserved[c] for c in _IDS):
            ahead = {c: self.counters[c] + n + RESERVE for c in _IDS}
            con.execute(_SET_COUNTERS, [ahead["raw"], ahead["delivery"]])
            self.reserved = ahead
        return self.counters["raw"], self.counters["delivery"]

    def release(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write the exact raw and delivery counters back (inside the caller's
        transaction) if the row holds a reservation: before any write that reads it."""
        if self.counters is None or all(self.reserved[c] == self.counters[c] for c in _IDS):
            return
        con.execute(_SET_COUNTERS, [self.counters["raw"], self.counters["delivery"]])
        self.reserved = {c: self.counters[c] for c in _IDS}

    def ready(self, con: duckdb.DuckDBPyConnection) -> None:
        """Load what is stale, inside the caller's transaction."""
        if self.counters is not None:
            return
        import numpy as np

        counters = dict(con.execute("SELECT name, value FROM counters").fetchall())
        self.allowed = set(con.execute("SELECT tenant_id, event_type FROM event_types")
                           .fetchall())
        if self._sorted is None:
            col = con.execute(f"SELECT {KEY_DIGEST_SQL} AS d FROM idempotency_keys"
                              ).fetchnumpy()["d"]
            self._sorted = np.sort(np.asarray(col, dtype=np.uint64))
        elif counters["raw"] > self._watermark:
            self._newest.update(int(d) for (d,) in con.execute(
                f"SELECT {KEY_DIGEST_SQL} FROM idempotency_keys WHERE first_raw_id > ?",
                [self._watermark]).fetchall())
            self._merge()
        self._watermark = counters["raw"]
        self.counters = counters
        self.reserved = {c: counters[c] for c in _IDS}

    def maybe_stored(self, digests: list[int]) -> bool:
        """Whether any of these key digests may be a stored key."""
        import numpy as np

        if any(d in self._newest for d in digests):
            return True
        if self._sorted is None or not len(self._sorted):
            return False
        q = np.asarray(digests, dtype=np.uint64)
        at = np.searchsorted(self._sorted, q).clip(0, len(self._sorted) - 1)
        return bool((self._sorted[at] == q).any())

    def is_allowed(self, tenant_id: str, event_type: str) -> bool:
        allowed = self.allowed or set()
        return ("", event_type) in allowed or (tenant_id, event_type) in allowed

    def took(self, n: int, digests: list[int]) -> None:
        """The small path stored ``n`` arrivals of these new keys (not yet committed: a
        rollback puts the counters and watermark back, ``rolled_back``; digests of keys
        not stored only cost time)."""
        assert self.counters is not None
        self.counters = dict(self.counters, raw=self.counters["raw"] + n,
                             delivery=self.counters["delivery"] + n)
        self._watermark = self.counters["raw"]
        self._newest.update(digests)
        self._merge()

    def _merge(self) -> None:
        if len(self._newest) < _MERGE_AT:
            return
        import numpy as np

        new = np.fromiter(self._newest, dtype=np.uint64, count=len(self._newest))
        self._sorted = np.union1d(self._sorted, new) if self._sorted is not None else \
            np.sort(new)
        self._newest = set()

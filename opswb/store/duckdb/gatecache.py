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

    def invalidate(self) -> None:
        """Something other than the small path wrote (or a transaction rolled back)."""
        self.counters = None
        self.allowed = None

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
        """The small path stored ``n`` arrivals of these new keys (not yet committed:
        a rollback calls ``invalidate``, and digests of keys not stored only cost time)."""
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

"""One grouped transaction of the live gate, statement by statement.

    python benchmarks/txn_profile.py [--group 1] [--rounds 200] [--kind new|dup|mixed]
                                     [--batch-ids] [--db PATH] [--cprofile N]

Holds a DuckDB store as ``opswb serve`` does, commits ``--rounds`` groups of ``--group``
single-event requests through ``engine.group_commit.store_group`` (the server's writer
path), and times every statement the writer's connection runs (wall and the process's
CPU time around each ``execute``), plus the Python between them. Prints the mean per
transaction of each statement (by its first words) and, with ``--cprofile N``, the N
costliest functions of the whole run. ``--kind dup`` resends stored keys' events unchanged
(exact duplicates); ``mixed`` alternates new keys and duplicates. ``--batch-ids``: each
request carries an ``Opswb-Batch-Id`` (looked up, then recorded). Figures only.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Timed:
    """A DuckDB connection whose statements are timed (wall, CPU) by their first words."""

    def __init__(self, con: Any, table: dict):
        self._con, self._table = con, table

    def execute(self, sql: str, *args: Any) -> Any:
        words = " ".join(sql.split()[:3])[:40]
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            self._con.execute(sql, *args)
        finally:
            t = self._table[words]
            t[0] += 1
            t[1] += time.perf_counter() - w0
            t[2] += time.process_time() - c0
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def event(run: str, i: int) -> bytes:
    return json.dumps({"tenant_id": "acme", "idempotency_key": f"{run}-{i}",
                       "event_type": "payment.captured", "source": "gate-bench",
                       "payload": {"amount": 1000 + i % 977, "currency": "EUR",
                                   "customer_id": f"c_{i % 1013}"}}).encode()


def groups_of(kind: str, group: int, rounds: int) -> list[list[bytes]]:
    """Request bodies per transaction; ``mixed``: each key sent twice in a row."""
    out, n = [], 0
    for _ in range(rounds):
        bodies = []
        for _ in range(group):
            bodies.append(event("p", n // 2 if kind == "mixed" else n))
            n += 1
        out.append(bodies)
    return out


def batch_of(on: bool, body: bytes, r: int, i: int) -> tuple[str | None, str | None]:
    """A request's batch id and body digest (none without ``--batch-ids``)."""
    return (f"b-{r}-{i}", hashlib.sha256(body).hexdigest()) if on else (None, None)


def main(argv: list[str] | None = None) -> int:
    from opswb.engine.group_commit import Pending, store_group
    from opswb.engine.readers import read_json_text
    from opswb.store import store_for

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--group", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--kind", choices=("new", "dup", "mixed"), default="new")
    ap.add_argument("--batch-ids", action="store_true")
    ap.add_argument("--db")
    ap.add_argument("--cprofile", type=int, default=0)
    args = ap.parse_args(argv)
    db = args.db or str(Path(tempfile.mkdtemp(prefix="opswb-txn-")) / "t.duckdb")
    store = store_for(db, held=True)
    if args.kind == "dup":  # the keys stored first, then resent
        for bodies in groups_of("new", args.group, args.rounds):
            store_group(store, [Pending(read_json_text(b)) for b in bodies])
    for bodies in groups_of("new", args.group, 20):  # warm-up: imports, first loads
        store_group(store, [Pending(read_json_text(b.replace(b'"p-', b'"w-')))
                            for b in bodies])
    table: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0])
    raw = store._writer
    store._writer = Timed(raw, table)
    work = groups_of(args.kind, args.group, args.rounds)
    prof = cProfile.Profile() if args.cprofile else None
    w0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    for r, bodies in enumerate(work):
        store_group(store, [Pending(read_json_text(b), *batch_of(args.batch_ids, b, r, i))
                            for i, b in enumerate(bodies)])
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    store._writer = raw
    store.close()
    n = args.rounds
    print(f"{n} transactions of {args.group} {args.kind} event(s): "
          f"{wall / n * 1000:.2f} ms wall, {cpu / n * 1000:.2f} ms CPU per transaction")
    print(f"{'statement':<42}{'per txn':>8}{'wall ms':>9}{'CPU ms':>8}")
    sw = sc = 0.0
    for words, (k, w, c) in sorted(table.items(), key=lambda kv: -kv[1][1]):
        print(f"{words:<42}{k / n:>8.2f}{w / n * 1000:>9.3f}{c / n * 1000:>8.3f}")
        sw, sc = sw + w, sc + c
    print(f"{'(Python outside statements)':<42}{'':>8}{(wall - sw) / n * 1000:>9.3f}"
          f"{(cpu - sc) / n * 1000:>8.3f}")
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.cprofile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

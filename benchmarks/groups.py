"""A group decision at scale (issue 17): one decision for a failure group of 20,000.

    python benchmarks/groups.py [--n 100000] [--group 20000] [--db STORE]

Builds an embedded store of N generated arrivals (``opswb.testing.synth``) plus GROUP
arrivals of one type no tenant allows (one failure group), then measures, on the local
workbench: the groups page, the dry-run plan (count and sample), and the bulk
resolution of the whole group by its ``group`` filter — total time, rate, and how long
each batch held the store (SPEC §13: about a second or less). Prints figures only.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build(db: Path, n: int, group: int, workdir: Path) -> None:
    import opswb
    from opswb.testing import synth

    wb = opswb.connect(str(db))
    if wb.health()["raw_events"]:
        print(f"reusing {db}")
        return
    src = workdir / f"events-{n}.jsonl"
    synth.write_jsonl(src, n, seed=3)
    t0 = time.perf_counter()
    wb.ingest(str(src))
    events = [{"tenant_id": f"t{i % 40}", "idempotency_key": f"grp_{i}",
               "event_type": "ledger.adjusted", "source": "erp-sync",
               "payload": {"amount": i}} for i in range(group)]
    for i in range(0, group, 5000):
        wb.ingest_batch(events[i:i + 5000])
    print(f"built {db.name}: {n:,} arrivals + a group of {group:,} "
          f"in {time.perf_counter() - t0:.1f}s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--group", type=int, default=20_000)
    ap.add_argument("--db")
    a = ap.parse_args(argv)
    import opswb
    from opswb.engine import bulk
    from opswb.workbench.plan import bulk_plan

    workdir = Path(tempfile.mkdtemp(prefix="opswb-bench-groups-"))
    db = Path(a.db or workdir / "groups.duckdb")
    build(db, a.n, a.group, workdir)
    wb = opswb.connect(str(db))
    t0 = time.perf_counter()
    page = wb.groups()
    print(f"groups page: {(time.perf_counter() - t0) * 1000:.1f} ms (embedded, with open)")
    g = next(x for x in page["items"] if x["signature"] == "ledger.adjusted")
    t0 = time.perf_counter()
    plan = bulk_plan(wb, filter={"group": g["group_id"]}, action="mark_resolved_no_replay")
    print(f"dry run: {plan['count']:,} would be resolved; plan in "
          f"{time.perf_counter() - t0:.2f}s")
    targets = [e["exception_id"] for e in wb.list_exceptions(
        limit=None, group=g["group_id"])["items"]]
    decision = {"action": "mark_resolved_no_replay", "actor": "bench",
                "resolution_notes": "one cause", "canonical_raw_id": None,
                "override_patch": None}
    t0 = time.perf_counter()
    marks = [t0]
    results = bulk.resolve_all(wb.store, targets, decision,
                               on_progress=lambda done, total: marks.append(
                                   time.perf_counter()))
    took = time.perf_counter() - t0
    held = [b - a for a, b in itertools.pairwise(marks)]
    ok = sum(r["status"] == "resolved" for r in results)
    print(f"resolved {ok:,} of {len(targets):,} in {took:.1f}s ({len(targets) / took:,.0f}/s), "
          f"{len(held)} batches; batch median {statistics.median(held):.2f}s, "
          f"max {max(held):.2f}s")
    print(f"health after: {wb.health()['exceptions_open']:,} open")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

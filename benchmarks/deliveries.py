"""The deliveries feed over a large store (SPEC §9 ``GET /v1/deliveries``, issue 14).

    python benchmarks/deliveries.py [--n 1000000] [--db STORE] [--repeat 5]

Builds a store of N generated arrivals (bulk-loaded: their payloads live in the raws'
text) or reuses ``--db``, then reads pages of 1,000 through the workbench over a held
store (as the server does), and, in the same run, the same pages by the obvious query —
the ``outbox`` view (every delivery joined to its raw), ``WHERE delivery_id > ? ORDER BY
delivery_id LIMIT 1000``, payloads parsed the same way — as the baseline:

  first page      after the start
  middle page     after the middle delivery id
  last page       the last 1,000
  caught up       after the last delivery: the empty page a follower reads most often
  tenant page     one tenant's next 1,000 from the middle
  drain           following next_cursor through 100 pages: deliveries/s

Prints median milliseconds; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGE = 1000


def build_store(db: Path, n: int, workdir: Path) -> None:
    import opswb
    from opswb.testing import synth

    if db.exists() and opswb.connect(str(db)).health()["raw_events"] > 0:
        print(f"reusing {db} ({opswb.connect(str(db)).health()['raw_events']:,} raws)")
        return
    src = workdir / f"events-{n}.jsonl"
    if not src.exists():
        synth.write_jsonl(src, n, seed=1)
    t0 = time.perf_counter()
    summary = opswb.connect(str(db)).ingest(str(src))
    print(f"ingested {summary['received']:,} in {time.perf_counter() - t0:.1f}s")


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opswb-feed-"))
    db = args.db or workdir / "feed.duckdb"
    build_store(db, args.n, workdir)

    from opswb.core.fingerprint import loads
    from opswb.store import store_for
    from opswb.workbench.local import LocalWorkbench

    store = store_for(str(db), held=True)
    wb = LocalWorkbench(store=store)
    con = store._con.cursor()  # the baseline runs on the same held connection
    top, count = con.execute("SELECT max(delivery_id), count(*) FROM deliveries").fetchone()
    tenant = con.execute("SELECT tenant_id FROM deliveries GROUP BY 1 ORDER BY count(*)"
                         " LIMIT 1").fetchone()[0]
    print(f"{count:,} deliveries (last id {top:,}); rarest tenant {tenant!r}")

    def naive(after: int, tenant_id: str | None = None) -> list:
        where = " AND tenant_id = ?" if tenant_id else ""
        rows = con.execute("SELECT payload, * FROM outbox WHERE delivery_id > ?" + where
                           + " ORDER BY delivery_id LIMIT ?",
                           [after, *([tenant_id] if tenant_id else []), PAGE]).fetchall()
        return [(loads(r[0]), *r[1:]) for r in rows]  # payloads parsed, as ours are

    cases = [("first page", 0, None), ("middle page", top // 2, None),
             ("last page", top - PAGE * 2, None), ("caught up", top, None),
             ("tenant page", top // 2, tenant)]
    print(f"{'':14}{'opswb ms':>10}{'baseline ms':>13}{'items':>7}")
    for name, after, tenant_id in cases:
        page = wb.deliveries(after=str(after), tenant_id=tenant_id, limit=PAGE)
        assert len(page["items"]) == len(naive(after, tenant_id))
        ours = median_ms(lambda a=after, t=tenant_id: wb.deliveries(
            after=str(a), tenant_id=t, limit=PAGE), args.repeat)
        base = median_ms(lambda a=after, t=tenant_id: naive(a, t), args.repeat)
        print(f"{name:14}{ours:10.1f}{base:13.1f}{len(page['items']):7}")
    t0, cursor, seen = time.perf_counter(), str(top // 3), 0
    for _ in range(100):
        page = wb.deliveries(after=cursor, limit=PAGE)
        seen, cursor = seen + len(page["items"]), page["next_cursor"]
    took = time.perf_counter() - t0
    print(f"drain: {seen:,} deliveries in {took:.2f}s ({seen / took:,.0f}/s)")
    store.close()


if __name__ == "__main__":
    main()

"""Time the health report over a large store (the issue asks: 5M raws in under a minute).

    python benchmarks/report.py [--n 5000000] [--db PATH] [--resolve 200] [--snapshots 24]

Builds the store once with ``opswb.testing.synth`` (3% duplicates, 0.5% conflicts, 0.2% unknown
types, 0.05% invalid; reused when ``--db`` already exists), resolves some exceptions and
records some snapshots so every section has data, then measures:

  build_report   computing every table in-process (``opswb.report.data``)
  run_report     the whole `opswb report`: papermill kernel, notebook, JSON, offline HTML
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_store(db: Path, n: int, seed: int, resolve: int, snapshots: int,
                conflict_rate: float) -> None:
    """Ingest ``n`` synthetic events, resolve some exceptions, record snapshots."""
    import opswb
    from opswb.testing import synth

    src = db.with_suffix(".jsonl")
    t0 = time.perf_counter()
    synth.write_jsonl(src, n, seed=seed, invalid_rate=0.0005, conflict_rate=conflict_rate)
    print(f"generated {n:,} events in {time.perf_counter() - t0:.1f} s")
    wb = opswb.connect(str(db))
    t0 = time.perf_counter()
    summary = wb.ingest(str(src))
    print(f"ingested in {time.perf_counter() - t0:.1f} s: {json.dumps(summary)}")
    src.unlink()
    ids = [e["exception_id"] for e in wb.list_exceptions(limit=resolve)["items"]]
    for i, ex_id in enumerate(ids):
        wb.resolve(ex_id, action="mark_resolved_no_replay", actor=f"bench{i % 3}",
                   resolution_notes="benchmark")
        if i % max(1, resolve // snapshots) == 0:
            wb.record_snapshot()


def main() -> int:
    """Build (or reuse) the store, then time build_report and run_report."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--n", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--db", help="store to use (built there when missing)")
    ap.add_argument("--resolve", type=int, default=200)
    ap.add_argument("--snapshots", type=int, default=24)
    ap.add_argument("--conflict-rate", type=float, default=0.005,
                    help="raise it to get 5M-store exception counts from a smaller store")
    args = ap.parse_args()

    import opswb
    from opswb.report.data import build_report
    from opswb.report.run import run_report

    work = Path(tempfile.mkdtemp(prefix="opswb-report-bench-"))
    db = Path(args.db) if args.db else work / "opswb.duckdb"
    if not db.exists():
        build_store(db, args.n, args.seed, args.resolve, args.snapshots, args.conflict_rate)
    wb = opswb.connect(str(db))
    health = wb.health()
    print(f"store: {health['raw_events']:,} raws, {health['exceptions_open']:,} open "
          f"exceptions, {db.stat().st_size / 2**20:.0f} MB")

    t0 = time.perf_counter()
    report = build_report(wb)
    compute = time.perf_counter() - t0
    print(f"build_report: {compute:.2f} s "
          f"({report.summary['opened_in_window']:,} exceptions in window)")

    t0 = time.perf_counter()
    code = run_report(str(db), str(work / "reports"), None, {"max_open": "1e12"})
    total = time.perf_counter() - t0
    print(f"run_report (papermill + HTML): {total:.2f} s, exit {code}")
    print(json.dumps({"raws": health["raw_events"], "build_report_s": round(compute, 2),
                      "run_report_s": round(total, 2)}))
    return 0 if code == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""A group decision at scale (issue 17): one decision for a failure group of 20,000.

    python benchmarks/groups.py [--n 100000] [--group 20000] [--action ignore|replay]

Builds an embedded store with ``opswb.testing.scale.write_scale_events`` (N arrivals,
one failure group of GROUP open ``UNKNOWN_EVENT_TYPE`` exceptions), copies it, and on the
two copies resolves the whole group: first the per-item path (each exception its own
dozen statements, batches of 250 per transaction, as before issue 17's set-wise
decisions), then ``engine.bulk.resolve_all`` (set-wise batches). Prints the groups page,
the dry-run plan, and for each path wall and CPU seconds, rate and batch hold times,
with the same-run ratio. ``--action replay`` allows the type for all tenants first and
replays the group as received instead of ignoring it. Prints figures only.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OLD_BATCH = 250


def build(db: Path, n: int, group: int, workdir: Path) -> None:
    import opswb
    from opswb.testing.scale import write_scale_events

    src = write_scale_events(workdir / f"scale-{n}.jsonl", n=n, unknown=group)
    t0 = time.perf_counter()
    opswb.connect(str(db)).ingest(str(src))
    print(f"built {db.name}: {n:,} arrivals, a group of {group:,} "
          f"in {time.perf_counter() - t0:.1f}s")


def per_item(store, targets: list[str], decision: dict, on_progress) -> list[dict]:
    """The path before set-wise decisions: one ``resolve_one`` per item, 250 a batch."""
    from opswb.engine.resolutions import resolve_one

    out: list[dict] = []
    for i in range(0, len(targets), OLD_BATCH):
        with store.write() as db:
            out += [{"exception_id": t, "status": resolve_one(db, t, **decision)["status"]}
                    for t in targets[i:i + OLD_BATCH]]
        on_progress(len(out), len(targets))
    return out


def run(label: str, db: Path, gid: str, decision: dict, how) -> float:
    import opswb

    wb = opswb.connect(str(db))
    if decision["action"] == "override_and_replay":
        wb.add_type("payout.settled", actor="bench", notes="now supported")
    targets = [e["exception_id"] for e in wb.list_exceptions(limit=None, group=gid)["items"]]
    t0, c0 = time.perf_counter(), time.process_time()
    marks = [t0]
    results = how(wb.store, targets, decision,
                  lambda done, total: marks.append(time.perf_counter()))
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    held = [b - a for a, b in itertools.pairwise(marks)]
    ok = sum(r["status"] == "resolved" for r in results)
    print(f"{label}: resolved {ok:,} of {len(targets):,} in {took:.1f}s wall, {cpu:.1f} CPU s"
          f" ({len(targets) / took:,.0f}/s), {len(held)} batches; batch median "
          f"{statistics.median(held):.2f}s, max {max(held):.2f}s; "
          f"audit chain ok: {wb.verify_audit()['ok']}; open after: "
          f"{wb.health()['exceptions_open']:,}")
    return cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--group", type=int, default=20_000)
    ap.add_argument("--action", choices=("ignore", "replay"), default="ignore")
    a = ap.parse_args(argv)
    import opswb
    from opswb.engine import bulk
    from opswb.workbench.plan import bulk_plan

    workdir = Path(tempfile.mkdtemp(prefix="opswb-bench-groups-"))
    try:
        db = workdir / "groups.duckdb"
        build(db, a.n, a.group, workdir)
        wb = opswb.connect(str(db))
        t0 = time.perf_counter()
        page = wb.groups()
        print(f"groups page: {(time.perf_counter() - t0) * 1000:.1f} ms (embedded, with open)")
        g = max(page["items"], key=lambda x: x["count"])
        action = ("override_and_replay" if a.action == "replay"
                  else "mark_resolved_no_replay")
        t0 = time.perf_counter()
        plan = bulk_plan(wb, filter={"group": g["group_id"]}, action=action)
        print(f"dry run: {plan['count']:,} in the group; plan in "
              f"{time.perf_counter() - t0:.2f}s")
        wb.close()
        twin = workdir / "twin.duckdb"
        shutil.copy(db, twin)
        decision = {"action": action, "actor": "bench", "resolution_notes": "one cause",
                    "canonical_raw_id": None, "override_patch": None}
        old = run("per item (before)", twin, g["group_id"], decision, per_item)
        new = run("set-wise (now)", db, g["group_id"], decision, bulk.resolve_all)
        print(f"CPU seconds, per item / set-wise: {old / max(new, 1e-9):.1f}x")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

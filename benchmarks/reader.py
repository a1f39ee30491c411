"""The bulk JSON Lines reader and the store's transactions, each timed alone, this tree
beside older commits in the same run.

    python benchmarks/reader.py [--n 1000000] [--reps 3] [--baseline-rev b37434b ...]
                                [--skip-store] [--workdir DIR]

Generates ingest.py's file A (N events), then, each in a fresh process and alternating
between the trees (each ``--baseline-rev``, which may be given more than once: that
commit's package, exported as ingest.py's ``--baseline-rev`` does):

  read   ``read_jsonl_bulk`` over A, every chunk consumed and dropped: process CPU s
         (DuckDB's threads included), the reading thread's own CPU s, wall s, and how
         many lines took the exact per-line path (``stage_row``)
  store  A's chunks staged in advance by that tree's reader (saved as Arrow IPC files,
         off the clock) and ingested through the public API into an empty store with the
         reader and the file hash replaced by them: only the transactions are timed;
         with ``--prefilled`` also file B's (N/2 events) into the store holding A

Process CPU s is the figure to compare on a loaded machine; wall seconds there are
inflated by other work.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import export_rev, generate, spawn


def _modules() -> tuple[Any, Any]:
    """The bulk reader's and the ingest's modules, wherever this tree keeps them."""
    try:
        from opswb.engine import ingest, jsonl_bulk
    except ImportError:  # before the layout change (issue 13)
        from opswb import bulkjsonl as jsonl_bulk
        from opswb import ingest
    return jsonl_bulk, ingest


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def phase_read(path: str) -> dict[str, Any]:
    reader, _ = _modules()
    flagged = [0]
    stage_row = reader.stage_row

    def counted(*a: Any, **k: Any) -> Any:
        flagged[0] += 1
        return stage_row(*a, **k)

    reader.stage_row = counted
    events = 0
    cpu0, thread0, t0 = _cpu(), time.thread_time(), time.perf_counter()
    for chunk in reader.read_jsonl_bulk(path):
        events += chunk.count
    return {"events": events, "cpu_seconds": _cpu() - cpu0,
            "thread_seconds": time.thread_time() - thread0,
            "seconds": time.perf_counter() - t0, "flagged": flagged[0]}


def phase_stage(path: str, out: str) -> dict[str, Any]:
    """Save the reader's chunks of ``path`` under ``out`` (not timed)."""
    import pyarrow as pa

    reader, ingest = _modules()
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    index = []
    for i, chunk in enumerate(reader.read_jsonl_bulk(path)):
        name = f"{i:05d}.arrow"
        with pa.OSFile(str(dest / name), "wb") as f, \
                pa.ipc.new_file(f, chunk.rows.schema) as w:
            w.write_table(chunk.rows)
        index.append((name, chunk.end_offset, chunk.nbytes))
    (dest / "index.json").write_text(json.dumps(
        {"chunks": index, "hash": ingest.file_hash(path)}))
    return {"events": 0, "chunks": len(index)}


def phase_store(db: str, paths: list[str], staged: list[str]) -> dict[str, Any]:
    """Ingest ``paths`` in turn with their chunks read back from ``staged`` instead of
    parsed; only the last ingest is timed."""
    import pyarrow as pa

    import opswb

    reader, ingest = _modules()
    index = {p: (Path(d), json.loads((Path(d) / "index.json").read_text()))
             for p, d in zip(paths, staged)}

    def chunks(path: str) -> Any:
        src, idx = index[str(path)]
        for name, end, nbytes in idx["chunks"]:
            table = pa.ipc.open_file(pa.memory_map(str(src / name))).read_all()
            yield reader.Chunk(table, end, nbytes)

    ingest.file_hash = lambda p: index[str(p)][1]["hash"]
    ingest._file_chunks = lambda p, kind, offset: ingest.Prefetch(chunks(p))
    wb = opswb.connect(db)
    wb.health()  # creates the store off the clock
    for path in paths[:-1]:
        wb.ingest(path)
    cpu0, thread0, t0 = _cpu(), time.thread_time(), time.perf_counter()
    summary = wb.ingest(paths[-1])
    return {"events": summary["received"], "cpu_seconds": _cpu() - cpu0,
            "thread_seconds": time.thread_time() - thread0,
            "seconds": time.perf_counter() - t0, "summary": summary}


def run_child(args: argparse.Namespace) -> None:
    if args.phase == "read":
        out = phase_read(args.file)
    elif args.phase == "stage":
        out = phase_stage(args.file, args.out)
    else:
        out = phase_store(args.db, args.file.split(","), args.out.split(","))
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def _spawn(*argv: str, src: Path | None) -> dict[str, Any]:
    return spawn(*argv, src=src, script=__file__)


def _fresh(db: Path) -> Path:
    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    return db


def measure(paths: list[Path], workdir: Path, trees: dict[str, Path | None], reps: int,
            store: bool) -> dict[str, list[dict]]:
    """Every phase ``reps`` times per tree, the trees alternating. ``paths``: file A,
    and B when the ingest into a filled store is timed too."""
    res: dict[str, list[dict]] = {f"{p} {t}": [] for p in ("read", "store", "store-B")
                                  for t in trees}
    staged = {label: [str(workdir / f"staged-{label}-{p.stem}") for p in paths]
              for label in trees}
    if store:
        for label, src in trees.items():
            for path, out in zip(paths, staged[label]):
                _spawn("stage", "--file", str(path), "--out", out, src=src)
    for _ in range(reps):
        for label, src in trees.items():
            res[f"read {label}"].append(_spawn("read", "--file", str(paths[0]), src=src))
        for k in range(1, len(paths) + 1) if store else ():
            for label, src in trees.items():
                db = _fresh(workdir / f"store-{label}.duckdb")
                res[f"{'store-B' if k > 1 else 'store'} {label}"].append(_spawn(
                    "store", "--db", str(db), "--file", ",".join(map(str, paths[:k])),
                    "--out", ",".join(staged[label][:k]), src=src))
    return {k: v for k, v in res.items() if v}


def report(res: dict[str, list[dict]], revs: list[str]) -> None:
    print(f"\n{'phase':<18}{'events':>11}{'process CPU s (each run)':>34}{'min':>7}"
          f"{'thread CPU s':>14}{'wall s':>8}{'flagged':>9}")
    for name, runs in res.items():
        cpus = [r["cpu_seconds"] for r in runs]
        print(f"{name:<18}{runs[0]['events']:>11,}"
              f"{' '.join(f'{c:.2f}' for c in cpus):>34}{min(cpus):>7.2f}"
              f"{min(r['thread_seconds'] for r in runs):>14.2f}"
              f"{min(r['seconds'] for r in runs):>8.2f}"
              f"{runs[0].get('flagged', ''):>9}")
    for rev in revs:
        for phase in ("read", "store", "store-B"):
            if f"{phase} this" in res:
                new = min(r["cpu_seconds"] for r in res[f"{phase} this"])
                old = min(r["cpu_seconds"] for r in res[f"{phase} {rev}"])
                print(f"{phase}: this tree {new:.2f} CPU s, {rev} {old:.2f} "
                      f"(difference {new - old:+.2f}, ratio {new / old:.2f}x; best runs)")
    load = os.getloadavg()[0]
    print(f"(load average {load:.1f} on {os.cpu_count()} CPUs at the end: the machine is "
          "shared, so wall seconds are inflated; CPU seconds are the figure)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="events in the file")
    ap.add_argument("--reps", type=int, default=3, help="runs of each phase per tree")
    ap.add_argument("--baseline-rev", action="append", default=[],
                    help="also time this commit's code, alternating (repeatable)")
    ap.add_argument("--skip-store", action="store_true", help="time the reader only")
    ap.add_argument("--prefilled", action="store_true",
                    help="also time the store's transactions for B into the store holding A")
    ap.add_argument("--workdir", help="where the file and stores go (kept)")
    ap.add_argument("--json", dest="json_out", help="write the figures to this file")
    ap.add_argument("--phase", choices=("read", "stage", "store"), help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase:
        run_child(args)
        return 0
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="opswb-rd-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        paths = [workdir / "A.jsonl", workdir / "B.jsonl"]
        if not all(p.exists() for p in paths):
            a, b, _, _, gen_s = generate(workdir, args.n, max(1, args.n // 2))
            paths = [a, b]
            print(f"generated {args.n:,} events in {gen_s:.1f}s under {workdir}", flush=True)
        trees: dict[str, Path | None] = {"this": None}
        for rev in args.baseline_rev:
            trees[rev] = export_rev(rev, workdir / rev)
        res = measure(paths if args.prefilled else paths[:1], workdir, trees, args.reps,
                      not args.skip_store)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    report(res, args.baseline_rev)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            {"n": args.n, "baseline_revs": args.baseline_rev, "runs": res}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

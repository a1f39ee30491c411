"""Ingest throughput of opswb against a DuckDB read floor and a row-by-row SQLite baseline.

    python benchmarks/ingest.py [--n 1000000] [--workdir DIR] [--json OUT] [--baseline-rev REV]
    python benchmarks/ingest.py --db postgresql://… [--n N]   (benchmarks/ingest_postgres.py)

Generates file A (N events: 3% duplicates, 0.5% conflicts, 0.2% unknown types, ~400-byte
payloads) and file B (different keys, same rates, 0.1% re-sends of A's events), then
measures on this machine, each phase in its own subprocess (so peak RSS is per phase):

  opswb-empty      ``opswb.connect(db).ingest(A)`` into an empty store
  opswb-prefilled  ``ingest(B)`` into the store already holding A
  duckdb-floor     ``read_json(A, format='newline_delimited')`` + md5 of every payload
  sqlite-rowwise   one event at a time into SQLite with the same §5 semantics
  store-bound      only the writes the SPEC asks of every design, timed alone: A's raw
                   rows, key records and outbox rows in opswb's schema, one transaction
                   per chunk with the file released between chunks (the same statements
                   opswb runs for a key's only arrival); envelopes extracted off the clock

With ``--baseline-rev REV`` (a commit, e.g. ``HEAD~3``) the two opswb phases also run
with that commit's package, interleaved with the current code's, on the same files: the
same-run before/after of a change.

Every opswb summary is checked against what the generator planted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
# A phase of the baseline commit (--baseline-rev) imports that commit's package instead.
sys.path.insert(0, os.environ.get("OPSWB_BENCH_SRC") or str(ROOT))

COLUMNS = ("{'tenant_id': 'VARCHAR', 'idempotency_key': 'VARCHAR', 'event_type': 'VARCHAR', "
           "'source': 'VARCHAR', 'occurred_at': 'VARCHAR', 'payload': 'JSON'}")


# -- phases (run in a child process) ----------------------------------------------------
def phase_opswb(db: str, path: str) -> dict[str, Any]:
    """Ingest one file through the public API; health is read after the clock stops."""
    import opswb

    t0 = time.perf_counter()
    summary = opswb.connect(db).ingest(path)
    seconds = time.perf_counter() - t0
    health = opswb.connect(db).health()
    return {"seconds": seconds, "events": summary["received"], "summary": summary,
            "health": {k: health[k] for k in ("exceptions_open", "raw_events", "idempotency")},
            "store_mb": os.path.getsize(db) / 2**20}


def phase_store_bound(db: str, path: str) -> dict[str, Any]:
    """What storing A costs before any §5 rule runs: every arrival written as if it were
    its key's only one (raw row, key record, outbox row; ledger row and commit per chunk).

    No design that keeps each arrival can ingest faster than this on the same store, so
    it bounds the floor ratio. Chunks are staged between the timed writes, off the clock.
    """
    import opswb
    from opswb.engine.jsonl_bulk import read_jsonl_bulk
    from opswb.engine.readers import file_hash
    from opswb.store.duckdb import classify
    from opswb.store.duckdb import queries as storage
    from opswb.store.duckdb.stagein import staged
    from opswb.store.duckdb.store import DuckDBStore

    store = DuckDBStore(db)

    opswb.connect(db).health()  # creates and migrates the store
    origin, seconds, base = file_hash(Path(path)), 0.0, 0
    for chunk in read_jsonl_bulk(path):
        t0 = time.perf_counter()
        with store.write_chunk() as session:
            con = session.con
            staged(con, chunk.rows, None)  # registered as _stage_in
            con.execute("CREATE TEMP TABLE _out (seq BIGINT, fingerprint VARCHAR,"
                        " outcome VARCHAR, exception_id BIGINT, kind VARCHAR)")
            con.execute(classify._INSERT_RAWS, {"raw_base": base, "origin": origin,
                                                "replay_of": None})
            con.execute(classify._INSERT_DELIVERIES, {"d_base": base, "raw_base": base})
            con.execute(classify._INSERT_LONE_KEYS, {"raw_base": base})
            storage.ledger_record(con, origin, path, chunk.count, chunk.end_offset)
            for counter in ("raw", "delivery"):
                classify._bump(con, counter, chunk.count)
            con.execute("DROP TABLE _out")
            con.unregister("_stage_in")
        seconds += time.perf_counter() - t0
        base += chunk.count
    return {"seconds": seconds, "events": base, "store_mb": os.path.getsize(db) / 2**20}


def phase_floor(path: str) -> dict[str, Any]:
    """DuckDB reading the file and hashing every payload: no classification, no writes."""
    import duckdb

    con = duckdb.connect()
    t0 = time.perf_counter()
    n, _ = con.execute(
        f"SELECT count(*), min(md5(CAST(payload AS VARCHAR))) FROM read_json(?, "
        f"format='newline_delimited', columns={COLUMNS})", [path]).fetchall()[0]
    return {"seconds": time.perf_counter() - t0, "events": n}


def _normalize(v: Any) -> Any:
    """Integral floats to ints (so 100 == 100.0), copying only what changes."""
    if isinstance(v, float):
        return int(v) if v.is_integer() else v
    if isinstance(v, dict):
        out = None
        for k, x in v.items():
            y = _normalize(x)
            if y is not x:
                out = out or dict(v)
                out[k] = y
        return v if out is None else out
    if isinstance(v, list):
        ys = [_normalize(x) for x in v]
        return v if all(a is b for a, b in zip(ys, v)) else ys
    return v


_SQLITE_SCHEMA = """
CREATE TABLE raw_events (raw_id INTEGER PRIMARY KEY, text TEXT NOT NULL, tenant_id TEXT,
  idempotency_key TEXT, event_type TEXT, source TEXT, occurred_at TEXT, payload TEXT,
  fingerprint TEXT, outcome TEXT NOT NULL);
CREATE TABLE idempotency_keys (tenant_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
  state TEXT NOT NULL, fingerprint TEXT NOT NULL, first_raw_id INTEGER, last_raw_id INTEGER,
  PRIMARY KEY (tenant_id, idempotency_key)) WITHOUT ROWID;
CREATE TABLE exceptions (exception_id INTEGER PRIMARY KEY, tenant_id TEXT,
  idempotency_key TEXT, reason_code TEXT NOT NULL, raw_id INTEGER NOT NULL, status TEXT);
CREATE TABLE outbox (delivery_id INTEGER PRIMARY KEY, tenant_id TEXT, idempotency_key TEXT,
  raw_id INTEGER, event_type TEXT, payload TEXT);
"""


def _sqlite_valid(ex: Any, allow: set, raw_id: int, exc_id: int, text: str,
                  obj: dict) -> tuple[str, int]:
    """One valid event of ``phase_sqlite``: its key, outbox, exception and raw rows;
    (outcome, the last exception id)."""
    tenant, key, etype = obj["tenant_id"], obj["idempotency_key"], obj["event_type"]
    payload = obj["payload"]
    canon = orjson.dumps({"event_type": etype, "payload": _normalize(payload)},
                         option=orjson.OPT_SORT_KEYS)
    fp = hashlib.blake2b(canon, digest_size=16).hexdigest()
    allowed = ("", etype) in allow or (tenant, etype) in allow
    cur = ex("INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?) "
             "ON CONFLICT DO NOTHING",
             (tenant, key, "processed" if allowed else "quarantined", fp,
              raw_id, raw_id))
    if cur.rowcount == 1:
        if allowed:
            outcome = "processed"
            ex("INSERT INTO outbox VALUES (NULL, ?, ?, ?, ?, ?)",
               (tenant, key, raw_id, etype, orjson.dumps(payload).decode()))
        else:
            outcome = "exceptions_opened"
            exc_id += 1
            ex("INSERT INTO exceptions VALUES (?, ?, ?, 'UNKNOWN_EVENT_TYPE', ?, 'open')",
               (exc_id, tenant, key, raw_id))
    else:
        state, kfp = ex("SELECT state, fingerprint FROM idempotency_keys "
                        "WHERE tenant_id = ? AND idempotency_key = ?",
                        (tenant, key)).fetchone()
        if state == "quarantined":
            outcome = "attached"
        elif kfp == fp:
            outcome = "duplicates"
        else:
            outcome = "exceptions_opened"
            exc_id += 1
            ex("INSERT INTO exceptions VALUES (?, ?, ?, 'IDEMPOTENCY_CONFLICT', ?, 'open')",
               (exc_id, tenant, key, raw_id))
            ex("UPDATE idempotency_keys SET state = 'quarantined' "
               "WHERE tenant_id = ? AND idempotency_key = ?", (tenant, key))
        ex("UPDATE idempotency_keys SET last_raw_id = ? "
           "WHERE tenant_id = ? AND idempotency_key = ?", (raw_id, tenant, key))
    ex("INSERT INTO raw_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
       (raw_id, text, tenant, key, etype, obj.get("source"), obj.get("occurred_at"),
        orjson.dumps(payload).decode(), fp, outcome))
    return outcome, exc_id


def phase_sqlite(db: str, path: str, limit: int) -> dict[str, Any]:
    """Row by row: parse, canonicalise (sorted keys), hash, INSERT … ON CONFLICT DO NOTHING,
    look up on conflict to tell duplicate from conflict, append the raw; commit every 10k."""
    import sqlite3

    from opswb.testing.reference import load_allowlist

    allow = load_allowlist()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.executescript(_SQLITE_SCHEMA)
    ex = con.execute
    counts = dict.fromkeys(("received", "processed", "duplicates", "exceptions_opened",
                            "attached"), 0)
    raw_id = exc_id = 0
    t0 = time.perf_counter()
    ex("BEGIN")
    with open(path, "rb") as f:
        for line in f:
            if raw_id >= limit:
                break
            raw_id += 1
            text = line.rstrip(b"\n").decode("utf-8")
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError:
                obj = None
            valid = isinstance(obj, dict) and isinstance(obj.get("payload"), dict) and all(
                isinstance(obj.get(k), str) and obj[k]
                for k in ("tenant_id", "idempotency_key", "event_type"))
            if not valid:
                exc_id += 1
                ex("INSERT INTO exceptions VALUES (?, NULL, NULL, 'INVALID_EVENT', ?, 'open')",
                   (exc_id, raw_id))
                ex("INSERT INTO raw_events (raw_id, text, outcome) VALUES (?, ?, 'exceptions_opened')",
                   (raw_id, text))
                outcome = "exceptions_opened"
            else:
                outcome, exc_id = _sqlite_valid(ex, allow, raw_id, exc_id, text, obj)
            counts["received"] += 1
            counts[outcome] += 1
            if raw_id % 10_000 == 0:
                ex("COMMIT")
                ex("BEGIN")
    ex("COMMIT")
    con.close()
    return {"seconds": time.perf_counter() - t0, "events": raw_id, "summary": counts}


def run_child(args: argparse.Namespace) -> None:
    if args.phase == "opswb":
        out = phase_opswb(args.db, args.file)
    elif args.phase == "bound":
        out = phase_store_bound(args.db, args.file)
    elif args.phase == "floor":
        out = phase_floor(args.file)
    else:
        out = phase_sqlite(args.db, args.file, args.limit)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out["rss_mb"] = ru.ru_maxrss / 1024
    out["cpu_seconds"] = ru.ru_utime + ru.ru_stime  # whole process, imports included
    print("RESULT " + json.dumps(out))


# -- the driver -------------------------------------------------------------------------
def spawn(*argv: str, src: Path | None = None, script: str = __file__) -> dict[str, Any]:
    """Run one phase of ``script`` in a fresh interpreter (with the package under ``src``,
    if given); its result line, plus wall time."""
    t0 = time.perf_counter()
    env = {**os.environ, "OPSWB_BENCH_SRC": str(src)} if src else None
    proc = subprocess.run([sys.executable, script, "--phase", *argv], cwd=src or ROOT,
                          check=False, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"phase {argv[0]} failed (exit {proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    out = json.loads(lines[-1][7:])
    out["wall_seconds"] = wall
    return out


def generate(workdir: Path, n: int, n_b: int) -> tuple[Path, Path, dict, dict, float]:
    """Files A and B with the generator's expected summaries (B's: after A)."""
    from opswb.testing.synth import SynthStream, write_items

    t0 = time.perf_counter()
    a = SynthStream(n, seed=1, dup_rate=0.03, conflict_rate=0.005, unknown_rate=0.002,
                    payload_bytes=400, key_prefix="a")
    path_a = write_items(workdir / "A.jsonl", a)
    b = SynthStream(n_b, seed=2, dup_rate=0.03, conflict_rate=0.005, unknown_rate=0.002,
                    payload_bytes=400, key_prefix="b", overlap_from=a, overlap_rate=0.001)
    path_b = write_items(workdir / "B.jsonl", b)
    return (path_a, path_b, {**a.counts, "skipped_files": []},
            {**b.counts, "skipped_files": []}, time.perf_counter() - t0)


def export_rev(rev: str, workdir: Path) -> Path:
    """The package as commit ``rev`` had it, unpacked under ``workdir``."""
    dest = workdir / "baseline-src"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "opswb", "data"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run_opswb(res: dict, paths: tuple[Path, Path], db: Path, base: Path | None,
              base_db: Path) -> None:
    """The two opswb phases; with a baseline, each interleaved with the baseline's."""
    for label, path in (("empty", paths[0]), ("prefilled", paths[1])):
        res[f"opswb-{label}"] = spawn("opswb", "--db", str(db), "--file", str(path))
        if base is not None:
            res[f"baseline-{label}"] = spawn("opswb", "--db", str(base_db), "--file",
                                             str(path), src=base)


def check(name: str, got: dict | None, want: dict) -> str:
    if got is None:
        return ""
    bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    return f"{name}: summary matches the planted events" if not bad else \
        f"{name}: SUMMARY MISMATCH (got, expected): {bad}"


def run_phases(args: argparse.Namespace, n: int, n_b: int
               ) -> tuple[dict[str, dict[str, Any]], tuple[dict, dict], float, int]:
    """Generate A and B, run every phase: (results by phase, what A and B planted,
    generation seconds, events the SQLite baseline ran on)."""
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="opswb-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db, sq = workdir / "opswb.duckdb", workdir / "baseline.sqlite"
    bound, base_db = workdir / "bound.duckdb", workdir / "baseline.duckdb"
    for p in (db, Path(f"{db}.wal"), bound, Path(f"{bound}.wal"), base_db,
              Path(f"{base_db}.wal"), sq, Path(f"{sq}-wal"),
              Path(f"{sq}-shm")):
        p.unlink(missing_ok=True)
    try:
        path_a, path_b, exp_a, exp_b, gen_s = generate(workdir, n, n_b)
        print(f"generated A ({n:,} events, {path_a.stat().st_size / 2**20:.0f} MB) and "
              f"B ({n_b:,}) in {gen_s:.1f}s under {workdir}", flush=True)
        res: dict[str, dict[str, Any]] = {}
        base = export_rev(args.baseline_rev, workdir) if args.baseline_rev else None
        run_opswb(res, (path_a, path_b), db, base, base_db)
        res["duckdb-floor"] = spawn("floor", "--file", str(path_a))
        res["store-bound"] = spawn("bound", "--db", str(bound), "--file", str(path_a))
        sq_n = min(n, args.sqlite_max)
        if not args.skip_sqlite:
            res["sqlite-rowwise"] = spawn("sqlite", "--db", str(sq), "--file", str(path_a),
                                          "--limit", str(sq_n))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return res, (exp_a, exp_b), gen_s, sq_n


def report(res: dict[str, dict[str, Any]], n: int, sq_n: int, exp_a: dict,
           exp_b: dict) -> dict[str, float]:
    """Print the phases' figures and ratios and check opswb's summaries; the ratios."""
    for r in res.values():
        r["events_per_s"] = r["events"] / r["seconds"] if r["seconds"] else 0.0
    print(f"\n{'phase':<17}{'events':>11}{'seconds':>10}{'events/s':>12}{'peak RSS MB':>13}"
          f"{'process CPU s':>15}")
    for name, r in res.items():
        print(f"{name:<17}{r['events']:>11,}{r['seconds']:>10.2f}{r['events_per_s']:>12,.0f}"
              f"{r['rss_mb']:>13.0f}{r['cpu_seconds']:>15.1f}")
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"(load average {load:.1f} on {os.cpu_count()} CPUs: other work shared this "
              "machine, so seconds are inflated; process CPU s is the steadier figure)")
    floor = res["duckdb-floor"]["events_per_s"]
    ratios = {"opswb-empty / floor": res["opswb-empty"]["events_per_s"] / floor,
              "opswb-prefilled / floor": res["opswb-prefilled"]["events_per_s"] / floor}
    bound_rate = res["store-bound"]["events_per_s"]
    ratios["store-bound / floor"] = bound_rate / floor
    ratios["opswb-empty / store-bound"] = res["opswb-empty"]["events_per_s"] / bound_rate
    for label in ("empty", "prefilled"):
        if f"baseline-{label}" in res:
            ratios[f"opswb-{label} / baseline"] = (res[f"opswb-{label}"]["events_per_s"]
                                                   / res[f"baseline-{label}"]["events_per_s"])
    if "sqlite-rowwise" in res:
        sqlite = res["sqlite-rowwise"]["events_per_s"]
        ratios["opswb-empty / sqlite"] = res["opswb-empty"]["events_per_s"] / sqlite
        ratios["store-bound / sqlite"] = bound_rate / sqlite
    print("\nthroughput ratios (events/s over events/s):")
    for k, v in ratios.items():
        print(f"  {k:<26}{v:6.2f}x")
    print("  (store-bound times only its writes: its chunks were staged off the clock, though"
          " its process CPU s includes that staging)")
    if "sqlite-rowwise" in res and sq_n < n:
        print(f"  (SQLite ran on the first {sq_n:,} events of A only; its rate on a "
              "smaller table is, if anything, flattering to it)")
    print(f"\nstore after A+B: {res['opswb-prefilled']['store_mb']:.0f} MB; "
          f"health: {json.dumps(res['opswb-prefilled']['health'])}")
    for name, want in (("opswb-empty", exp_a), ("opswb-prefilled", exp_b),
                       ("baseline-empty", exp_a), ("baseline-prefilled", exp_b)):
        if name in res:
            print(check(name, res[name].get("summary"), want))
    return ratios


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="events in file A")
    ap.add_argument("--n-b", type=int, default=None, help="events in file B (default N/2)")
    ap.add_argument("--workdir", help="where files and stores go (kept); default a temp dir")
    ap.add_argument("--json", dest="json_out", help="write the figures to this file")
    ap.add_argument("--sqlite-max", type=int, default=1_000_000,
                    help="SQLite baseline runs on at most this many events of A")
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--baseline-rev", help="also run the opswb phases with this commit's code")
    ap.add_argument("--phase", choices=("opswb", "floor", "sqlite", "bound"), help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase:
        run_child(args)
        return 0
    if args.db and args.db.startswith(("postgresql://", "postgres://")):
        # PostgreSQL: opswb beside a plain set-wise baseline on the same server
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from ingest_postgres import run as run_postgres

        with tempfile.TemporaryDirectory() as d:
            run_postgres(args.db, args.n, Path(args.workdir or d))
        return 0

    n, n_b = args.n, args.n_b if args.n_b is not None else max(1, args.n // 2)
    res, (exp_a, exp_b), gen_s, sq_n = run_phases(args, n, n_b)
    ratios = report(res, n, sq_n, exp_a, exp_b)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            {"n": n, "n_b": n_b, "machine": {"cpus": os.cpu_count(), "python": sys.version},
             "generate_seconds": gen_s, "phases": res, "ratios": ratios,
             "expected": {"A": exp_a, "B": exp_b}, "sqlite_events": sq_n,
             "baseline_rev": args.baseline_rev}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

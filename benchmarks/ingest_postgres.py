"""Bulk ingest on PostgreSQL: opswb beside a plain set-wise baseline on the same server.

    python benchmarks/ingest_postgres.py [--n 200000] [--db postgresql://USER@HOST:PORT/DB]
    python benchmarks/ingest.py --db postgresql://… [--n 200000]

Without ``--db`` a throwaway cluster is started (initdb in a temp dir, a free loopback
port, durable settings: fsync and synchronous_commit on, ``pg_stat_statements`` loaded)
and removed after; with it, the URL's user needs CREATEDB. Generates N events (3%
duplicates, 0.5% conflicts, 0.2% unknown types, ~400-byte payloads) and ingests them,
each phase in a child process and a fresh database (dropped after):

  opswb-postgres    ``opswb.connect(url).ingest(file)``: every SPEC rule (§3–§5, §10, §13)
  plain-setwise     the floor such a store can reach with no rules: per chunk of the same
                    size, parse and fingerprint each line (the same SPEC §4 function),
                    COPY to a staging table, ``INSERT`` the raws and ``INSERT … ON
                    CONFLICT DO UPDATE`` one record per key (arrival count); no
                    classification, exceptions, outbox or ledger, and one index per table
  setwise-indexed   the same with the raw table's secondary indexes that opswb's reads
                    need (by id, by key, by origin) and an outbox row per new key

Per phase: wall seconds, events/s, the client's CPU seconds (all its threads), the
server's CPU seconds (every PostgreSQL process of the cluster, when it is ours), the
client's peak RSS, and with ``--statements`` the top statements by server time
(``pg_stat_statements``). Figures are printed, never asserted; on a shared machine they
move run to run, so compare the ratios taken in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASELINE_SCHEMA = """
CREATE TABLE raw (tenant_id text NOT NULL, raw_id bigserial, text text NOT NULL,
                  idempotency_key text, event_type text, fingerprint text,
                  PRIMARY KEY (tenant_id, raw_id));
CREATE TABLE keys (tenant_id text NOT NULL, idempotency_key text NOT NULL,
                   fingerprint text, arrivals bigint NOT NULL,
                   PRIMARY KEY (tenant_id, idempotency_key));
"""

# What opswb's reads need and the plain baseline leaves out: the raw table's secondary
# indexes and an outbox row per delivered key.
INDEXED_SCHEMA = BASELINE_SCHEMA + """
CREATE INDEX raw_by_id ON raw (raw_id);
CREATE INDEX raw_by_key ON raw (tenant_id, idempotency_key, raw_id);
CREATE INDEX raw_by_origin ON raw (event_type, raw_id);
CREATE TABLE outbox (tenant_id text NOT NULL, delivery_id bigserial,
                     idempotency_key text NOT NULL, raw_id bigint NOT NULL,
                     PRIMARY KEY (tenant_id, delivery_id));
CREATE INDEX outbox_by_key ON outbox (tenant_id, idempotency_key, delivery_id);
"""

BASELINE_CHUNK = """
INSERT INTO raw (tenant_id, text, idempotency_key, event_type, fingerprint)
SELECT tenant_id, text, idempotency_key, event_type, fingerprint FROM stage ORDER BY seq;
INSERT INTO keys AS k
SELECT DISTINCT ON (tenant_id, idempotency_key) tenant_id, idempotency_key, fingerprint,
       count(*) OVER (PARTITION BY tenant_id, idempotency_key)
FROM stage ORDER BY tenant_id, idempotency_key, seq
ON CONFLICT (tenant_id, idempotency_key) DO UPDATE SET arrivals = k.arrivals + EXCLUDED.arrivals;
"""

# Before the key records move: an outbox row for each key new in the chunk (its first
# arrival there), the raw ids taken in the stage (``stage.raw_id`` defaults to the raws').
OUTBOX_CHUNK = """
INSERT INTO outbox (tenant_id, idempotency_key, raw_id)
SELECT DISTINCT ON (tenant_id, idempotency_key) tenant_id, idempotency_key, raw_id
FROM stage s WHERE NOT EXISTS (SELECT 1 FROM keys k WHERE k.tenant_id = s.tenant_id
                                 AND k.idempotency_key = s.idempotency_key)
ORDER BY tenant_id, idempotency_key, seq
"""


# ---- the phases (each in a child process) ------------------------------------------------
def phase_opswb(url: str, path: Path) -> dict:
    import opswb

    return {"summary": opswb.connect(url).ingest(str(path))}


def phase_baseline(url: str, path: Path, chunk: int, indexed: bool = False) -> dict:
    import orjson
    import psycopg

    from opswb.core.fingerprint import fingerprint

    with psycopg.connect(url) as con:
        con.execute(INDEXED_SCHEMA if indexed else BASELINE_SCHEMA)
        con.execute("CREATE UNLOGGED TABLE stage (seq bigint, tenant_id text,"
                    " idempotency_key text, event_type text, text text, fingerprint text"
                    + (", raw_id bigint DEFAULT nextval('raw_raw_id_seq'))" if indexed
                       else ")"))
        chunk_sql = BASELINE_CHUNK
        if indexed:
            chunk_sql = (OUTBOX_CHUNK + ";" + BASELINE_CHUNK).replace(
                "INSERT INTO raw (tenant_id, text,", "INSERT INTO raw (raw_id, tenant_id, text,"
            ).replace("SELECT tenant_id, text,", "SELECT raw_id, tenant_id, text,")
        con.commit()
        with open(path, "rb") as f:
            lines = f.read().splitlines()
        for start in range(0, len(lines), chunk):
            with con.cursor() as cur, cur.copy(
                    "COPY stage (seq, tenant_id, idempotency_key, event_type, text,"
                    " fingerprint) FROM STDIN") as copy:
                for seq, line in enumerate(lines[start:start + chunk], 1):
                    ev = orjson.loads(line)
                    copy.write_row((seq, ev["tenant_id"], ev["idempotency_key"],
                                    ev["event_type"], line.decode(),
                                    fingerprint(ev["event_type"], ev["payload"])))
            con.execute(chunk_sql)
            con.execute("TRUNCATE stage")
            con.commit()
    return {}


def run_child(args: argparse.Namespace) -> None:
    if args.src:  # another tree's package (``--older``)
        sys.path.insert(0, args.src)
    from opswb.engine.readers import chunk_rows

    t0 = time.perf_counter()
    if args.phase.startswith("opswb"):
        res = phase_opswb(args.url, Path(args.file))
    else:
        res = phase_baseline(args.url, Path(args.file), chunk_rows(),
                             indexed=args.phase == "setwise-indexed")
    use = resource.getrusage(resource.RUSAGE_SELF)
    res.update(seconds=time.perf_counter() - t0, client_cpu=use.ru_utime + use.ru_stime,
               peak_mb=use.ru_maxrss / 1024)
    print(json.dumps(res))


# ---- the server --------------------------------------------------------------------------
class OwnCluster:
    """A throwaway cluster for one run: durable settings, ``pg_stat_statements`` loaded."""

    def __init__(self) -> None:
        from tests.support.postgres import Cluster, _bin_dir

        bindir = _bin_dir()
        if bindir is None:
            raise SystemExit("PostgreSQL is not installed: pass --db postgresql://…")
        self.c = Cluster(bindir)
        self.c.start = self._start  # durable, unlike the tests' cluster

    def _start(self) -> None:
        c = self.c
        c._run(str(c.bindir / "initdb"), "-D", str(c.data), "-A", "trust", "-U",
               "postgres", "-E", "UTF8")
        opts = (f"-p {c.port} -k {c.root} -h 127.0.0.1 -c shared_buffers=256MB"
                " -c max_wal_size=2GB -c shared_preload_libraries=pg_stat_statements"
                " -c pg_stat_statements.track=all -c track_io_timing=on")
        c._run(str(c.bindir / "pg_ctl"), "-D", str(c.data), "-o", opts, "-l",
               str(c.root / "log"), "-w", "start")

    def __enter__(self) -> str:
        self.c.start()
        return self.c.url + "/postgres"

    def __exit__(self, *exc: object) -> None:
        self.c.stop()

    def cpu_seconds(self) -> float:
        """CPU of every process of the cluster so far: the postmaster, the backends that
        exited (reaped into its children's times) and those alive."""
        pid = int((self.c.data / "postmaster.pid").read_text().split()[0])
        tick = os.sysconf("SC_CLK_TCK")

        def stat(p: int) -> list[str]:
            return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()

        f = stat(pid)
        total = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            try:
                total += sum(int(x) for x in stat(int(child))[11:13])
            except FileNotFoundError:
                pass
        return total / tick


def _admin(admin_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(sql)


def _statements(admin_url: str, db: str, top: int) -> list[dict]:
    import psycopg

    q = """SELECT calls, total_exec_time, rows, shared_blks_hit + shared_blks_read
                  + local_blks_hit + local_blks_read, left(regexp_replace(query, '\\s+', ' ',
                  'g'), 90)
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
           WHERE d.datname = %s ORDER BY total_exec_time DESC LIMIT %s"""
    with psycopg.connect(admin_url, autocommit=True) as con:
        return [dict(zip(("calls", "ms", "rows", "blocks", "query"), r))
                for r in con.execute(q, [db, top])]


def run_phase(name: str, admin_url: str, path: Path, cluster: OwnCluster | None,
              top: int, src: str | None = None) -> dict:
    db = f"{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    _admin(admin_url, f"CREATE DATABASE {db}")
    url = admin_url.rsplit("/", 1)[0] + "/" + db
    try:
        if top:
            _admin(admin_url, "SELECT pg_stat_statements_reset()")
        _admin(admin_url, "CHECKPOINT")
        before = cluster.cpu_seconds() if cluster else None
        out = subprocess.run([sys.executable, __file__, "--phase", name, "--url", url,
                              "--file", str(path), *(["--src", src] if src else [])],
                             check=True, capture_output=True,
                             text=True, env={**os.environ, "OPSWB_LOG_LEVEL": "warning"})
        res = json.loads(out.stdout.strip().splitlines()[-1])
        if cluster:
            time.sleep(0.3)  # the backends exit and are reaped
            res["server_cpu"] = cluster.cpu_seconds() - before
        if top:
            res["statements"] = _statements(admin_url, db, top)
    finally:
        _admin(admin_url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return res


def run(admin_url: str, n: int, workdir: Path, cluster: OwnCluster | None = None,
        top: int = 0, phases: tuple[str, ...] = ("opswb-postgres", "plain-setwise",
                                                  "setwise-indexed"),
        older: str | None = None) -> dict:
    from opswb.testing.synth import write_jsonl

    expected: dict = {}
    path = write_jsonl(workdir / "a.jsonl", n, seed=1, expected=expected)
    expected.pop("kinds")
    print(f"generated {n:,} events ({path.stat().st_size / 2**20:.0f} MB)")
    if top:
        _admin(admin_url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    out = {}
    for name in phases + (("opswb-older",) if older else ()):
        res = out[name] = run_phase(name, admin_url, path, cluster, top,
                                    older if name == "opswb-older" else None)
        res["events_per_s"] = n / res["seconds"]
        server = f"  server CPU {res['server_cpu']:6.1f} s" if "server_cpu" in res else ""
        print(f"{name:16} {res['seconds']:7.1f} s  {res['events_per_s']:9,.0f} events/s"
              f"  client CPU {res['client_cpu']:6.1f} s{server}"
              f"  peak RSS {res['peak_mb']:5.0f} MB")
        for s in res.get("statements", []):
            print(f"    {s['ms'] / 1000:7.2f} s {s['calls']:5} calls {s['rows']:9,} rows"
                  f"  {s['query']}")
    if "opswb-postgres" in out:
        summary = out["opswb-postgres"]["summary"]
        if summary != expected:
            raise SystemExit(f"opswb-postgres: summary {summary} differs from the planted"
                             f" {expected}")
        print("opswb-postgres: summary matches the planted events")
        for base in [p for p in out if p != "opswb-postgres"]:
            ratio = out["opswb-postgres"]["events_per_s"] / out[base]["events_per_s"]
            out[f"ratio_{base}"] = ratio
            label = {"plain-setwise": "plain set-wise"}.get(base, base)
            cpu = ""
            if "server_cpu" in out[base]:
                mine, theirs = (out[p]["client_cpu"] + out[p]["server_cpu"]
                                for p in ("opswb-postgres", base))
                out[f"cpu_ratio_{base}"] = theirs / mine
                cpu = f", by CPU seconds (client + server) {theirs / mine:.2f}x"
            print(f"opswb / {label}: {ratio:.2f}x by rate{cpu}  (one run on this machine)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", help="postgresql:// URL of a database to connect to; the runs"
                    " use fresh databases created beside it (default: a throwaway cluster)")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--statements", type=int, default=0, metavar="TOP",
                    help="print each phase's TOP statements by server time")
    ap.add_argument("--only", action="append", help="run only these phases")
    ap.add_argument("--older", metavar="DIR", help="also run the opswb phase with the"
                    " package under DIR (e.g. an older commit's `git archive REV opswb`)")
    ap.add_argument("--workdir")
    ap.add_argument("--src", help=argparse.SUPPRESS)
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.phase:
        run_child(args)
        return 0
    phases = tuple(args.only) if args.only else ("opswb-postgres", "plain-setwise",
                                                 "setwise-indexed")
    with tempfile.TemporaryDirectory() as d:
        workdir = Path(args.workdir or d)
        if args.db:
            run(args.db, args.n, workdir, None, args.statements, phases, args.older)
        else:
            cluster = OwnCluster()
            with cluster as admin_url:
                run(admin_url, args.n, workdir, cluster, args.statements, phases,
                    args.older)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPSWB_LOG_LEVEL", "warning")
    raise SystemExit(main())

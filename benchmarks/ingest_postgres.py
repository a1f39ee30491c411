"""Bulk ingest on PostgreSQL: opswb beside a plain set-wise baseline on the same server.

    python benchmarks/ingest.py --db postgresql://USER@HOST:PORT/DB [--n 200000]
    python benchmarks/ingest_postgres.py --db postgresql://… [--n 200000]

Generates N events (3% duplicates, 0.5% conflicts, 0.2% unknown types, ~400-byte
payloads) and ingests them, each into a fresh database created on that server (the URL's
user needs CREATEDB; both are dropped after):

  opswb-postgres    ``opswb.connect(url).ingest(file)``: COPY to a temp table, key locks
                    in key order, SPEC §5 classified set-wise, exceptions with details
  plain-setwise     the floor such a store can reach with no rules: per chunk of the same
                    size, parse and fingerprint each line (the same SPEC §4 function),
                    COPY to a staging table, ``INSERT`` the raws and ``INSERT … ON
                    CONFLICT DO UPDATE`` one record per key (arrival count); no
                    classification, exceptions or outbox

Figures are printed, never asserted; on a shared machine they move run to run.
"""

from __future__ import annotations

import argparse
import os
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

BASELINE_CHUNK = """
INSERT INTO raw (tenant_id, text, idempotency_key, event_type, fingerprint)
SELECT tenant_id, text, idempotency_key, event_type, fingerprint FROM stage ORDER BY seq;
INSERT INTO keys AS k
SELECT DISTINCT ON (tenant_id, idempotency_key) tenant_id, idempotency_key, fingerprint,
       count(*) OVER (PARTITION BY tenant_id, idempotency_key)
FROM stage ORDER BY tenant_id, idempotency_key, seq
ON CONFLICT (tenant_id, idempotency_key) DO UPDATE SET arrivals = k.arrivals + EXCLUDED.arrivals;
TRUNCATE stage;
"""


def _database(admin_url: str, prefix: str) -> str:
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _drop(admin_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def phase_opswb(url: str, path: Path) -> dict:
    import opswb

    t0 = time.perf_counter()
    summary = opswb.connect(url).ingest(str(path))
    return {"seconds": time.perf_counter() - t0, "summary": summary}


def phase_baseline(url: str, path: Path, chunk: int) -> dict:
    import orjson
    import psycopg

    from opswb.core.fingerprint import fingerprint

    t0 = time.perf_counter()
    with psycopg.connect(url) as con:
        con.execute(BASELINE_SCHEMA)
        con.execute("CREATE UNLOGGED TABLE stage (seq bigint, tenant_id text,"
                    " idempotency_key text, event_type text, text text, fingerprint text)")
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
            con.execute(BASELINE_CHUNK)
            con.commit()
    return {"seconds": time.perf_counter() - t0}


def run(admin_url: str, n: int, workdir: Path) -> dict:
    from opswb.engine.readers import chunk_rows
    from opswb.testing.synth import write_jsonl

    expected: dict = {}
    path = write_jsonl(workdir / "a.jsonl", n, seed=1, expected=expected)
    expected.pop("kinds")
    print(f"generated {n:,} events ({path.stat().st_size / 2**20:.0f} MB)")
    out = {}
    for name, fn in (("opswb-postgres", lambda u: phase_opswb(u, path)),
                     ("plain-setwise", lambda u: phase_baseline(u, path, chunk_rows()))):
        url = _database(admin_url, name.replace("-", "_"))
        try:
            res = fn(url)
        finally:
            _drop(admin_url, url)
        res["events_per_s"] = n / res["seconds"]
        out[name] = res
        print(f"{name:15} {res['seconds']:7.1f} s  {res['events_per_s']:9,.0f} events/s")
    summary = out["opswb-postgres"]["summary"]
    if summary != expected:
        raise SystemExit(f"opswb-postgres: summary {summary} differs from the planted {expected}")
    print("opswb-postgres: summary matches the planted events")
    ratio = out["opswb-postgres"]["events_per_s"] / out["plain-setwise"]["events_per_s"]
    print(f"opswb / plain set-wise: {ratio:.2f}x  (figures from one run on this machine)")
    out["ratio"] = ratio
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", required=True, help="postgresql:// URL of a database to connect"
                    " to; the runs use fresh databases created beside it")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--workdir")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        run(args.db, args.n, Path(args.workdir or d))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPSWB_LOG_LEVEL", "warning")
    raise SystemExit(main())

"""DuckDB's WAL bytes per one-row commit into a table with a list column.

    python benchmarks/duckdb_list_wal.py [--commits 200]

Why the served store's WAL grew by ~6-12 KB per one-event request while its three rows
take ~1.7 KB: a one-row commit into a table with a non-empty ``VARCHAR[]`` value writes
the list children of every row appended since the last checkpoint again, so the WAL
grows quadratically until the checkpoint (``idempotency_keys.adjudicated_fingerprints``
is such a column). An empty list or a NULL does not. Plain DuckDB, no opswb code;
figures only.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import duckdb

VARIANTS = {
    "[fingerprint] (a bound list)": ("INSERT INTO k VALUES (?, ?)", lambda i, fp: [i, [fp]]),
    "[fingerprint] (built in SQL)": ("INSERT INTO k VALUES (?, [?])", lambda i, fp: [i, fp]),
    "[] (empty list)": ("INSERT INTO k VALUES (?, [])", lambda i, fp: [i]),
    "NULL": ("INSERT INTO k VALUES (?, NULL)", lambda i, fp: [i]),
}


def wal_bytes_per_commit(path: Path, sql: str, args, commits: int) -> list[int]:
    for p in (path, Path(f"{path}.wal")):
        p.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE k (id BIGINT, fps VARCHAR[])")
    con.execute("CHECKPOINT")
    wal = Path(f"{path}.wal")
    sizes = []
    for i in range(commits):
        before = wal.stat().st_size if wal.exists() else 0
        con.execute("BEGIN")
        con.execute(sql, args(i, f"{i:032x}"))
        con.execute("COMMIT")
        sizes.append(wal.stat().st_size - before)
    con.close()
    return sizes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commits", type=int, default=200)
    args = ap.parse_args(argv)
    print(f"duckdb {duckdb.__version__}; WAL bytes written by one-row commits after a "
          f"checkpoint (commit 1, 2, 3 … {args.commits})")
    with tempfile.TemporaryDirectory() as d:
        for label, (sql, bind) in VARIANTS.items():
            s = wal_bytes_per_commit(Path(d) / "k.duckdb", sql, bind, args.commits)
            print(f"  {label:<30} {s[0]:>6} {s[1]:>6} {s[2]:>6} … {s[-1]:>7}"
                  f"   total {sum(s) / 1024:8.1f} KB")
    print(f"(load average {os.getloadavg()[0]:.1f}; sizes, not timings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

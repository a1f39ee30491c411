"""The ingest benchmark runs end to end on a small file and reports every phase.

Timings are never asserted: only that each phase ran on the whole file, that opswb's
summaries match the events the generator planted, and that the store-bound phase stored
what it claims to (every arrival, with a key record and an outbox row each).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_ingest_benchmark_reports_every_phase_on_a_small_file(tmp_path):
    out = tmp_path / "figures.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--n", "3000", "--n-b",
         "1000", "--workdir", str(tmp_path), "--json", str(out)],
        capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "opswb-empty: summary matches the planted events" in r.stdout
    assert "opswb-prefilled: summary matches the planted events" in r.stdout
    figures = json.loads(out.read_text())
    phases = figures["phases"]
    assert set(phases) == {"opswb-empty", "opswb-prefilled", "duckdb-floor", "store-bound",
                           "sqlite-rowwise"}
    assert phases["opswb-prefilled"]["events"] == 1000
    for name in ("opswb-empty", "duckdb-floor", "store-bound", "sqlite-rowwise"):
        assert phases[name]["events"] == 3000, name
        assert phases[name]["seconds"] > 0, name
    assert {"store-bound / floor", "opswb-empty / store-bound",
            "store-bound / sqlite"} <= set(figures["ratios"])

    # Every arrival of A is a raw row; every valid one has a key record and an outbox
    # row, as in opswb's store for the same file (A's raws are raw_ids 1..3000 there).
    count_valid = "SELECT count(*) FILTER (WHERE valid) FROM raw_events WHERE raw_id <= 3000"
    with duckdb.connect(str(tmp_path / "opswb.duckdb"), read_only=True) as con:
        valid = con.execute(count_valid).fetchall()[0][0]
    with duckdb.connect(str(tmp_path / "bound.duckdb"), read_only=True) as con:
        raws, bound_valid, keys, deliveries, delivered_raws = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE valid), (SELECT count(*) FROM"
            " idempotency_keys), (SELECT count(*) FROM deliveries), (SELECT count(DISTINCT"
            " raw_id) FROM deliveries) FROM raw_events").fetchall()[0]
    assert raws == 3000
    assert bound_valid == valid > 0
    assert keys == deliveries == delivered_raws == valid


def test_gate_benchmark_runs_every_server_at_each_client_count(tmp_path):
    out = tmp_path / "gate.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gate.py"), "--events", "12",
         "--clients", "1,3", "--max-seconds", "20", "--workdir", str(tmp_path),
         "--json", str(out)],
        capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert set(figures["results"]) == {"floor", "sqlite", "sqlite-full", "duckdb", "opswb"}
    for name, by_level in figures["results"].items():
        for level in ("1", "3"):
            got = by_level[level]
            assert got["requests"] == 12 and got["errors"] == 0, (name, level, got)
            assert got["p50_ms"] > 0 and got["events_per_s"] > 0
    assert {"opswb/floor @1", "opswb/sqlite @3", "opswb/sqlite-full @3", "opswb/duckdb @3",
            "duckdb/sqlite @1"} <= set(figures["ratios"])
    # opswb and the DuckDB gate stored every event they answered: the warm-up and the
    # measured ones, each delivered once.
    answered = 2 * 12 + (1 + 3) * 3
    with duckdb.connect(str(tmp_path / "gate-opswb.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw_events WHERE outcome = 'processed'"
                           ).fetchall()[0][0] == answered
    with duckdb.connect(str(tmp_path / "gate-duckdb.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT raw_id) FROM raws WHERE outcome"
                           " = 'processed'").fetchall()[0] == (answered, answered)
        assert con.execute("SELECT count(DISTINCT delivery_id) FROM outbox").fetchall()[0][0] \
            == answered


@pytest.mark.slow
def test_ingest_benchmark_on_postgresql(pg_url):
    """``--db postgresql://…``: opswb and the plain set-wise baseline both run, on fresh
    databases of that server, and opswb's summary matches the planted events."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ingest.py"), "--db", pg_url, "--n", "3000"],
        capture_output=True, text=True, check=False, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "opswb-postgres: summary matches the planted events" in r.stdout
    assert "plain-setwise" in r.stdout and "opswb / plain set-wise" in r.stdout


@pytest.mark.slow
def test_group_benchmark_runs_both_paths_on_a_small_store():
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "groups.py"), "--n", "2000", "--group",
         "200"], capture_output=True, text=True, check=False, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    done = re.findall(r"^(per item \(before\)|set-wise \(now\)): resolved ([\d,]+) of ([\d,]+)"
                      r".*audit chain ok: True", r.stdout, re.MULTILINE)
    assert [d[0] for d in done] == ["per item (before)", "set-wise (now)"], r.stdout
    assert all(d[1] == d[2] and int(d[1]) >= 200 for d in done), r.stdout
    assert "CPU seconds, per item / set-wise:" in r.stdout

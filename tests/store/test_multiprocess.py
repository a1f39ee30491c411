"""SPEC §10 and §13 with real processes: kill -9 and resume, writers sharing one file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

import opswb
from opswb.testing.synth import write_jsonl

OPSWB = [sys.executable, "-m", "opswb.cli"]
VOLATILE = {"received_at", "created_at", "delivered_at", "committed_at", "resolved_at"}


def _run(args, env=None, check=False, **kw):
    return subprocess.run(OPSWB + args, capture_output=True, text=True, check=check,
                          env={**os.environ, **(env or {})}, **kw)


def _comparable(db: str) -> dict:
    con = duckdb.connect(db, read_only=True)
    try:
        out = {}
        for t in ("raw_events", "idempotency_keys", "key_activity", "exceptions", "deliveries",
                  "counters"):
            cur = con.execute(f"SELECT * FROM {t} ORDER BY ALL")
            cols = [d[0] for d in cur.description]
            out[t] = [tuple(v for c, v in zip(cols, r) if c not in VOLATILE)
                      for r in cur.fetchall()]
        return out
    finally:
        con.close()


def _raw_count(db: str) -> int:
    con = duckdb.connect(db, read_only=True)
    try:
        return con.execute("SELECT count(*) FROM raw_events").fetchall()[0][0]
    finally:
        con.close()


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_equals_a_clean_run(tmp_path):
    n = 200_000
    src = write_jsonl(tmp_path / "events.jsonl", n, seed=11)
    env = {"OPSWB_CHUNK_ROWS": "10000"}
    clean_db, killed_db = str(tmp_path / "clean.duckdb"), str(tmp_path / "killed.duckdb")

    clean = _run(["ingest", str(src), "--db", clean_db, "--json"], env=env, check=True)

    proc = subprocess.Popen(OPSWB + ["ingest", str(src), "--db", killed_db, "--json"],
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    # Kill once a quarter of the file is stored, read between two of its chunks (the
    # ingest releases the file there), not after a guessed time: the machine's speed varies.
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if _raw_count(killed_db) >= n // 4:
                break
        except duckdb.Error:  # not created yet, or held by the ingest
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stored = _raw_count(killed_db)
    assert 0 < stored < n, f"kill landed outside the ingest ({stored} of {n} stored)"

    rerun = _run(["ingest", str(src), "--db", killed_db, "--json"], env=env, check=True)
    summary = json.loads(rerun.stdout)
    assert summary["received"] == n - stored          # only what this call stored
    assert summary["received"] == sum(summary[k] for k in (
        "processed", "duplicates", "exceptions_opened", "attached"))
    assert _comparable(killed_db) == _comparable(clean_db)
    assert json.loads(clean.stdout)["received"] == n
    # And a third run is a no-op.
    third = json.loads(_run(["ingest", str(src), "--db", killed_db, "--json"],
                            env=env, check=True).stdout)
    assert third["received"] == 0 and third["skipped_files"] == [str(src)]


@pytest.mark.slow
def test_two_writers_and_a_reader_share_one_file(tmp_path):
    db = str(tmp_path / "shared.duckdb")
    opswb.connect(db).init()
    a = write_jsonl(tmp_path / "a.jsonl", 40_000, seed=1, key_prefix="a")
    b = write_jsonl(tmp_path / "b.jsonl", 40_000, seed=2, key_prefix="b")
    env = {**os.environ, "OPSWB_CHUNK_ROWS": "4000"}
    writers = [subprocess.Popen(OPSWB + ["ingest", str(p), "--db", db, "--json"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for p in (a, b)]
    reads, errors = [], []

    def reader() -> None:
        wb = opswb.connect(db)
        while any(w.poll() is None for w in writers):
            t = time.monotonic()
            try:
                wb.health()
                reads.append(time.monotonic() - t)
            except opswb.OpswbError as e:      # a give-up would be a failure
                errors.append(str(e))

    thread = threading.Thread(target=reader)
    thread.start()
    outs = [w.communicate(timeout=600) for w in writers]
    thread.join()
    assert [w.returncode for w in writers] == [0, 0], outs
    received = sum(json.loads(o[0])["received"] for o in outs)
    assert received == 80_000
    assert opswb.connect(db).health()["raw_events"] == 80_000
    assert errors == []
    assert reads and max(reads) < 10.0               # nobody waited past the bound


def test_busy_store_gives_up_with_a_clear_message(tmp_path):
    db = str(tmp_path / "held.duckdb")
    opswb.connect(db).init()
    holder = subprocess.Popen([sys.executable, "-c",
                               ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
                               " print('held', flush=True); time.sleep(60)"), db],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        r = _run(["health", "--db", db], env={"OPSWB_BUSY_TIMEOUT": "1.5"})
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode != 0
    assert "busy" in r.stderr and db in r.stderr and f"PID {holder.pid}" in r.stderr
    assert "opswb serve" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert 1.5 <= waited < 10


def test_a_held_file_in_this_process_is_released_between_calls(tmp_path):
    db = str(tmp_path / "free.duckdb")
    wb = opswb.connect(db)
    wb.ingest([{"tenant_id": "t", "idempotency_key": "k", "event_type": "order.created",
                "payload": {}}])
    # Another process can open the file right away: the workbench holds nothing.
    r = subprocess.run([sys.executable, "-c", ("import duckdb,sys; duckdb.connect(sys.argv[1])"
                        ".close()"), db], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert Path(db).exists()

"""``opswb deliveries`` as a user runs it: NDJSON on stdout, ``--out`` files, ``--follow``."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import datetime

import pytest

import opswb
from tests.helpers import ev, write_jsonl
from tests.support.server import ServerProcess

OPSWB = [sys.executable, "-m", "opswb.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(OPSWB + list(args), capture_output=True, text=True, check=False)


@pytest.fixture
def store(tmp_path):
    """A store with bulk-loaded and batch deliveries and one replay."""
    db = str(tmp_path / "out.duckdb")
    wb = opswb.connect(db)
    wb.ingest(write_jsonl(tmp_path / "in.jsonl", [
        ev("k1", {"amount": 1, "name": "Zoë"}), ev("k2", {"amount": 2}, tenant="globex"),
        ev("k1", {"amount": 5}),
    ]))
    wb.ingest_batch([ev(f"b{i}", {"amount": i}) for i in range(5)])
    ex = wb.list_exceptions()["items"][0]["exception_id"]
    wb.resolve(ex, "override_and_replay", actor="ann", resolution_notes="ok",
               override_patch={"payload": {"amount": 7}})
    return db, wb.deliveries()["items"]


def test_stdout_is_one_delivery_per_line_exactly_the_items(store):
    db, items = store
    r = run("deliveries", "--db", db)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line) for line in r.stdout.splitlines()] == items
    r = run("deliveries", "--db", db, "--after", items[1]["delivery_id"], "--limit", "2",
            "--tenant", "acme")
    expected = [i for i in items[2:] if i["tenant_id"] == "acme"][:2]
    assert [json.loads(line) for line in r.stdout.splitlines()] == expected


def test_out_jsonl_and_parquet_round_trip(store, tmp_path):
    import pyarrow.parquet as pq

    db, items = store
    r = run("deliveries", "--db", db, "--out", str(tmp_path / "d.jsonl"))
    assert r.returncode == 0, r.stderr
    assert f"wrote {len(items)} deliveries" in r.stdout
    assert f"--after {items[-1]['delivery_id']}" in r.stdout
    lines = (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == items
    r = run("deliveries", "--db", db, "--out", str(tmp_path / "d.parquet"))
    assert r.returncode == 0, r.stderr
    rows = pq.read_table(tmp_path / "d.parquet").to_pylist()
    for row in rows:
        row["payload"] = json.loads(row["payload"])
        row["delivered_at"] = row["delivered_at"].isoformat()
    assert rows == [{**i, "delivered_at": datetime.fromisoformat(i["delivered_at"]).isoformat()}
                    for i in items]
    assert any(row["replay"] and row["payload"] == {"amount": 7} for row in rows)


def test_refusals_are_one_line_and_write_no_file(store, tmp_path):
    db, _ = store
    for args, words in [(["--out", str(tmp_path / "d.csv")], ".parquet"),
                        (["--after", "abc", "--out", str(tmp_path / "e.jsonl")], "cursor")]:
        r = run("deliveries", "--db", db, *args)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.startswith("opswb: error:") and words in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".duckdb") == ["in.jsonl"]


def test_a_reader_that_leaves_early_ends_it_quietly(tmp_path):
    """``opswb deliveries | head -1``: exit 0, nothing on stderr."""
    db = str(tmp_path / "many.duckdb")
    opswb.connect(db).ingest_batch([ev(f"k{i}", {"pad": "x" * 300}) for i in range(3000)])
    proc = subprocess.Popen(OPSWB + ["deliveries", "--db", db], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert json.loads(proc.stdout.readline())["idempotency_key"] == "k0"
    proc.stdout.close()  # about 1 MB more was coming: far past a pipe's buffer
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


def _lines(proc: subprocess.Popen) -> queue.Queue:
    q: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            q.put(line)
    q.pump = threading.Thread(target=pump, daemon=True)  # type: ignore[attr-defined]
    q.pump.start()  # type: ignore[attr-defined]
    return q


def _take(q: queue.Queue, n: int) -> list[dict]:
    return [json.loads(q.get(timeout=30)) for _ in range(n)]


@pytest.fixture(params=["url", "file"])
def target(request, tmp_path):
    """Where the follower reads: an ``opswb serve`` URL (long poll) or the file itself
    (polling; the test's writes then open the file between the follower's reads)."""
    db = str(tmp_path / "follow.duckdb")
    if request.param == "file":
        yield db, opswb.connect(db), {}
        return
    server = ServerProcess(db, tmp_path / "serve.log")
    try:
        served = server.wait()
        wb = opswb.connect(served.url, token=served.token)
        yield served.url, wb, {"OPSWB_API_TOKEN": served.token}
        wb.close()
    finally:
        server.stop()


def test_follow_prints_new_deliveries_until_sigterm(target):
    db, wb, env = target
    wb.ingest_batch([ev("before")])
    proc = subprocess.Popen(OPSWB + ["deliveries", "--db", db, "--follow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})
    try:
        out = _lines(proc)
        assert [i["idempotency_key"] for i in _take(out, 1)] == ["before"]
        wb.ingest_batch([ev("during-1"), ev("during-1"), ev("during-2")])
        assert [i["idempotency_key"] for i in _take(out, 2)] == ["during-1", "during-2"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.stderr.read() == ""
    out.pump.join(10)
    assert out.empty()  # nothing printed twice

"""Group commit through a real ``opswb serve`` (SPEC §9, §13): concurrent clients end in
the state of one sequential run in commit order; a refused request does not fail its
group-mates; and after ``kill -9`` every answered event is stored exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import httpx
import pytest

import opswb
from tests.helpers import ev, observable_state
from tests.support.server import ServerProcess


def _client(served) -> httpx.Client:
    return httpx.Client(base_url=served.url, timeout=120,
                        headers={"Authorization": f"Bearer {served.token}"})


def _post(c: httpx.Client, events: Any, batch_id: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if batch_id:
        headers["Opswb-Batch-Id"] = batch_id
    return c.post("/v1/events", content=json.dumps(events).encode(), headers=headers)


def _untimed(value: Any) -> Any:
    """``value`` without the times a re-run cannot reproduce."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items()
                if not (k.endswith("_at") or k == "oldest_open_age_seconds")}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _state(db: str) -> dict:
    """What a user sees: health, every exception's detail, every key with its arrivals and
    deliveries, and every raw's outcome."""
    wb = opswb.connect(db)
    con = duckdb.connect(db, read_only=True)
    try:
        keys = con.execute("SELECT tenant_id, idempotency_key FROM idempotency_keys"
                           " ORDER BY ALL").fetchall()
        raws = con.execute("SELECT raw_id, text, outcome, exception_id FROM raw_events"
                           " ORDER BY raw_id").fetchall()
        deliveries = con.execute("SELECT delivery_id, raw_id, tenant_id, idempotency_key"
                                 " FROM deliveries ORDER BY delivery_id").fetchall()
    finally:
        con.close()
    return _untimed({**observable_state(wb), "raws": raws, "deliveries": deliveries,
                     "keys": {f"{t}/{k}": wb.key(t, k) for t, k in keys}})


def _workload(n: int) -> list[Any]:
    """Single events and small arrays over few keys: equal and different payloads,
    unknown types, invalid arrivals."""
    rnd = random.Random(14)
    out: list[Any] = []
    for i in range(n):
        key = f"k{rnd.randrange(12)}"
        pick = rnd.random()
        if pick < 0.55:
            out.append(ev(key, {"amount": 100}))
        elif pick < 0.75:
            out.append(ev(key, {"amount": rnd.randrange(3)}))
        elif pick < 0.82:
            out.append(ev(key, event_type="nope.unknown"))
        elif pick < 0.88:
            out.append({"tenant_id": "acme", "idempotency_key": key})  # invalid
        elif pick < 0.94:
            out.append([ev(f"n{i}"), ev(key, {"amount": 100})])
        else:
            out.append(ev(f"new{i}"))
    return out


def test_concurrent_clients_end_as_one_sequential_run_in_commit_order(tmp_path):
    server = ServerProcess(str(tmp_path / "served.duckdb"), tmp_path / "serve.log")
    try:
        served = server.wait()
        work = _workload(240)
        with ThreadPoolExecutor(16) as pool, _client(served) as c:
            codes = list(pool.map(lambda i: _post(c, work[i], f"req-{i}").status_code,
                                  range(len(work))))
        assert codes == [200] * len(work)
    finally:
        server.stop()
    db = str(tmp_path / "served.duckdb")
    con = duckdb.connect(db, read_only=True)
    try:
        # received_at is the transaction's time: some commit held several requests.
        shared = con.execute("SELECT max(n) FROM (SELECT count(DISTINCT origin) AS n"
                             " FROM raw_events GROUP BY received_at)").fetchall()[0][0]
        # Each request's arrivals, in commit order (a request's raws are contiguous).
        requests = con.execute("SELECT origin, list(text ORDER BY raw_id) FROM raw_events"
                               " GROUP BY origin ORDER BY min(raw_id)").fetchall()
    finally:
        con.close()
    assert shared > 1, "no commit held more than one request: nothing was grouped"
    replay = opswb.connect(str(tmp_path / "sequential.duckdb"))
    for origin, texts in requests:
        body = texts[0] if len(texts) == 1 else "[" + ",".join(texts) + "]"
        assert replay.ingest_json(body.encode(), origin.removeprefix("batch:"))["received"]
    assert _state(db) == _state(str(tmp_path / "sequential.duckdb"))


def _round(c: httpx.Client, wb: Any, a: int) -> bool:
    """A large request keeps the server busy (its upload and parse, then its commit) while
    seven small ones arrive: they queue and become one group, if the timing works out: checks each answer; returns whether the three
    stored one-event requests shared one commit."""
    assert _post(c, [ev(f"taken{a}")], f"used{a}").status_code == 200
    big = [ev(f"bulk{a}-{i}", {"n": i}) for i in range(30_000)]
    mates = [([ev(f"m1-{a}")], f"g1-{a}"), ([ev(f"other{a}")], f"used{a}"),
             ([ev(f"m2-{a}")], None), ([ev(f"m3-{a}")], f"g3-{a}"),
             ([ev(f"m3-{a}")], f"g3-{a}"), ([ev(f"m4-{a}")], f"g4-{a}"),
             ([ev(f"m5-{a}")], f"g4-{a}")]
    with ThreadPoolExecutor(len(mates) + 2) as pool:
        bulk = pool.submit(_post, c, big)
        time.sleep(0.3)
        # The first to arrive may find the writer idle and go alone; the rest queue.
        futures = [pool.submit(_post, c, [ev(f"lead{a}")])]
        time.sleep(0.01)
        for events, batch in mates:
            futures.append(pool.submit(_post, c, events, batch))
            time.sleep(0.01)
        answers = [f.result() for f in futures][1:]
        assert bulk.result().status_code == 200
    codes = [r.status_code for r in answers]
    assert codes[1] == 409 and "different body" in answers[1].json()["error"]
    assert codes[0] == codes[2] == codes[3] == codes[4] == 200
    body3, body4 = answers[3].json(), answers[4].json()
    assert sorted([body3["received"], body4["received"]]) == [0, 1]
    assert body3["results"] == body4["results"]
    assert sorted(codes[5:]) == [200, 409]  # same new id, another body: one of the two
    with pytest.raises(opswb.NotFound):
        wb.key("acme", f"other{a}")  # the refused request stored nothing
    return len({wb.key("acme", f"m{k}-{a}")["arrivals"][0]["received_at"]
                for k in (1, 2, 3)}) == 1


def test_a_refused_request_does_not_fail_its_group_mates(store_url, tmp_path):
    server = ServerProcess(store_url, tmp_path / "serve.log")
    try:
        served = server.wait()
        wb = opswb.connect(served.url, token=served.token)
        with _client(served) as c:
            # received_at is the transaction's time: a few rounds to catch one group
            grouped = [_round(c, wb, a) for a in range(3)]
    finally:
        server.stop()
    assert any(grouped), "the small requests never shared a commit"


@pytest.mark.slow
def test_kill_minus_nine_under_load_loses_no_answered_event(tmp_path):
    db = str(tmp_path / "served.duckdb")
    server = ServerProcess(db, tmp_path / "serve.log")
    served = server.wait()
    answered: set[int] = set()
    lock, stop = threading.Lock(), threading.Event()

    def client(c_no: int) -> None:
        with _client(served) as c:
            for i in range(c_no, 10_000_000, 24):
                if stop.is_set():
                    return
                try:
                    r = _post(c, ev(f"d{i}", {"amount": i}), f"d{i}")
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    with lock:
                        answered.add(i)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(24)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(answered) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(served.pid, signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(60)
    server.reap()
    assert len(answered) >= 300
    sent = max(answered) + 25  # past the last event any client may have sent
    server = ServerProcess(db, tmp_path / "serve2.log")
    try:
        served = server.wait()
        wb = opswb.connect(served.url, token=served.token)
        for i in sorted(answered):  # every answered event is stored, once
            assert wb.key("acme", f"d{i}")["events_processed"]["arrival_count"] == 1
        stored_before = wb.health()["raw_events"]
        with _client(served) as c:
            # Resending everything with the same batch ids adds nothing already stored.
            added = set()
            for i in range(sent):
                r = _post(c, ev(f"d{i}", {"amount": i}), f"d{i}")
                assert r.status_code == 200
                if r.json()["received"]:
                    added.add(i)
        assert not added & answered
        assert wb.health()["raw_events"] == stored_before + len(added) == sent
    finally:
        server.stop()
    con = duckdb.connect(db, read_only=True)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT idempotency_key)"
                           " FROM raw_events").fetchall()[0] == (sent, sent)
    finally:
        con.close()

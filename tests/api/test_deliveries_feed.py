"""``GET /v1/deliveries`` against a real ``opswb serve``: validation, the long poll, and a
follower that sees every delivery exactly once while producers and an operator write."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import duckdb
import httpx
import pytest

from tests.helpers import ev, run_async
from tests.support.people import PeopleAuth
from tests.support.server import ServerProcess

NOTE = {"actor": "ann", "resolution_notes": "replayed after checking"}


def _client(served, timeout: float = 60) -> httpx.Client:
    """The bootstrap token; a decision naming ``ann`` goes with her own token (SPEC §15)."""
    return httpx.Client(base_url=served.url, timeout=timeout,
                        auth=PeopleAuth(served.url, served.token))


@pytest.fixture
def server(tmp_path):
    """A server of this test's own over a fresh store (the test stops it to read it)."""
    server = ServerProcess(str(tmp_path / "feed.duckdb"), tmp_path / "serve.log")
    try:
        yield server
    finally:
        server.stop()


def _post(api, events) -> dict:
    r = api.post("/v1/events", json=events)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("query, names", [
    ("after=abc", "after"), ("after=0x10", "after"), ("limit=0", "limit"),
    ("limit=ten", "limit"), ("limit=10001", "limit"), ("wait=31", "wait"),
    ("wait=-1", "wait"), ("wait=nan", "wait"), ("wait=soon", "wait"), ("cursor=5", "cursor"),
])
def test_bad_queries_are_422_with_a_readable_message(serve_url, query, names):
    with _client(serve_url) as api:
        before = api.get("/v1/health").json()["deliveries"]
        r = api.get("/v1/deliveries?" + query)
        assert r.status_code == 422, r.text
        assert names in r.json()["error"]
        assert api.get("/v1/health").json()["deliveries"] == before


def test_wait_answers_when_a_commit_brings_a_delivery(serve_url):
    with _client(serve_url) as api:
        _post(api, [ev("before", tenant="t-wait")])
        cursor = api.get("/v1/deliveries", params={"tenant_id": "t-wait"}).json()["next_cursor"]
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(api.get, "/v1/deliveries",
                                  params={"after": cursor, "tenant_id": "t-wait", "wait": 25})
            _post(api, [ev("other", tenant="t-elsewhere")])  # wakes it; nothing for it yet
            _post(api, [ev("after", tenant="t-wait")])
            page = pending.result(timeout=30).json()
        # had the commit not woken it, it would answer its empty first read after 25 s
        assert [i["idempotency_key"] for i in page["items"]] == ["after"]
        assert page["next_cursor"] == page["items"][0]["delivery_id"]


def test_wait_times_out_with_an_empty_page_and_the_same_cursor(serve_url):
    with _client(serve_url) as api:
        _post(api, [ev("only", tenant="t-timeout")])
        last = api.get("/v1/deliveries", params={"tenant_id": "t-timeout"}).json()
        cursor = last["next_cursor"]
        page = api.get("/v1/deliveries", params={"after": cursor, "tenant_id": "t-timeout",
                                                 "wait": 0.5}).json()
        assert page == {"items": [], "next_cursor": cursor}


def _producer(served, n: int, seed: int) -> None:
    """Posts small batches: new keys, re-sends, and conflicting versions of shared keys."""
    rng = random.Random(seed)
    with _client(served) as api:
        for i in range(n):
            batch = [ev(f"p{seed}-{i}", {"amount": i}, tenant="t-load")]
            shared = f"shared-{rng.randrange(15)}"
            batch.append(ev(shared, {"amount": rng.randrange(3)}, tenant="t-load"))
            if rng.random() < 0.3:
                batch.append(ev(f"p{seed}-{max(i - 1, 0)}", {"amount": max(i - 1, 0)},
                                tenant="t-load"))
            _post(api, batch)


def _operator(served, stop: threading.Event) -> int:
    """Replays open conflicts with a patch until stopped; returns how many it replayed."""
    replayed = 0
    with _client(served) as api:
        while not stop.is_set():
            page = api.get("/v1/exceptions", params={"tenant_id": "t-load", "limit": 20}).json()
            for e in page["items"]:
                r = api.post(f"/v1/exceptions/{e['exception_id']}/resolve", json={
                    "action": "override_and_replay", **NOTE,
                    "override_patch": {"payload": {"replayed_from": e["exception_id"]}}})
                assert r.status_code in (200, 409), r.text
                replayed += r.status_code == 200
            stop.wait(0.05)
    return replayed


def _follow(served, stop: threading.Event, seen: list[dict]) -> None:
    """A consumer: long polls from the start, following next_cursor, until stopped and
    caught up."""
    cursor = "0"
    with _client(served) as api:
        while True:
            stopping = stop.is_set()
            r = api.get("/v1/deliveries", params={"after": cursor, "limit": 7,
                                                   "wait": 0 if stopping else 2})
            assert r.status_code == 200, r.text
            page = r.json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if stopping and not page["items"]:
                return


def test_a_follower_sees_every_delivery_once_in_order_while_others_write(server):
    served = server.wait()
    producing, writing, seen = threading.Event(), threading.Event(), []
    with ThreadPoolExecutor(6) as pool:
        follower = pool.submit(_follow, served, writing, seen)
        operator = pool.submit(_operator, served, producing)
        producers = [pool.submit(_producer, served, 25, seed) for seed in range(4)]
        for p in producers:
            p.result(timeout=300)
        producing.set()
        replayed = operator.result(timeout=60)
        writing.set()  # every write has committed: the follower catches up and stops
        follower.result(timeout=60)
    with _client(served) as api:
        health = api.get("/v1/health").json()
    server.stop()  # SIGTERM: the server closes the store, which is then read directly
    con = duckdb.connect(served.db, read_only=True)
    stored = con.execute("SELECT delivery_id, is_replay, exception_id FROM deliveries"
                         " ORDER BY delivery_id").fetchall()
    con.close()
    ids = [int(i["delivery_id"]) for i in seen]
    assert ids == [r[0] for r in stored]  # every one, once, in order: no gap, no repeat
    assert health["deliveries"] == len(stored)
    assert replayed > 0
    replays = [i for i in seen if i["replay"]]
    assert len(replays) == replayed == sum(1 for r in stored if r[1])
    for item in replays:
        assert item["payload"]["replayed_from"] == item["exception_id"]



def test_a_shutdown_answers_waiting_long_polls_at_once(server):
    """SIGTERM while a consumer long-polls: it gets its (empty) page now, and the server
    exits, instead of both waiting out the 30 s."""
    served = server.wait()
    with _client(served) as api, ThreadPoolExecutor(1) as pool:
        assert api.get("/v1/health").status_code == 200  # the connection is open
        pending = pool.submit(api.get, "/v1/deliveries", params={"wait": 30})
        threading.Event().wait(1.0)  # let the poll reach the server and wait there
        server.proc.terminate()
        page = pending.result(timeout=20)  # well inside the 30 s it asked for
        assert page.status_code == 200
        assert page.json() == {"items": [], "next_cursor": "0"}
        server.proc.wait(timeout=20)


def test_many_long_polls_hold_no_worker_thread(serve_url):
    """More followers than the server's thread pool (40) wait at once, and a POST still
    goes through and wakes every one of them."""
    import asyncio

    tenant = "t-many"

    async def scenario() -> list[dict]:
        async with httpx.AsyncClient(
                base_url=serve_url.url, timeout=60,
                headers={"Authorization": f"Bearer {serve_url.token}"},
                limits=httpx.Limits(max_connections=100)) as api:
            start = (await api.get("/v1/deliveries", params={"tenant_id": tenant})).json()
            polls = [asyncio.ensure_future(api.get("/v1/deliveries", params={
                "tenant_id": tenant, "after": start["next_cursor"], "wait": 25}))
                for _ in range(50)]
            await asyncio.sleep(1.0)  # let them all wait on the server
            r = await api.post("/v1/events", json=[ev("wake", tenant=tenant)])
            assert r.status_code == 200, r.text
            return [(await p).json() for p in polls]

    pages = run_async(scenario())
    assert [[i["idempotency_key"] for i in p["items"]] for p in pages] == [["wake"]] * 50


def test_a_follower_of_one_replica_sees_every_delivery_once_on_postgresql(pg_url, tmp_path):
    """Two ``opswb serve`` replicas on one PostgreSQL database: producers post to both,
    an operator replays on one, a follower reads the other. Commits of the two processes
    interleave, yet the follower sees every delivery exactly once, in id order."""
    import psycopg

    servers = [ServerProcess(pg_url, tmp_path / f"serve{i}.log") for i in range(2)]
    try:
        a, b = (s.wait() for s in servers)
        producing, writing, seen = threading.Event(), threading.Event(), []
        with ThreadPoolExecutor(6) as pool:
            follower = pool.submit(_follow, b, writing, seen)
            operator = pool.submit(_operator, a, producing)
            producers = [pool.submit(_producer, (a, b)[seed % 2], 20, seed)
                         for seed in range(4)]
            for p in producers:
                p.result(timeout=300)
            producing.set()
            replayed = operator.result(timeout=60)
            writing.set()
            follower.result(timeout=60)
    finally:
        for s in servers:
            s.stop()
    with psycopg.connect(pg_url) as con:
        stored = con.execute("SELECT delivery_id, is_replay FROM deliveries"
                             " ORDER BY delivery_id").fetchall()
    assert [int(i["delivery_id"]) for i in seen] == [r[0] for r in stored]
    assert replayed > 0
    assert sum(1 for i in seen if i["replay"]) == replayed == sum(1 for r in stored if r[1])


def test_a_long_poll_of_one_replica_is_woken_by_a_post_to_the_other(pg_url, tmp_path):
    """Two ``opswb serve`` replicas on one PostgreSQL database: a consumer long-polling
    replica A gets the delivery a producer posts to replica B in the answer to that same
    poll, long before its wait would end (LISTEN/NOTIFY: the commit on B wakes A)."""
    servers = [ServerProcess(pg_url, tmp_path / f"serve{i}.log") for i in range(2)]
    try:
        a, b = (s.wait() for s in servers)
        with _client(a) as api_a, _client(b) as api_b:
            _post(api_b, [ev("before", tenant="t-wake")])
            cursor = api_a.get("/v1/deliveries",
                               params={"tenant_id": "t-wake"}).json()["next_cursor"]
            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(api_a.get, "/v1/deliveries", params={
                    "after": cursor, "tenant_id": "t-wake", "wait": 30})
                threading.Event().wait(1.0)  # let the poll reach A and wait there
                _post(api_b, [ev("after", tenant="t-wake")])
                # Well inside the 30 s it asked for: a replica that only read again when
                # its wait ran out would still be waiting.
                page = pending.result(timeout=15).json()
    finally:
        for s in servers:
            s.stop()
    assert [i["idempotency_key"] for i in page["items"]] == ["after"]

"""The PostgreSQL store (SPEC §14) with several writers on one database: processes
ingesting the same keys, servers resolving one exception, single posts across two
replicas and a kill -9 of one of them end as one sequential run, exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

import opswb

OPSWB = [sys.executable, "-m", "opswb.cli"]


def _events(keys: range, variant: int) -> list[dict]:
    """One arrival per key; ``variant`` 1 changes the payload of every third key."""
    out = []
    for k in keys:
        amount = 100 + k + (1 if variant and k % 3 == 0 else 0)
        out.append({"tenant_id": f"t{k % 4}", "idempotency_key": f"k{k}",
                    "event_type": "payment.captured", "payload": {"amount": amount}})
    return out


def _write(path, events) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


def _end_state(url: str) -> dict:
    wb = opswb.connect(url)
    # Which arrival of a key counts as a duplicate and which as attached depends on
    # whether it came before or after the conflict: the one figure order may change.
    health = {k: v for k, v in wb.health().items()
              if k not in ("oldest_open_age_seconds", "duplicates_today")}
    with psycopg.connect(url) as con:
        keys = con.execute("SELECT tenant_id, idempotency_key, state, arrival_count,"
                           " delivery_count FROM idempotency_keys ORDER BY 1, 2").fetchall()
        open_per_key = con.execute(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM exceptions WHERE status = 'open'"
            " GROUP BY tenant_id, idempotency_key) s").fetchone()[0]
    return {"health": health, "keys": keys, "open_per_key": open_per_key}


@pytest.mark.slow
def test_two_processes_ingesting_the_same_keys_end_as_one_sequential_run(
        pg_cluster, tmp_path):
    """Four files over the same 600 keys (two with the same payloads, two changing every
    third key), in chunks of 50 and in opposite key orders, ingested by four CLI processes
    at once: the same keys, states, counts and open exceptions as ingesting them one after
    the other."""
    files = [_write(tmp_path / "a.jsonl", _events(range(600), 0)),
             _write(tmp_path / "b.jsonl", _events(range(599, -1, -1), 0)),
             _write(tmp_path / "c.jsonl", _events(range(600), 1)),
             _write(tmp_path / "d.jsonl", _events(range(599, -1, -1), 1))]
    urls = []
    for name in ("together", "sequential"):
        pg_cluster.admin(f"CREATE DATABASE {name}_{os.getpid()}")
        urls.append(f"{pg_cluster.url}/{name}_{os.getpid()}")
    try:
        _race(urls, files)
    finally:
        for url in urls:
            pg_cluster.admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def _race(urls: list[str], files: list[str]) -> None:
    together, sequential = urls
    env = {**os.environ, "OPSWB_CHUNK_ROWS": "50"}
    opswb.connect(together).init()

    def ingest(url, path):
        return subprocess.run(OPSWB + ["ingest", path, "--db", url], check=False,
                              capture_output=True, text=True, env=env, timeout=240)

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda f: ingest(together, f), files))
    assert [r.returncode for r in runs] == [0] * 4, [r.stderr[-2000:] for r in runs]
    for f in files:
        assert ingest(sequential, f).returncode == 0
    got, want = _end_state(together), _end_state(sequential)
    assert got == want
    assert got["open_per_key"] == 1
    assert got["health"]["idempotency"] == {"processed": 400, "quarantined": 200,
                                            "ignored": 0}
    assert got["health"]["raw_events"] == 2400


@pytest.mark.slow
def test_two_servers_on_one_database_sixteen_resolves_one_wins(pg_url, tmp_path):
    """Two ``opswb serve`` replicas on one PostgreSQL, no proxy, clients alternating
    between them: 16 concurrent resolutions of one exception → one 200, fifteen 409,
    one audit entry."""
    import httpx

    from tests.helpers import ev
    from tests.support.people import PeopleAuth
    from tests.support.server import ServerProcess

    opswb.connect(pg_url).ingest([ev("K", {"a": 1}), ev("K", {"a": 2})])
    servers = [ServerProcess(pg_url, tmp_path / f"serve{i}.log") for i in range(2)]
    try:
        served = [s.wait() for s in servers]
        ex_id = opswb.connect(pg_url).list_exceptions()["items"][0]["exception_id"]

        people = [PeopleAuth(s.url, s.token) for s in served]
        for i in range(16):  # op{i}'s own token (SPEC §15), minted before the race
            people[i % 2].token_of(f"op{i}")

        def resolve(i: int) -> int:
            s = served[i % 2]
            r = httpx.post(f"{s.url}/v1/exceptions/{ex_id}/resolve", timeout=60,
                           auth=people[i % 2],
                           json={"action": "mark_resolved_no_replay", "actor": f"op{i}",
                                 "resolution_notes": "race"})
            return r.status_code

        with ThreadPoolExecutor(16) as pool:
            codes = sorted(pool.map(resolve, range(16)))
    finally:
        for s in servers:
            s.stop()
    assert codes == [200] + [409] * 15
    assert len(opswb.connect(pg_url).audit(exception_id=ex_id)) == 1


def test_a_row_held_past_the_busy_timeout_is_store_busy_and_changes_nothing(pg_url):
    """Another session holds the exception's row lock: the resolution waits the busy
    timeout, then answers StoreBusy (503 over HTTP), never a 500, and writes nothing."""
    from tests.helpers import ev

    opswb.connect(pg_url).ingest([ev("K", {"a": 1}), ev("K", {"a": 2})])
    wb = opswb.connect(pg_url, busy_timeout=0.5)
    ex_id = wb.list_exceptions()["items"][0]["exception_id"]
    with psycopg.connect(pg_url) as holder:
        holder.execute("SELECT 1 FROM exceptions WHERE exception_id = %s FOR UPDATE",
                       [int(ex_id)])
        with pytest.raises(opswb.StoreBusy):
            wb.resolve(ex_id, action="mark_resolved_no_replay", actor="ann",
                       resolution_notes="busy")
        holder.rollback()
    assert wb.exception(ex_id)["status"] == "open"
    assert wb.audit() == []
    assert opswb.StoreBusy.http_status == 503


@pytest.mark.slow
def test_single_posts_across_two_replicas_end_as_one_sequential_run(pg_cluster, tmp_path):
    """Eight clients posting single events of the same 60 keys, alternating between two
    ``opswb serve`` replicas of one database (every third key with a changed payload from
    half of them): the same keys, states, counts and open exceptions as one sequential run."""
    import random

    import httpx

    from tests.support.server import ServerProcess

    def events(client: int) -> list[dict]:
        out = [{"tenant_id": f"t{i % 3}", "idempotency_key": f"k{i}",
                "event_type": "payment.captured",
                "payload": {"amount": i, "v": client % 2 if i % 3 == 0 else 0}}
               for i in range(60)]
        random.Random(client).shuffle(out)
        return out

    urls = []
    for name in ("replicas", "single"):
        pg_cluster.admin(f"CREATE DATABASE {name}_{os.getpid()}")
        urls.append(f"{pg_cluster.url}/{name}_{os.getpid()}")
    servers = [ServerProcess(urls[0], tmp_path / f"serve{i}.log") for i in range(2)]
    try:
        served = [s.wait() for s in servers]

        def post(client: int) -> list[int]:
            codes = []
            for n, e in enumerate(events(client)):
                s = served[(client + n) % 2]
                r = httpx.post(f"{s.url}/v1/events", json=[e], timeout=60,
                               headers={"Authorization": f"Bearer {s.token}"})
                codes.append(r.status_code)
            return codes

        with ThreadPoolExecutor(8) as pool:
            codes = [c for cs in pool.map(post, range(8)) for c in cs]
        assert set(codes) == {200}, sorted(set(codes))
        single = opswb.connect(urls[1])
        for client in range(8):
            for e in events(client):
                single.ingest_batch([e])
        got, want = _end_state(urls[0]), _end_state(urls[1])
        assert got == want
        assert got["open_per_key"] == 1
        assert got["health"]["idempotency"]["quarantined"] == 20
    finally:
        for s in servers:
            s.stop()
        for url in urls:
            pg_cluster.admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


@pytest.mark.slow
def test_kill_9_of_one_replica_under_load_the_other_goes_on_exactly_once(pg_url, tmp_path):
    """Four clients post single events (one new key each) alternating between two
    replicas; one replica is killed with SIGKILL part-way. The other answers every later
    post; every acknowledged event is stored exactly once, and none is stored twice."""
    import signal
    import threading

    import httpx

    from tests.support.server import ServerProcess

    servers = [ServerProcess(pg_url, tmp_path / f"serve{i}.log") for i in range(2)]
    acked: list[str] = []
    killed = threading.Event()
    try:
        served = [s.wait() for s in servers]

        def client(c: int) -> None:
            for n in range(60):
                key = f"c{c}-{n}"
                s = served[1] if killed.is_set() else served[(c + n) % 2]
                try:
                    r = httpx.post(f"{s.url}/v1/events", timeout=30,
                                   headers={"Authorization": f"Bearer {s.token}"},
                                   json=[{"tenant_id": f"t{c}", "idempotency_key": key,
                                          "event_type": "payment.captured",
                                          "payload": {"n": n}}])
                except httpx.TransportError:
                    continue  # the killed replica: not acknowledged
                if r.status_code == 200:
                    acked.append(key)
                if c == 0 and n == 20:
                    os.kill(served[0].pid, signal.SIGKILL)
                    killed.set()

        threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in servers:
            s.stop()
    assert killed.is_set()
    with psycopg.connect(pg_url) as con:
        stored = dict(con.execute("SELECT idempotency_key, arrival_count FROM"
                                  " idempotency_keys").fetchall())
        raws = con.execute("SELECT count(*) FROM raw_events").fetchone()[0]
    assert all(stored.get(k) == 1 for k in acked)
    assert set(stored.values()) == {1} and raws == len(stored)
    assert len(acked) >= 4 * 60 - 4 * 21  # the survivor took every post after the kill

"""The held store's gate cache (store/duckdb/gatecache.py) never changes an outcome.

``opswb serve`` answers the small path's questions (id counters, allowlist, is the key
stored?) from memory. Every write that is not the small path's must invalidate it. Each
scenario runs the same steps on a served workbench (held store, group commit, the cache)
and on an embedded one (a fresh connection per call, no cache): every answer and every
stored row (times aside) must be the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import opswb
from opswb.store.duckdb import gatecache
from opswb.workbench.in_server import ServedWorkbench
from tests.helpers import TABLES, dump_store, ev, write_jsonl

TIMES = {"received_at", "delivered_at", "created_at", "added_at", "committed_at",
         "applied_at", "resolved_at", "at"}
CORE = [t for t in TABLES if t not in ("audit_log", "ingest_ledger")]


def _conflict_id(wb: Any, key: str) -> str:
    return wb.list_exceptions(idempotency_key=key)["items"][0]["exception_id"]


def _resolve(wb: Any, key: str, action: str) -> dict:
    return wb.resolve(_conflict_id(wb, key), action=action, actor="ops",
                      resolution_notes="checked", override_patch={} if "replay" in action
                      else None)


def _bulk(wb: Any, path: Path) -> dict:
    return {k: v for k, v in wb.ingest(str(path)).items() if k != "seconds"}


def _steps(tmp: Path) -> dict[str, list]:
    big = write_jsonl(tmp / "bulk.jsonl", [ev(f"bulk{i}") for i in range(1100)])
    few = write_jsonl(tmp / "few.jsonl", [ev("f1"), ev("f2")])
    return {
        "a resolution between two posts of a key": [
            ("post", [ev("a")]), ("post", [ev("a", {"amount": 1})]),
            ("resolve", "a", "override_and_replay"), ("post", [ev("a", {"amount": 1})]),
            ("post", [ev("b")]), ("post", [ev("a", {"amount": 2})]), ("post", [ev("c")])],
        "an allowlist change between posts": [
            ("post", [ev("t1")]), ("remove", "payment.captured"), ("post", [ev("t2")]),
            ("post", [ev("t3"), ev("t4")]), ("add", "payment.captured"),
            ("post", [ev("t5")]), ("post", [ev("t2")])],
        "a bulk ingest between posts": [
            ("post", [ev("p1")]), ("ingest", big), ("post", [ev("bulk7")]),
            ("post", [ev("p2"), ev("bulk1099")]), ("post", [ev("p3")]), ("ingest", few),
            ("post", [ev("f2")]), ("post", [ev("f3")])],
        "a resolution that closes without replay": [
            ("post", [ev("r")]), ("post", [ev("r", {"amount": 9})]),
            ("resolve", "r", "mark_resolved_no_replay"), ("post", [ev("r", {"amount": 9})]),
            ("post", [ev("s")])],
    }


def _run(wb: Any, steps: list) -> list:
    out = []
    for i, (kind, *args) in enumerate(steps):
        if kind == "post":
            out.append(wb.ingest_batch(args[0], batch_id=f"b{i}"))
        elif kind == "resolve":
            out.append(_resolve(wb, *args)["status"])
        elif kind == "remove":
            out.append(wb.remove_type(args[0], actor="ops", notes="paused"))
        elif kind == "add":
            out.append(wb.add_type(args[0], actor="ops", notes="back"))
        else:
            out.append(_bulk(wb, args[0]))
    return out


def _rows(path: str) -> dict:
    return {t: [{k: v for k, v in r.items() if k not in TIMES} for r in rows]
            for t, rows in dump_store(path).items() if t in CORE}


@pytest.mark.parametrize("name", ["a resolution between two posts of a key",
                                  "an allowlist change between posts",
                                  "a bulk ingest between posts",
                                  "a resolution that closes without replay"])
def test_served_answers_and_stores_what_embedded_does(name, tmp_path):
    steps = _steps(tmp_path)[name]
    served_db, embedded_db = str(tmp_path / "served.duckdb"), str(tmp_path / "embedded.duckdb")
    served = ServedWorkbench(served_db)
    try:
        got = _run(served, steps)
    finally:
        served.close()
    embedded = opswb.connect(embedded_db)
    embedded.init()
    want = _run(embedded, steps)
    assert got == want
    assert _rows(served_db) == _rows(embedded_db)


def _x1_then_rolled_back(served: ServedWorkbench, keys: list[str]) -> None:
    """x1 stored, then a group of ``keys`` written by the small path and rolled back."""
    served.ingest_batch([ev("x1")])
    with pytest.raises(RuntimeError), served.store.write_chunk() as s:
        s.store_arrivals([opswb_row(k) for k in keys], "api", with_outcomes=True)
        raise RuntimeError("the transaction fails after the small path wrote")


def test_a_rolled_back_group_leaves_no_stale_counters(tmp_path):
    db = str(tmp_path / "s.duckdb")
    served = ServedWorkbench(db)
    try:
        _x1_then_rolled_back(served, ["x2"])
        answer = served.ingest_batch([ev("x3")])
    finally:
        served.close()
    assert answer["results"][0]["raw_id"] == "2"  # x2's raw id was never committed
    assert [r["idempotency_key"] for r in _rows(db)["raw_events"]] == ["x1", "x3"]


def opswb_row(key: str) -> tuple:
    from opswb.core.envelope import stage_element

    return stage_element(ev(key))


def test_digests_agree_with_duckdb():
    import duckdb

    con = duckdb.connect()
    pairs = [("acme", "k1"), ("", "ü-ключ"), ("t", "a\tb")]
    for t, k in pairs:
        (d,) = con.execute(f"SELECT {gatecache.KEY_DIGEST_SQL} FROM (SELECT ? AS tenant_id,"
                           " ? AS idempotency_key)", [t, k]).fetchone()
        assert d == gatecache.digest(t, k)


def test_ids_of_a_rolled_back_group_reused_by_the_full_way_are_seen(tmp_path):
    # The rolled back group had taken ids 2-4; the next chunk goes the full way (a key
    # twice) and creates key y with raw id 2: a later post of y must find it stored.
    db = str(tmp_path / "s.duckdb")
    served = ServedWorkbench(db)
    try:
        _x1_then_rolled_back(served, ["x2", "x3", "x4"])
        served.ingest_batch([ev("y"), ev("y")])
        again = served.ingest_batch([ev("y")])
    finally:
        served.close()
    assert again["results"][0]["outcome"] == "duplicate"
    keys = [r["idempotency_key"] for r in _rows(db)["idempotency_keys"]]
    assert sorted(keys) == ["x1", "y"]


def test_reserved_ids_are_written_back_and_health_counts_raws(tmp_path):
    db = str(tmp_path / "s.duckdb")
    served = ServedWorkbench(db)
    try:
        for k in ("r1", "r2", "r3"):
            served.ingest_batch([ev(k)])
        during = served.health()["raw_events"]
    finally:
        served.close()
    embedded = opswb.connect(db)
    assert during == embedded.health()["raw_events"] == 3
    answer = embedded.ingest_batch([ev("r4")])  # the next id follows, no gap
    assert answer["results"][0]["raw_id"] == "4"

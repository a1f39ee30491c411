"""Group decisions set-wise (issue 17): a batch decided in a handful of statements ends
in the same store as the same decisions taken one at a time, on DuckDB and PostgreSQL."""

from __future__ import annotations

import uuid

import opswb
from opswb.engine import bulk
from opswb.engine.resolutions import resolve_one
from tests.helpers import ev

NOTE = {"actor": "ann", "resolution_notes": "one cause, one decision"}
_VOLATILE = {"created_at", "resolved_at", "at", "audit_id", "delivered_at", "delivery_id",
             "received_at"}


def _mixed() -> list:
    """Unknown types (one key re-sent), conflicts (one with two later arrivals), a key
    delivered before its unknown-type conflict, and an invalid arrival."""
    out = [ev(f"u{i}", {"a": i}, "invoice.paid", tenant=("acme", "globex")[i % 2])
           for i in range(6)]
    out.append(ev("u0", {"a": 0, "again": True}, "invoice.paid"))
    for i in range(4):
        out += [ev(f"c{i}", {"amount": 1}), ev(f"c{i}", {"amount": 2 + i})]
    out.append(ev("c0", {"amount": 9}))
    out.append({"tenant_id": "acme", "idempotency_key": "m1"})
    return out


def _state(wb) -> dict:
    """What an operator can see of the store, without ids and times."""
    def strip(row: dict) -> dict:
        return {k: v for k, v in row.items() if k not in _VOLATILE}
    exceptions = {}
    for e in wb.list_exceptions(status="all", limit=None)["items"]:
        d = wb.exception(e["exception_id"])
        exceptions[(e["tenant_id"], e["idempotency_key"], e["reason_code"])] = {
            "exception": strip({k: v for k, v in d.items() if k not in (
                "raw", "arrivals", "first", "last", "diff", "decisions", "comments",
                "exception_id", "raw_id", "canonical_raw_id", "deliveries")}),
            "deliveries": [strip({k: v for k, v in x.items() if k not in (
                "raw_id", "exception_id")}) for x in d["deliveries"]],
            "audit": [strip({k: v for k, v in a.items() if k not in (
                "exception_id", "canonical_raw_id")}) for a in d["decisions"]]}
    return {"health": {k: v for k, v in wb.health().items()
                       if k != "oldest_open_age_seconds"}, "exceptions": exceptions}


def _one_at_a_time(wb, ids: list[str], decision: dict) -> list[dict]:
    out = []
    for ex_id in ids:
        with wb.store.write() as db:
            out.append({"exception_id": ex_id,
                        "status": resolve_one(db, ex_id, **decision)["status"]})
    return out


def _twins(tmp_path, store_url, request):
    """Two stores with the same arrivals: ``store_url``'s kind, twice."""
    if store_url.startswith("postgresql"):
        cluster = request.getfixturevalue("pg_cluster")
        name = "t_twin_" + uuid.uuid4().hex[:12]
        cluster.admin(f"CREATE DATABASE {name}")
        request.addfinalizer(lambda: cluster.admin(f"DROP DATABASE {name} WITH (FORCE)"))
        other = f"{cluster.url}/{name}"
    else:
        other = str(tmp_path / "twin.duckdb")
    pair = [opswb.connect(store_url), opswb.connect(other)]
    for w in pair:
        w.ingest_batch(_mixed())
    return pair


def _decide_both(pair, ids_of, decision):
    a, b = pair
    ids = ids_of(a)
    assert ids == ids_of(b)
    fast = bulk.resolve_all(a.store, ids, decision)
    slow = _one_at_a_time(b, ids, decision)
    return fast, slow


def test_ignore_all_set_wise_ends_as_one_at_a_time(tmp_path, store_url, request):
    pair = _twins(tmp_path, store_url, request)
    fast, slow = _decide_both(pair, lambda w: [
        e["exception_id"] for e in w.list_exceptions(limit=None)["items"]],
        {"action": "mark_resolved_no_replay", **NOTE})
    assert fast == slow and {r["status"] for r in fast} == {"resolved"}
    assert _state(pair[0]) == _state(pair[1])
    assert pair[0].health()["exceptions_open"] == 0
    assert pair[0].verify_audit()["ok"]
    # a re-sent copy of an ignored key is a duplicate: its fingerprints were adjudicated
    out = pair[0].ingest_batch([ev("u0", {"a": 0, "again": True}, "invoice.paid")])
    assert out["duplicates"] == 1


def test_allow_and_replay_all_as_received(tmp_path, store_url, request):
    pair = _twins(tmp_path, store_url, request)
    for w in pair:
        w.add_type("invoice.paid", actor="ann", notes="now supported")
    fast, slow = _decide_both(pair, lambda w: [
        e["exception_id"] for e in w.list_exceptions(reason_code="UNKNOWN_EVENT_TYPE")["items"]],
        {"action": "override_and_replay", **NOTE})
    assert fast == slow and len(fast) == 6
    assert _state(pair[0]) == _state(pair[1])
    wb = pair[0]
    feed = [d for d in wb.deliveries(limit=1000)["items"] if d["replay"]]
    assert sorted(d["idempotency_key"] for d in feed) == [f"u{i}" for i in range(6)]
    assert wb.health()["idempotency"]["quarantined"] == 4  # the conflicts stay open
    assert wb.verify_audit()["ok"]


def test_choose_last_for_all_conflicts(tmp_path, store_url, request):
    pair = _twins(tmp_path, store_url, request)
    fast, slow = _decide_both(pair, lambda w: [
        e["exception_id"] for e in w.list_exceptions(
            reason_code="IDEMPOTENCY_CONFLICT")["items"]],
        {"action": "override_and_replay", "canonical_raw_id": "last", **NOTE})
    assert fast == slow and {r["status"] for r in fast} == {"resolved"}
    assert _state(pair[0]) == _state(pair[1])
    replays = {d["idempotency_key"]: d["payload"] for d in pair[0].deliveries(
        limit=1000)["items"] if d["replay"]}
    assert replays == {"c0": {"amount": 9}, "c1": {"amount": 3}, "c2": {"amount": 4},
                       "c3": {"amount": 5}}


def test_each_item_keeps_its_own_outcome(local_wb):
    local_wb.ingest_batch(_mixed())
    items = local_wb.list_exceptions(limit=None)["items"]
    unknown = [e["exception_id"] for e in items if e["reason_code"] == "UNKNOWN_EVENT_TYPE"]
    invalid = [e["exception_id"] for e in items if e["reason_code"] == "INVALID_EVENT"]
    local_wb.resolve(unknown[0], action="mark_resolved_no_replay", **NOTE)
    out = local_wb.resolve_many(ids=unknown + invalid + ["999", "x"],
                                action="override_and_replay", **NOTE)["results"]
    status = {r["exception_id"]: r["status"] for r in out}
    assert status[unknown[0]] == "conflict" and "already resolved by ann" in out[0]["error"]
    assert {status[i] for i in unknown[1:]} == {"invalid"}  # not on the allowlist
    assert "allowlist" in out[1]["error"]
    assert status[invalid[0]] == "invalid" and status["999"] == status["x"] == "not_found"
    assert local_wb.health()["exceptions_open"] == len(items) - 1  # nothing else written
    out = local_wb.resolve_many(ids=unknown[1:], action="override_and_replay",
                                canonical_raw_id="last", **NOTE)["results"]
    assert {r["status"] for r in out} == {"invalid"}
    assert "IDEMPOTENCY_CONFLICT only" in out[0]["error"]
    twice = local_wb.resolve_many(ids=[unknown[1], unknown[1]], action="mark_resolved_no_replay",
                                  **NOTE)["results"]
    assert [r["status"] for r in twice] == ["resolved", "conflict"]
    assert len(local_wb.audit(exception_id=unknown[1])) == 1

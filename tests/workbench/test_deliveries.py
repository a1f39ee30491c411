"""``wb.deliveries`` (SPEC §9, §12): the outbox in delivery order, local and remote alike."""

from __future__ import annotations

import pytest

import opswb
from opswb.core.errors import InvalidRequest
from opswb.store.duckdb import outbox
from tests.helpers import ev, write_jsonl
from tests.support.server import ServerProcess

NOTE = {"actor": "ann", "resolution_notes": "confirmed with billing"}


def _all(wb, **kw) -> list[dict]:
    """Every delivery, following next_cursor page by page."""
    items, cursor = [], None
    while True:
        page = wb.deliveries(after=cursor, **kw)
        items += page["items"]
        if not page["items"]:
            assert page["next_cursor"] == (cursor or "0")  # an empty page keeps the cursor
            return items
        assert page["next_cursor"] == page["items"][-1]["delivery_id"]
        cursor = page["next_cursor"]


def _load(wb, tmp_path) -> None:
    """Bulk-loaded deliveries (payload kept in the raw's text), a batch's, a conflict, an
    unknown type and an invalid arrival, all three replayed with a patch."""
    wb.ingest(write_jsonl(tmp_path / "bulk.jsonl", [
        ev("b1", {"amount": 1}), ev("b2", {"amount": 2}, tenant="globex"),
        ev("b1", {"amount": 9}), ev("u1", {"amount": 3}, "weird.type"),
    ]))
    wb.ingest_batch([ev("a1", {"amount": 4}), ev("a1", {"amount": 4}),
                     {"tenant_id": "acme", "event_type": "payment.captured", "payload": {}}])
    patch = {"payload": {"amount": 100, "note": "fixed"}}
    for e in wb.list_exceptions(limit=None)["items"]:
        extra = ({"event_type": "payment.captured"} if e["reason_code"] == "UNKNOWN_EVENT_TYPE"
                 else {"idempotency_key": "i1"} if e["reason_code"] == "INVALID_EVENT" else {})
        wb.resolve(e["exception_id"], "override_and_replay", override_patch={**patch, **extra},
                   **NOTE)


def test_deliveries_in_order_with_replays_marked(wb, tmp_path):
    _load(wb, tmp_path)
    items = _all(wb)
    ids = [int(i["delivery_id"]) for i in items]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    plain = [(i["tenant_id"], i["idempotency_key"], i["payload"]) for i in items
             if not i["replay"]]
    assert plain == [("acme", "b1", {"amount": 1}), ("globex", "b2", {"amount": 2}),
                     ("acme", "a1", {"amount": 4})]
    assert all(i["exception_id"] is None for i in items if not i["replay"])
    replays = {i["idempotency_key"]: i for i in items if i["replay"]}
    assert set(replays) == {"b1", "u1", "i1"}
    for key, item in replays.items():
        ex = wb.exception(item["exception_id"])
        assert ex["status"] == "resolved" and ex["action"] == "override_and_replay"
        assert item["payload"]["amount"] == 100 and item["payload"]["note"] == "fixed"
        assert item["event_type"] == "payment.captured"
        assert (ex["idempotency_key"] or "i1") == key
    # the conflict's replay is the patched canonical raw, the key's delivery a replay
    assert wb.key("acme", "b1")["deliveries"][-1]["delivery_id"] == replays["b1"]["delivery_id"]
    assert wb.health()["deliveries"] == len(items)


def test_tenant_filter_and_small_pages_give_the_same_feed(wb, tmp_path):
    _load(wb, tmp_path)
    everything = _all(wb)
    assert _all(wb, limit=1) == everything
    assert _all(wb, tenant_id="globex") == [i for i in everything if i["tenant_id"] == "globex"]
    assert _all(wb, tenant_id="nobody") == []
    middle = everything[2]["delivery_id"]
    assert wb.deliveries(after=middle, limit=2)["items"] == everything[3:5]


@pytest.mark.parametrize("bad", [{"after": "x"}, {"after": "01"}, {"after": "-1"},
                                 {"limit": 0}, {"limit": 10_001}, {"wait": 31},
                                 {"wait": -1}, {"wait": float("nan")}])
def test_bad_arguments_are_refused(wb, bad):
    with pytest.raises(InvalidRequest) as e:
        wb.deliveries(**bad)
    assert next(iter(bad)) in str(e.value)


def test_ids_far_apart_are_still_found(local_wb, monkeypatch):
    """A page reads windows of ids; deliveries beyond a long run of ids that delivered
    nothing (duplicates, exceptions) are found by widening them."""
    monkeypatch.setattr(outbox, "FIRST_WINDOW", 8)
    local_wb.ingest_batch([ev("first")])
    local_wb.ingest_batch([ev("first")] * 300)  # 300 ids that became no delivery
    local_wb.ingest_batch([ev("last")])
    page = local_wb.deliveries(limit=5)
    assert [i["idempotency_key"] for i in page["items"]] == ["first", "last"]
    assert int(page["next_cursor"]) > 300


def test_local_and_remote_answer_the_same_pages(store_url, tmp_path):
    db = store_url
    local = opswb.connect(db)
    local.init()
    _load(local, tmp_path)
    asks = [{}, {"limit": 2}, {"after": "3", "limit": 3}, {"tenant_id": "globex"},
            {"after": "999"}]
    expected = [local.deliveries(**a) for a in asks]
    server = ServerProcess(db, tmp_path / "serve.log")
    try:
        served = server.wait()
        remote = opswb.connect(served.url, token=served.token)
        try:
            assert [remote.deliveries(**a) for a in asks] == expected
            assert remote.health()["deliveries"] == len(expected[0]["items"])
        finally:
            remote.close()
    finally:
        server.stop()


def test_a_held_store_wakes_a_waiting_reader_on_commit(tmp_path):
    """``wb.deliveries(wait=…)`` in the server's own workbench waits on its commits."""
    from concurrent.futures import ThreadPoolExecutor

    from opswb.workbench.in_server import ServedWorkbench

    wb = ServedWorkbench(str(tmp_path / "held.duckdb"))
    try:
        wb.ingest_batch([ev("first")])
        cursor = wb.deliveries()["next_cursor"]
        assert wb.deliveries(after=cursor, wait=0.2) == {"items": [], "next_cursor": cursor}
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(wb.deliveries, after=cursor, wait=25)
            wb.ingest_batch([ev("first")])  # a duplicate: a commit, no delivery
            wb.ingest_batch([ev("second")])
            page = pending.result(timeout=15)  # not woken, it would take the whole 25 s
        assert [i["idempotency_key"] for i in page["items"]] == ["second"]
    finally:
        wb.close()

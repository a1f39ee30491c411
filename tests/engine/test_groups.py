"""Failure groups (issue 17, SPEC §9 GET /v1/exceptions/groups) and the ``group`` filter,
on the local and the remote workbench alike."""

from __future__ import annotations

from importlib import resources

import duckdb
import pytest

import opswb
from opswb.core.errors import InvalidRequest, StoreError
from opswb.engine import bulk
from tests.helpers import dump_store, ev

NOTE = {"actor": "ann", "resolution_notes": "one cause, one decision"}


def _events() -> list:
    """Conflicts of two shapes, unknown types of two kinds, invalid arrivals of two rules."""
    out = []
    for key, tenant, source in (("a1", "acme", "billing"), ("a2", "globex", "shop")):
        out += [ev(key, {"amount": 1, "currency": "EUR"}, tenant=tenant, source=source),
                ev(key, {"amount": 2, "currency": "EUR"}, tenant=tenant, source=source)]
    out += [ev("b1", {"amount": 1, "currency": "EUR", "old": True}),
            ev("b1", {"amount": 1, "currency": "USD", "note": "x"})]
    for key, tenant in (("u1", "acme"), ("u2", "globex"), ("u3", "initech")):
        out.append(ev(key, {"a": 1}, "invoice.paid", tenant=tenant))
    out.append(ev("u4", {"a": 1}, "subscription.renewed"))
    out += [{"tenant_id": "acme", "idempotency_key": "m1"},
            {"tenant_id": "acme", "event_type": "x", "payload": {}}, 7]
    return out


def _by_signature(page: dict) -> dict:
    return {(g["reason_code"], str(g["signature"])): g for g in page["items"]}


def test_groups_by_reason_and_what_they_share(wb):
    wb.ingest_batch(_events())
    groups = _by_signature(wb.groups())
    assert set(groups) == {
        ("IDEMPOTENCY_CONFLICT", "['/payload/amount']"),
        ("IDEMPOTENCY_CONFLICT", "['/payload/currency', '/payload/note', '/payload/old']"),
        ("UNKNOWN_EVENT_TYPE", "invoice.paid"),
        ("UNKNOWN_EVENT_TYPE", "subscription.renewed"),
        ("INVALID_EVENT", "missing_field"),
        ("INVALID_EVENT", "not_an_object"),
    }
    amount = groups[("IDEMPOTENCY_CONFLICT", "['/payload/amount']")]
    assert amount["count"] == 2
    assert amount["tenants"] == ["acme", "globex"] and amount["tenant_count"] == 2
    assert amount["sources"] == ["billing", "shop"]
    unknown = groups[("UNKNOWN_EVENT_TYPE", "invoice.paid")]
    assert unknown["count"] == 3 and unknown["tenants"] == ["acme", "globex", "initech"]
    sample = wb.exception(unknown["sample_exception_id"])
    assert (sample["idempotency_key"], sample["group_id"]) == ("u1", unknown["group_id"])
    assert groups[("INVALID_EVENT", "missing_field")]["count"] == 2
    assert groups[("INVALID_EVENT", "not_an_object")]["tenants"] == [None]
    counts = [g["count"] for g in wb.groups()["items"]]
    assert counts == sorted(counts, reverse=True)  # largest first
    for g in groups.values():
        assert g["group_id"].split("-")[0] in ("conflict", "unknown", "invalid")
        assert g["first_seen"] <= g["last_seen"]


def test_groups_filter_and_page(wb):
    wb.ingest_batch(_events())
    everything = wb.groups()["items"]
    seen, cursor = [], None
    while True:
        page = wb.groups(limit=2, cursor=cursor)
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    globex = wb.groups(tenant_id="globex")["items"]
    assert {g["signature"] if isinstance(g["signature"], str) else g["signature"][0]
            for g in globex} == {"/payload/amount", "invoice.paid"}
    assert all(g["count"] == 1 and g["tenants"] == ["globex"] for g in globex)
    only = wb.groups(reason_code="UNKNOWN_EVENT_TYPE")["items"]
    assert [g["signature"] for g in only] == ["invoice.paid", "subscription.renewed"]
    assert wb.groups(status="resolved")["items"] == []
    for bad in ({"cursor": "nope"}, {"reason_code": "NOPE"}, {"limit": 0},
                {"status": "closed"}):
        with pytest.raises(InvalidRequest):
            wb.groups(**bad)


def test_group_filter_lists_and_resolves_the_group_only(wb):
    wb.ingest_batch(_events())
    invoice = _by_signature(wb.groups())[("UNKNOWN_EVENT_TYPE", "invoice.paid")]
    page = wb.list_exceptions(group=invoice["group_id"])
    assert [e["idempotency_key"] for e in page["items"]] == ["u1", "u2", "u3"]
    assert list(wb.exceptions(group=invoice["group_id"])["idempotency_key"]) == ["u1", "u2", "u3"]
    assert wb.list_exceptions(group="unknown-0000000000000000")["items"] == []
    with pytest.raises(InvalidRequest):
        wb.list_exceptions(group="../../etc")
    before = wb.health()["exceptions_open"]
    out = wb.resolve_many(filter={"group": invoice["group_id"]},
                          action="mark_resolved_no_replay", **NOTE)
    assert sorted(r["exception_id"] for r in out["results"]) == sorted(
        e["exception_id"] for e in page["items"])
    assert {r["status"] for r in out["results"]} == {"resolved"}
    assert wb.health()["exceptions_open"] == before - 3
    resolved = wb.groups(status="resolved")["items"]
    assert [(g["group_id"], g["count"]) for g in resolved] == [(invoice["group_id"], 3)]
    assert invoice["group_id"] not in {g["group_id"] for g in wb.groups()["items"]}


def test_groups_equal_on_local_and_remote(local_wb, remote_wb):
    for w in (local_wb, remote_wb):
        w.ingest_batch(_events())
    volatile = ("first_seen", "last_seen")
    pages = [[{k: v for k, v in g.items() if k not in volatile} for g in w.groups(
        status="all")["items"]] for w in (local_wb, remote_wb)]
    assert pages[0] == pages[1] and len(pages[0]) == 6
    gid = pages[0][0]["group_id"]
    assert (local_wb.list_exceptions(group=gid)["items"][0]["exception_id"]
            == remote_wb.list_exceptions(group=gid)["items"][0]["exception_id"])


def test_a_bulk_commits_in_batches_and_keeps_each_outcome(local_wb, monkeypatch):
    local_wb.ingest_batch([ev(f"u{i}", {"a": i}, "invoice.paid") for i in range(7)])
    ids = [e["exception_id"] for e in local_wb.list_exceptions()["items"]]
    monkeypatch.setattr(bulk, "BATCH_ITEMS", 3)
    real_batch, real_one = bulk.decide_batch, bulk.resolve_or_propose

    def batch_fails_after_writing(db, batch, decision):  # a store failure mid-batch
        out = real_batch(db, batch, decision)
        if ids[4] in batch:
            raise StoreError("disk went away")
        return out

    def fails_after_writing(db, ex_id, *decision):  # and again for that item alone
        out = real_one(db, ex_id, *decision)
        if ex_id == ids[4]:
            raise StoreError("disk went away")
        return out

    monkeypatch.setattr(bulk, "decide_batch", batch_fails_after_writing)
    monkeypatch.setattr(bulk, "resolve_or_propose", fails_after_writing)
    out = local_wb.resolve_many(ids=ids + ["999"], action="mark_resolved_no_replay", **NOTE)
    status = {r["exception_id"]: r["status"] for r in out["results"]}
    assert status == {**{i: "resolved" for i in ids if i != ids[4]},
                      ids[4]: "error", "999": "not_found"}
    assert local_wb.exception(ids[4])["status"] == "open"  # its writes were rolled back
    assert local_wb.exception(ids[3])["status"] == "resolved"  # its batch's others were not
    entries = local_wb.audit()
    assert sorted(e["exception_id"] for e in entries) == sorted(i for i in ids if i != ids[4])


def test_stored_groups_of_an_older_store_are_filled_in_alike(db_path):
    wb = opswb.connect(db_path)
    wb.ingest_batch(_events())
    con = duckdb.connect(db_path)
    try:
        cols = "exception_id, signature, group_id, key_first_raw_id"
        written = con.execute(f"SELECT {cols} FROM exceptions ORDER BY 1").fetchall()
        con.execute("UPDATE exceptions SET signature = NULL, group_id = NULL,"
                    " key_first_raw_id = NULL")
        sql = resources.files("opswb.store.duckdb").joinpath(
            "sql/0006_failure_groups.sql").read_text()
        con.execute(sql)
        again = con.execute(f"SELECT {cols} FROM exceptions ORDER BY 1").fetchall()
        keyed = con.execute("SELECT count(*) FROM exceptions WHERE key_first_raw_id ="
                            " (SELECT first_raw_id FROM idempotency_keys k WHERE"
                            " k.tenant_id = exceptions.tenant_id AND"
                            " k.idempotency_key = exceptions.idempotency_key)").fetchone()[0]
    finally:
        con.close()
    assert again == written and all(r[2] for r in written)
    assert keyed == 7  # every conflict and unknown type knows where its key began


def test_plan_writes_nothing(db_path):
    from opswb.workbench.plan import bulk_plan

    wb = opswb.connect(db_path)
    wb.ingest_batch(_events())
    gid = _by_signature(wb.groups())[("UNKNOWN_EVENT_TYPE", "invoice.paid")]["group_id"]
    before = dump_store(db_path)
    plan = bulk_plan(wb, filter={"group": gid}, action="override_and_replay")
    assert plan["count"] == 3
    assert [s["would"] for s in plan["sample"]] == ["refuse"] * 3  # not on the allowlist
    assert "allowlist" in plan["sample"][0]["error"]
    plan = bulk_plan(wb, filter={"group": gid}, action="mark_resolved_no_replay", sample=2)
    assert [s["would"] for s in plan["sample"]] == ["resolve", "resolve"]
    assert dump_store(db_path) == before

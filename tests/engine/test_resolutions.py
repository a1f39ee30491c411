"""SPEC §7: resolutions, refusals that change nothing, reopen, bulk, concurrency."""

from __future__ import annotations

import threading

import pytest

import opswb
from tests.helpers import dump_store, ev, observable_state

P1 = {"amount": 1200, "currency": "EUR"}
P2 = {"amount": 1250, "currency": "EUR"}


@pytest.fixture
def conflict(wb):
    """An open IDEMPOTENCY_CONFLICT on acme/K (FIRST P1, LAST P2) and its detail."""
    wb.ingest([ev("K", P1), ev("K", P2)])
    ex = wb.list_exceptions(reason_code="IDEMPOTENCY_CONFLICT")["items"][0]
    return wb.exception(ex["exception_id"])


def _state(wb):
    if getattr(wb, "remote", False):
        return observable_state(wb)
    return dump_store(wb.db)


REFUSALS = [
    ("blank notes", {"action": "mark_resolved_no_replay", "actor": "ann", "resolution_notes": "\t"}),
    ("unknown action", {"action": "delete_it", "actor": "ann", "resolution_notes": "x"}),
    ("patch changes tenant", {"action": "override_and_replay", "actor": "ann",
                                  "resolution_notes": "x", "override_patch": {"tenant_id": "evil"}}),
    ("patch changes key", {"action": "override_and_replay", "actor": "ann",
                               "resolution_notes": "x", "override_patch": {"idempotency_key": "Z"}}),
    ("patch to unknown type", {"action": "override_and_replay", "actor": "ann",
                                   "resolution_notes": "x",
                                   "override_patch": {"event_type": "no.such.type"}}),
    ("patch not an object", {"action": "override_and_replay", "actor": "ann",
                                 "resolution_notes": "x", "override_patch": [1, 2]}),
    ("patch leaves payload invalid", {"action": "override_and_replay", "actor": "ann",
                                          "resolution_notes": "x", "override_patch": {"payload": 5}}),
]


@pytest.mark.parametrize("name,kwargs", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_resolution_changes_nothing(wb, conflict, name, kwargs):
    before = _state(wb)
    with pytest.raises(opswb.InvalidRequest):
        wb.resolve(conflict["exception_id"], **kwargs)
    assert _state(wb) == before


def test_a_blank_actor_is_refused_locally_and_is_the_token_remotely(wb, conflict):
    """SPEC §15: locally every decision names its actor; over HTTP the actor is the
    token's name, so a blank one stands for it (here the bootstrap token, ``admin``)."""
    kwargs = {"action": "mark_resolved_no_replay", "actor": "  ", "resolution_notes": "x"}
    if not wb.remote:
        before = _state(wb)
        with pytest.raises(opswb.InvalidRequest, match="actor"):
            wb.resolve(conflict["exception_id"], **kwargs)
        assert _state(wb) == before
        return
    assert wb.resolve(conflict["exception_id"], **kwargs)["actor"] == "admin"


def test_foreign_canonical_raw_is_refused_and_changes_nothing(wb, conflict):
    wb.ingest([ev("OTHER", P1), ev("K", P1, tenant="globex")])
    foreign = [wb.key("acme", "OTHER")["arrivals"][0]["raw_id"],
               wb.key("globex", "K")["arrivals"][0]["raw_id"], "999999", "abc"]
    before = _state(wb)
    for raw_id in foreign:
        with pytest.raises(opswb.InvalidRequest, match="not an arrival"):
            wb.resolve(conflict["exception_id"], action="override_and_replay", actor="ann",
                       resolution_notes="x", canonical_raw_id=raw_id)
    assert _state(wb) == before


def test_second_resolution_is_a_conflict_and_changes_nothing(wb, conflict):
    wb.resolve(conflict["exception_id"], action="mark_resolved_no_replay", actor="ann",
               resolution_notes="upstream bug")
    before = _state(wb)
    with pytest.raises(opswb.Conflict, match="already resolved by ann"):
        wb.resolve(conflict["exception_id"], action="override_and_replay", actor="bob",
                   resolution_notes="me too")
    assert _state(wb) == before


def test_unknown_exception_is_not_found(wb):
    for bad in ("424242", "x", "", "-1"):
        with pytest.raises(opswb.NotFound):
            wb.resolve(bad, action="mark_resolved_no_replay", actor="a", resolution_notes="n")


def test_mark_resolved_no_replay_ignores_key_and_adjudicates(wb, conflict):
    ex = wb.resolve(conflict["exception_id"], action="mark_resolved_no_replay", actor="ann",
                    resolution_notes="upstream bug, keep first")
    assert ex["status"] == "resolved" and ex["action"] == "mark_resolved_no_replay"
    assert ex["replay_attempts"] == 0
    key = wb.key("acme", "K")
    assert key["events_processed"]["state"] == "ignored"
    assert len(key["deliveries"]) == 1            # earlier deliveries stand
    # Both fingerprints adjudicated: a re-sent copy of either is a duplicate.
    assert wb.ingest([ev("K", P2), ev("K", P1)])["duplicates"] == 2
    assert wb.health()["exceptions_open"] == 0
    audit = wb.audit(exception_id=conflict["exception_id"])
    assert [(a["actor"], a["action"], a["state_before"], a["state_after"]) for a in audit] == [
        ("ann", "mark_resolved_no_replay", "quarantined", "ignored")]
    assert audit[0]["notes"] == "upstream bug, keep first"


def test_override_and_replay_with_canonical_and_patch(wb, conflict):
    last = conflict["last"]["raw_id"]
    ex = wb.resolve(conflict["exception_id"], action="override_and_replay", actor="ann",
                    resolution_notes="LAST is the correction; fix currency",
                    canonical_raw_id=last, override_patch={"payload": {"currency": "USD"}})
    assert ex["replay_attempts"] == 1 and ex["canonical_raw_id"] == last
    assert ex["override_patch"] == {"payload": {"currency": "USD"}}
    key = wb.key("acme", "K")
    rec = key["events_processed"]
    assert rec["state"] == "processed" and rec["canonical_raw_id"] == last
    assert rec["delivery_count"] == 2
    replay = key["deliveries"][-1]
    assert replay["is_replay"] and replay["exception_id"] == conflict["exception_id"]
    assert replay["payload"] == {"amount": 1250, "currency": "USD"}
    # The replayed event is now canonical: a copy of it is a duplicate, P1/P2 too.
    again = wb.ingest([ev("K", {"currency": "USD", "amount": 1250}), ev("K", P1)])
    assert again["duplicates"] == 2
    # A later conflict shows the replayed (patched) event as FIRST.
    wb.ingest([ev("K", {"amount": 1}, source="late")])
    new = wb.list_exceptions(idempotency_key="K")["items"][0]
    detail = wb.exception(new["exception_id"])
    assert detail["first"]["payload"] == {"amount": 1250, "currency": "USD"}
    assert detail["first"]["override_patch"] == {"payload": {"currency": "USD"}}


def test_replay_delivers_even_when_equal_to_last_delivery(wb, conflict):
    wb.resolve(conflict["exception_id"], action="override_and_replay", actor="ann",
               resolution_notes="FIRST was right", canonical_raw_id=conflict["first"]["raw_id"])
    deliveries = wb.key("acme", "K")["deliveries"]
    assert [d["payload"] for d in deliveries] == [P1, P1]


def test_unknown_type_replay_after_type_is_allowed(wb):
    wb.ingest([ev("U", P1, "payment.chargeback")])
    ex = wb.list_exceptions(reason_code="UNKNOWN_EVENT_TYPE")["items"][0]
    with pytest.raises(opswb.InvalidRequest, match="not on the allowlist"):
        wb.resolve(ex["exception_id"], action="override_and_replay", actor="ann",
                   resolution_notes="replay")
    wb.add_type("payment.chargeback", tenant_id="acme", actor="ann", notes="new type")
    out = wb.resolve(ex["exception_id"], action="override_and_replay", actor="ann",
                     resolution_notes="type now supported")
    assert out["status"] == "resolved"
    assert wb.key("acme", "U")["events_processed"]["state"] == "processed"


def test_invalid_event_replay_goes_through_the_rules(wb, tmp_path):
    wb.ingest([{"tenant_id": "acme", "event_type": "payment.captured", "payload": P1}])
    ex = wb.list_exceptions(reason_code="INVALID_EVENT")["items"][0]
    with pytest.raises(opswb.InvalidRequest):   # tenant_id was present: not patchable
        wb.resolve(ex["exception_id"], action="override_and_replay", actor="ann",
                   resolution_notes="x", override_patch={"tenant_id": "x",
                                                         "idempotency_key": "FIX"})
    out = wb.resolve(ex["exception_id"], action="override_and_replay", actor="ann",
                     resolution_notes="key was missing",
                     override_patch={"idempotency_key": "FIX"})
    assert out["replay_outcome"]["outcome"] == "processed"
    key = wb.key("acme", "FIX")
    assert key["events_processed"]["state"] == "processed"
    assert key["arrivals"][0]["raw_id"] == out["replay_outcome"]["raw_id"]
    assert wb.health()["raw_events"] == 2       # the fixed envelope is a new raw


def test_reopen_then_replay(wb):
    wb.ingest([ev("R", P1, "payment.disputed")])
    ex_id = wb.list_exceptions()["items"][0]["exception_id"]
    wb.resolve(ex_id, action="mark_resolved_no_replay", actor="ann",
               resolution_notes="backlog until supported")
    assert wb.key("acme", "R")["events_processed"]["state"] == "ignored"
    with pytest.raises(opswb.InvalidRequest):
        wb.reopen(ex_id, actor="ann", resolution_notes=" ")
    reopened = wb.reopen(ex_id, actor="ann", resolution_notes="supported now")
    assert reopened["status"] == "open"
    with pytest.raises(opswb.Conflict, match="already open"):
        wb.reopen(ex_id, actor="ann", resolution_notes="twice")
    assert wb.key("acme", "R")["events_processed"]["state"] == "quarantined"
    wb.add_type("payment.disputed", actor="ann", notes="supported")
    wb.resolve(ex_id, action="override_and_replay", actor="ann", resolution_notes="replay")
    assert wb.key("acme", "R")["events_processed"]["state"] == "processed"
    actions = [a["action"] for a in wb.audit(exception_id=ex_id)]
    assert actions == ["override_and_replay", "reopen", "mark_resolved_no_replay"]


def test_reopen_refused_while_key_has_another_open_exception(wb, conflict):
    wb.resolve(conflict["exception_id"], action="mark_resolved_no_replay", actor="a",
               resolution_notes="n")
    wb.ingest([ev("K", {"amount": 7})])           # a new conflict on the ignored key
    before = _state(wb)
    with pytest.raises(opswb.Conflict, match="already has open exception"):
        wb.reopen(conflict["exception_id"], actor="a", resolution_notes="n")
    assert _state(wb) == before


def test_bulk_resolution_reports_each_item(wb):
    wb.ingest([ev(f"K{i}", P1) for i in range(3)] + [ev(f"K{i}", P2) for i in range(3)])
    ids = [e["exception_id"] for e in wb.list_exceptions()["items"]]
    wb.resolve(ids[0], action="mark_resolved_no_replay", actor="a", resolution_notes="n")
    out = wb.resolve_many(ids=ids + ["999999"], action="override_and_replay", actor="bob",
                          resolution_notes="take LAST for all")
    statuses = [(r["exception_id"], r["status"]) for r in out["results"]]
    assert statuses == [(ids[0], "conflict"), (ids[1], "resolved"), (ids[2], "resolved"),
                        ("999999", "not_found")]
    assert wb.health()["exceptions_open"] == 0
    with pytest.raises(opswb.InvalidRequest):
        wb.resolve_many(ids=ids, action="override_and_replay", actor="bob", resolution_notes="")


def test_bulk_resolution_by_filter(wb):
    wb.ingest([ev("A", P1), ev("A", P2), ev("B", P1, tenant="globex"),
               ev("B", P2, tenant="globex")])
    out = wb.resolve_many(filter={"tenant_id": "globex"}, action="mark_resolved_no_replay",
                          actor="ann", resolution_notes="globex noise")
    assert [r["status"] for r in out["results"]] == ["resolved"]
    assert wb.health()["open_by_tenant"] == {"acme": 1}


def test_eight_threads_resolving_one_exception_one_wins(wb, conflict):
    results: list = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            wb.resolve(conflict["exception_id"], action="mark_resolved_no_replay",
                       actor=f"op{i}", resolution_notes="race")
            results.append("ok")
        except opswb.Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 7 + ["ok"]
    assert len(wb.audit(exception_id=conflict["exception_id"])) == 1

"""Four eyes, claims and comments on the local workbench (SPEC §15): the rules the
server enforces are the engine's, so they hold embedded too."""

from __future__ import annotations

import pytest

import opswb
from opswb.core.errors import Forbidden
from tests.helpers import dump_store, ev

P1, P2 = {"amount": 1}, {"amount": 2}
REPLAY = "override_and_replay"


@pytest.fixture
def proposed(store_url):
    wb = opswb.connect(store_url)
    wb.ingest_batch([ev("K", P1), ev("K", P2)])
    wb.set_policy(REPLAY, "acme", "root")
    ex = wb.resolve("1", REPLAY, "ann", "take LAST")
    assert ex["status"] == "open" and ex["pending"]["proposed_by"] == "ann"
    return wb


def test_the_queue_lists_the_proposals_by_pending(proposed):
    proposed.ingest_batch([ev("L", P1), ev("L", P2)])
    assert [e["exception_id"] for e in proposed.list_exceptions(pending=True)["items"]] == ["1"]
    assert [e["idempotency_key"] for e in proposed.list_exceptions(pending=False)["items"]] \
        == ["L"]
    assert len(proposed.list_exceptions()["items"]) == 2


def test_the_proposer_cannot_decide_and_nothing_changes(proposed):
    before = dump_store(proposed.db)
    for decide in (proposed.approve, proposed.reject):
        with pytest.raises(Forbidden, match="four eyes"):
            decide("1", "ann", "mine")
    assert dump_store(proposed.db) == before


def test_a_second_proposal_waits_for_the_first(proposed):
    with pytest.raises(opswb.Conflict, match="already has a proposal by ann"):
        proposed.resolve("1", REPLAY, "bob", "no, mine")


def test_an_invalid_proposal_is_refused_before_it_is_stored(store_url):
    wb = opswb.connect(store_url)
    wb.ingest_batch([ev("K", P1), ev("K", P2)])
    wb.set_policy(REPLAY, None, "root")
    with pytest.raises(opswb.InvalidRequest, match="may not change tenant_id"):
        wb.resolve("1", REPLAY, "ann", "x", override_patch={"tenant_id": "evil"})
    assert wb.exception("1")["pending"] is None


def test_resolving_another_way_drops_the_proposal(proposed):
    ex = proposed.resolve("1", "mark_resolved_no_replay", "bob", "not worth a replay")
    assert ex["status"] == "resolved" and ex["pending"] is None
    assert len(proposed.key("acme", "K")["deliveries"]) == 1
    with pytest.raises(opswb.Conflict, match="no pending proposal"):
        proposed.approve("1", "carl", "late")


def test_a_policy_for_another_tenant_does_not_apply(proposed):
    proposed.ingest_batch([ev("G", P1, tenant="globex"), ev("G", P2, tenant="globex")])
    ex_id = proposed.list_exceptions(tenant_id="globex")["items"][0]["exception_id"]
    assert proposed.resolve(ex_id, REPLAY, "ann", "direct")["status"] == "resolved"
    assert [p["tenant_id"] for p in proposed.policies()] == ["acme"]


def test_claims_and_comments(proposed):
    assert proposed.claim("1", "bob")["assignee"] == "bob"
    assert [e["exception_id"] for e in proposed.list_exceptions(assignee="bob")["items"]] == ["1"]
    assert proposed.list_exceptions(assignee="ann")["items"] == []
    proposed.comment("1", "first", "bob")
    proposed.comment("1", "second", "ann")
    assert [c["text"] for c in proposed.exception("1")["comments"]] == ["first", "second"]
    assert proposed.unclaim("1", "bob")["assignee"] is None
    with pytest.raises(opswb.InvalidRequest, match="text"):
        proposed.comment("1", "", "bob")
    with pytest.raises(opswb.NotFound):
        proposed.claim("999", "bob")
    assert proposed.verify_audit()["ok"]


def test_a_bulk_override_under_a_policy_is_a_proposal_per_exception(store_url):
    """A bulk decision is no way around four eyes: each override becomes a proposal,
    nothing is delivered until another approver approves it; a tenant without a policy
    is decided at once."""
    wb = opswb.connect(store_url)
    wb.ingest_batch([ev("K", P1), ev("K", P2), ev("L", P1), ev("L", P2),
                     ev("M", P1, tenant="globex"), ev("M", P2, tenant="globex")])
    wb.set_policy(REPLAY, "acme", "root")
    ids = [e["exception_id"] for e in wb.list_exceptions()["items"]]
    out = wb.resolve_many(ids=ids, action=REPLAY, actor="ann", resolution_notes="take LAST",
                          canonical_raw_id="last")
    by_key = {wb.exception(r["exception_id"])["idempotency_key"]: r["status"]
              for r in out["results"]}
    assert by_key == {"K": "proposed", "L": "proposed", "M": "resolved"}
    for key in ("K", "L"):
        assert len(wb.key("acme", key)["deliveries"]) == 1  # the first only
    pending = wb.list_exceptions(pending=True)["items"]
    assert sorted(e["idempotency_key"] for e in pending) == ["K", "L"]
    ex = wb.approve(pending[0]["exception_id"], "bob", "checked")
    assert ex["status"] == "resolved"
    assert len(wb.key("acme", pending[0]["idempotency_key"])["deliveries"]) == 2

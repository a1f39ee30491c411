"""Headless tests of the four-eyes and casework panels (SPEC §15) over real stores:
embedded (a DuckDB file) and served (a real ``opswb serve`` with named tokens)."""

from __future__ import annotations

import pytest

import opswb
from opswb.console.panels.app import Console
from opswb.console.panels.casework import CaseworkPanel
from opswb.console.panels.proposals import ProposalsPanel
from opswb.console.panels.resolve import ResolvePanel
from tests.helpers import ev
from tests.support.server import served_with_tokens

REPLAY = "override_and_replay"
XSS = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
XSS_ESCAPED = "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror="


@pytest.fixture
def policed(db_path):
    """A store with a conflict (K: amount 1 then a hostile note) under a global policy."""
    wb = opswb.connect(db_path)
    wb.ingest_batch([ev("K", {"amount": 1}), ev("K", {"amount": 2, "note": XSS}),
                     ev("L", {"amount": 1}), ev("L", {"amount": 3})])
    wb.set_policy(REPLAY, None, "root")
    return wb


def propose(wb, actor: str = "ann") -> tuple[str, dict]:
    """ann proposes, through the resolve form: LAST's raw with a patch."""
    ex_id = wb.list_exceptions(idempotency_key="K")["items"][0]["exception_id"]
    form = ResolvePanel(wb)
    form.detail = detail = wb.exception(ex_id)
    form.set_form(action=REPLAY, actor=actor, notes="take LAST, fixed",
                  canonical_raw_id=detail["last"]["raw_id"], patch={"payload": {"amount": 7}})
    ex = form.submit()
    assert ex is not None, form.status.message
    assert "proposed" in form.status.message and "awaiting approval by someone else" \
        in form.status.message and "resolved" not in form.status.message
    return ex_id, wb.exception(ex_id)


def test_the_proposer_sees_the_proposal_and_no_buttons(policed):
    ex_id, detail = propose(policed)
    panel = ProposalsPanel(policed, "ann", "embedded")
    assert [e["exception_id"] for e in panel.items] == [ex_id]
    assert "by ann" in panel._list.options[0][0]
    panel.pick(ex_id)
    assert panel.selected_id == ex_id
    panel.detail = detail
    html = panel._view.value
    assert "proposed by <b class=\"opswb-proposal-by\">ann</b>" in html
    assert XSS_ESCAPED in html and "<script>" not in html and "<img" not in html
    assert "&quot;amount&quot;: 7" in html  # the patch, and the preview's event
    assert panel.preview["valid"] and panel.preview["event"]["payload"]["amount"] == 7
    assert "awaiting another approver" in html
    assert panel._decide.layout.display == "none" and not panel.can_decide
    assert panel.approve("mine") is None and "pick a pending proposal" not in \
        panel.status.message and "four eyes" in panel.status.message
    assert policed.exception(ex_id)["pending"]["proposed_by"] == "ann"


def test_another_approver_approves_once(policed):
    ex_id, detail = propose(policed)
    panel = ProposalsPanel(policed, "bob", "embedded")
    panel.detail = detail
    assert panel._decide.layout.display == "flex" and panel._approve.disabled
    panel._notes.value = "checked with billing"
    assert not panel._approve.disabled
    ex = panel.approve()
    assert ex["status"] == "resolved" and ex["actor"] == "bob", panel.status.message
    assert "approved" in panel.status.message
    key = policed.key("acme", "K")
    assert len(key["deliveries"]) == 2  # the first arrival's, then the approved replay
    assert key["events_processed"]["state"] == "processed"
    actions = [(a["action"], a["actor"]) for a in policed.audit(exception_id=ex_id)]
    assert ("propose", "ann") in actions and ("approve", "bob") in actions
    panel.detail = policed.exception(ex_id)
    assert panel.items == [] and "no pending proposal" in panel._view.value


def test_a_rejection_leaves_it_open_and_an_operator_cannot_decide(policed):
    _, detail = propose(policed)
    operator = ProposalsPanel(policed, "olga", "operator")
    operator.detail = detail
    assert operator._decide.layout.display == "none"
    assert "your role cannot approve" in operator._view.value
    panel = ProposalsPanel(policed, "bob", "approver")
    panel.detail = detail
    ex = panel.reject("not this patch")
    assert ex["status"] == "open" and ex["pending"] is None, panel.status.message
    assert "stays open" in panel.status.message
    assert policed.key("acme", "K")["events_processed"]["state"] == "quarantined"


def test_claim_unclaim_and_escaped_comments(policed):
    ex_id = policed.list_exceptions()["items"][0]["exception_id"]
    case = CaseworkPanel(policed, "bob", "operator")
    assert "Pick an exception" in case._assignee.value
    case.detail = policed.exception(ex_id)
    assert "unclaimed" in case._assignee.value and case._unclaim.disabled
    assert case.claim()["assignee"] == "bob"
    case.detail = policed.exception(ex_id)
    assert "claimed by <b>bob</b> (claimed by you)" in case._assignee.value
    assert case._claim.disabled and not case._unclaim.disabled
    assert case._add.disabled
    case._text.value = XSS
    assert not case._add.disabled
    assert case.add_comment()["comments"][0]["text"] == XSS
    case.detail = policed.exception(ex_id)
    html = case._comments.value
    assert XSS_ESCAPED in html and "<script>" not in html and "<img" not in html
    assert "<td>bob</td>" in html and case._text.value == ""
    assert case.add_comment("  ") is None and "text" in case.status.message
    assert case.unclaim()["assignee"] is None
    viewer = CaseworkPanel(policed, "vic", "viewer")
    viewer.detail = policed.exception(ex_id)
    assert viewer._buttons.layout.display == "none" and viewer._writer.layout.display == "none"
    assert XSS_ESCAPED in viewer._comments.value


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with served_with_tokens(tmp_path_factory.mktemp("console-foureyes"),
                            {"vic": "viewer", "olga": "operator", "abe": "approver"},
                            [ev("K", {"amount": 1}), ev("K", {"amount": 2})],
                            approve=REPLAY) as both:
        yield both


def test_consoles_of_two_people_over_a_server(served):
    s, tokens = served
    olga = Console(opswb.connect(s.url, token=tokens["olga"]))
    ex_id = olga.queue.items[0]["exception_id"]
    olga.detail.exception_id = ex_id
    olga.resolve.set_form(action=REPLAY, notes="take LAST")
    assert olga.resolve.submit()["pending"]["proposed_by"] == "olga"
    assert [e["exception_id"] for e in olga.proposals.items] == [ex_id]
    assert olga.proposals._decide.layout.display == "none"
    olga.casework.claim()
    assert "claimed by you" in olga.casework._assignee.value

    abe = Console(opswb.connect(s.url, token=tokens["abe"]))
    abe.proposals.pick(ex_id)  # picking in the list shows it in the detail
    assert abe.detail.exception_id == ex_id
    assert "claimed by <b>olga</b>" in abe.casework._assignee.value
    assert abe.proposals._decide.layout.display == "flex"
    assert abe.proposals.approve("second pair of eyes")["actor"] == "abe"
    assert abe.proposals.items == [] and abe.detail.detail["status"] == "resolved"

    vic = Console(opswb.connect(s.url, token=tokens["vic"]))
    vic.detail.exception_id = ex_id
    assert vic.casework._buttons.layout.display == "none"
    assert vic.proposals._decide.layout.display == "none"

"""Four eyes, claims and comments in a real browser (SPEC §15): two Voilà consoles, one
per person, over one real ``opswb serve`` with a four-eyes policy. The operator proposes,
cannot approve (no button; the API answers 403), the approver sees the proposal in full
and approves; the delivery happens once and the audit names both. A rejection leaves the
exception open; a hostile comment is shown as text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

import opswb
from opswb.console.launch import stop_console
from tests.console.test_console_browser import open_row
from tests.helpers import ev
from tests.support.browser import open_console, shot, start_server, unfold
from tests.support.server import served_with_tokens

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPLAY = "override_and_replay"
PATCH = {"payload": {"ops_review": "four-eyes"}}
XSS = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"


@pytest.fixture(scope="module")
def two_consoles(tmp_path_factory) -> Iterator[tuple[Any, dict, dict]]:
    """``(served, tokens, {name: console})``: olga (operator) and abe (approver)."""
    root = tmp_path_factory.mktemp("foureyes-browser")
    events = [ev(k, {"amount": a}) for k in ("K1", "K2", "K3") for a in (100, 120)]
    with served_with_tokens(root, {"olga": "operator", "abe": "approver"}, events,
                            approve=REPLAY) as (s, tokens):
        consoles: dict[str, Any] = {}
        try:
            for name in ("olga", "abe"):
                consoles[name] = start_server(s.url, "remote", root / f"voila-{name}.log",
                                        env={"OPSWB_API_TOKEN": tokens[name]})
            yield s, tokens, consoles
        finally:
            for c in consoles.values():
                stop_console(c.proc)
                for f in c.extra:
                    f.close()


def approve_by(s: Any, token: str, exception_id: str) -> httpx.Response:
    """The approval call as a script would make it, with ``token``."""
    return httpx.post(f"{s.url}/v1/exceptions/{exception_id}/approve",
                      json={"resolution_notes": "me"},
                      headers={"Authorization": f"Bearer {token}"})


def pick_proposal(page: Any, exception_id: str) -> None:
    """Pick one proposal in the proposals list and wait for it in the detail."""
    unfold(page, "Four eyes")
    page.locator(".opswb-proposals-refresh").click()
    option = page.locator(".opswb-proposals-list option", has_text=f"#{exception_id} ·")
    expect(option).to_have_count(1)
    page.select_option(".opswb-proposals-list select", label=option.inner_text())
    expect(page.locator(".opswb-detail-title")).to_contain_text(f"Exception #{exception_id} ·")


def test_operator_proposes_approver_approves_once(browser, two_consoles):
    s, tokens, consoles = two_consoles
    wb = opswb.connect(s.url, token=s.token)
    ex_id = wb.list_exceptions(idempotency_key="K1")["items"][0]["exception_id"]
    olga = open_console(browser, consoles["olga"])
    _olga_proposes(olga, wb, ex_id)
    # The server refuses the proposer too, whatever a page shows (an operator by role; an
    # approver who proposed by four eyes: the rejection test checks that one).
    assert approve_by(s, tokens["olga"], ex_id).status_code == 403
    assert wb.exception(ex_id)["status"] == "open"
    assert len(wb.key("acme", "K1")["deliveries"]) == 1
    _olga_claims_and_comments(olga)
    abe = open_console(browser, consoles["abe"])
    _abe_approves(abe, ex_id)

    key = wb.key("acme", "K1")
    replays = [d for d in key["deliveries"] if d["is_replay"]]
    assert len(replays) == 1 and replays[0]["payload"]["ops_review"] == "four-eyes"
    assert key["events_processed"]["state"] == "processed"
    audit = [(a["action"], a["actor"]) for a in wb.audit(exception_id=ex_id)]
    for entry in (("propose", "olga"), ("approve", "abe"), ("claim", "olga"),
                  ("comment", "olga")):
        assert entry in audit
    for page in (olga, abe):
        assert page.evaluate("window.__pwned") is None
        assert page.locator(".opswb-console img").count() == 0
        page.close()


def _olga_proposes(olga, wb, ex_id: int) -> None:
    """The operator's override and replay becomes a proposal: the four-eyes section
    unfolds by itself, without its buttons."""
    last = wb.exception(ex_id)["last"]
    expect(olga.locator(".opswb-who")).to_contain_text("working as olga (operator)")
    open_row(olga, ex_id)
    olga.select_option(".opswb-resolve-action select", label="Override and replay")
    olga.select_option(".opswb-resolve-canonical select", label=f"LAST · raw #{last['raw_id']}")
    olga.fill(".opswb-resolve-patch textarea", json.dumps(PATCH))
    olga.fill(".opswb-resolve-notes textarea", "customer confirmed the later amount")
    olga.locator(".opswb-resolve-review").click()
    olga.locator(".opswb-resolve-confirm").click()
    expect(olga.locator(".opswb-resolve-status")).to_contain_text(
        f"exception {ex_id} proposed: override_and_replay by olga, awaiting approval by "
        "someone else")
    expect(olga.locator(".opswb-proposal")).to_contain_text("awaiting another approver")
    expect(olga.locator(".opswb-proposal")).to_be_visible()
    expect(olga.locator(".opswb-proposal-approve")).to_be_hidden()
    assert olga.locator(".opswb-proposal-approve:visible").count() == 0
    shot(olga, "foureyes-1-proposed")


def _olga_claims_and_comments(olga) -> None:
    """olga claims it and leaves a note with markup in it: shown as text, never run."""
    unfold(olga, "Casework")
    olga.locator(".opswb-case-claim").click()
    expect(olga.locator(".opswb-case-assignee")).to_contain_text("claimed by olga (claimed by you)")
    olga.fill(".opswb-case-text textarea", XSS)
    olga.locator(".opswb-case-add").click()
    expect(olga.locator(".opswb-case-comments")).to_contain_text(XSS)
    shot(olga, "foureyes-2-claimed-commented")


def _abe_approves(abe, ex_id: int) -> None:
    """The approver sees the proposal (raw, patch, validity, the claim and the comment),
    must write notes first, and approves."""
    pick_proposal(abe, ex_id)
    view = abe.locator(".opswb-proposal")
    expect(view).to_contain_text("proposed by olga")
    expect(abe.locator(".opswb-proposal-raw")).to_contain_text("120")
    expect(abe.locator(".opswb-proposal-patch")).to_contain_text('"ops_review": "four-eyes"')
    expect(view).to_contain_text("✓ valid")
    expect(abe.locator(".opswb-case-assignee")).to_contain_text("claimed by olga")
    expect(abe.locator(".opswb-case-comments")).to_contain_text(XSS)
    approve = abe.locator(".opswb-proposal-approve")
    expect(approve).to_be_disabled()  # notes first
    abe.fill(".opswb-proposal-notes textarea", "second pair of eyes: fine")
    shot(abe, "foureyes-3-approver-sees")
    approve.click()
    expect(abe.locator(".opswb-proposals-status")).to_contain_text(
        f"approved: exception {ex_id} resolved by abe")
    expect(abe.locator(".opswb-detail-title")).to_contain_text("resolved")
    shot(abe, "foureyes-4-approved")


def test_a_rejection_leaves_the_exception_open(browser, two_consoles):
    s, tokens, consoles = two_consoles
    olga = opswb.connect(s.url, token=tokens["olga"])
    ex_id = olga.list_exceptions(idempotency_key="K2")["items"][0]["exception_id"]
    olga.resolve(ex_id, REPLAY, "", "take the later amount", override_patch=PATCH)
    own = olga.list_exceptions(idempotency_key="K3")["items"][0]["exception_id"]
    opswb.connect(s.url, token=tokens["abe"]).resolve(own, REPLAY, "", "mine")

    abe = open_console(browser, consoles["abe"])
    # An approver's own proposal: no buttons for it, and the server says four eyes.
    pick_proposal(abe, own)
    expect(abe.locator(".opswb-proposal")).to_contain_text("awaiting another approver")
    assert abe.locator(".opswb-proposal-approve:visible").count() == 0
    r = approve_by(s, tokens["abe"], own)
    assert r.status_code == 403 and "four eyes" in r.text

    pick_proposal(abe, ex_id)
    abe.fill(".opswb-proposal-notes textarea", "the patch is wrong")
    abe.locator(".opswb-proposal-reject").click()
    expect(abe.locator(".opswb-proposals-status")).to_contain_text(
        f"rejected: exception {ex_id} stays open")
    expect(abe.locator(".opswb-proposal")).to_contain_text("has no pending proposal")
    shot(abe, "foureyes-5-rejected")
    ex = olga.exception(ex_id)
    assert ex["status"] == "open" and ex["pending"] is None
    assert ex["events_processed"]["state"] == "quarantined"
    assert not any(d["is_replay"] for d in ex["deliveries"])
    assert ("reject", "abe") in [(a["action"], a["actor"]) for a in olga.audit(
        exception_id=ex_id)]
    abe.close()

"""The console knows who is working (SPEC §15): over a URL it works as the token's name
and role; a viewer gets no decision forms; an operator's decisions carry its name."""

from __future__ import annotations

import pytest

import opswb
from opswb.console.panels.app import Console
from tests.helpers import ev
from tests.support.server import served_with_tokens


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with served_with_tokens(tmp_path_factory.mktemp("console-who"),
                            {"vic": "viewer", "olga": "operator"},
                            [ev("K", {"amount": 1}), ev("K", {"amount": 2})]) as both:
        yield both


def test_a_viewer_sees_its_name_and_no_decision_forms(served):
    s, tokens = served
    console = Console(opswb.connect(s.url, token=tokens["vic"]))
    assert "working as vic (viewer)" in console.children[0].value
    assert console.resolve.layout.display == "none" and console.bulk.layout.display == "none"


def test_an_operator_decides_under_its_own_name(served):
    s, tokens = served
    wb = opswb.connect(s.url, token=tokens["olga"])
    console = Console(wb)
    assert "working as olga (operator)" in console.children[0].value
    assert console.resolve.layout.display != "none"
    console.resolve.detail = wb.exception(wb.list_exceptions()["items"][0]["exception_id"])
    console.resolve.set_form(action="mark_resolved_no_replay", notes="a retry")
    ex = console.resolve.submit()
    assert ex is not None and ex["actor"] == "olga", console.resolve.status.message


def test_over_the_bootstrap_token_the_console_works_as_admin(served, monkeypatch):
    """The bootstrap token is ``admin`` like any token is its name: OPSWB_ACTOR and the
    login name are for embedded use, and every form (resolve, bulk, group) says admin."""
    monkeypatch.setenv("OPSWB_ACTOR", "someone-else")
    s, _ = served
    wb = opswb.connect(s.url, token=s.token)
    console = Console(wb)
    assert "working as admin (admin)" in console.children[0].value
    assert {console.resolve._actor.value, console.bulk._actor.value,
            console.groups._actor.value} == {"admin"}
    wb.ingest_batch([ev("A", {"amount": 1}), ev("A", {"amount": 2})])
    ex_id = wb.list_exceptions(idempotency_key="A")["items"][0]["exception_id"]
    console.casework.detail = wb.exception(ex_id)
    assert console.casework.claim()["assignee"] == "admin"
    assert wb.audit(exception_id=ex_id)[0]["actor"] == "admin"

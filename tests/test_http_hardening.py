"""SPEC §6, §9, §13 at the edges a hostile or careless client reaches: exact ids, 500
answers, batch ids reused, per-arrival results, the busy message in full.

Each test runs a real ``opswb serve`` on loopback over a fresh DuckDB file (the pooled
servers of tests/support/server.py), or the CLI as a subprocess, as a user would.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

import opswb
from tests.helpers import ev

P1 = {"amount": 1200, "currency": "EUR"}
P2 = {"amount": 1250, "currency": "EUR"}
NOTE = {"actor": "ann", "resolution_notes": "checked with billing"}
# Spellings of 1 that are not the string the API gave: none of them names exception "1".
NOT_ONE = ["01", "001", "+1", " 1", "1 ", "1\n", "\t1", "1.0", "1.", "1e0", "0x1", "١",
           "１", "1_0", "-0", "0"]


@pytest.fixture
def http(remote_wb):
    """A raw HTTP client on the test's own server (a fresh store)."""
    with httpx.Client(base_url=remote_wb.url, timeout=30,
                      headers={"Authorization": f"Bearer {remote_wb.token}"}) as client:
        yield client


def _conflict_one(http) -> str:
    r = http.post("/v1/events", json=[ev("K", P1), ev("K", P2)])
    assert r.status_code == 200, r.text
    ids = [e["exception_id"] for e in http.get("/v1/exceptions").json()["items"]]
    assert ids == ["1"]  # a fresh store: the first exception is "1"
    return ids[0]


# ---- 1. only the exact string the API gave names a record (§6, §9) --------------------

@pytest.mark.parametrize("spelling", NOT_ONE)
def test_other_spellings_of_an_id_are_404_on_every_route(http, spelling):
    one = _conflict_one(http)
    path = quote(spelling, safe="")
    for method, url, body in [
            ("GET", f"/v1/exceptions/{path}", None),
            ("POST", f"/v1/exceptions/{path}/resolve",
             {"action": "mark_resolved_no_replay", **NOTE}),
            ("POST", f"/v1/exceptions/{path}/reopen", NOTE),
            ("POST", f"/v1/exceptions/{path}/preview", {})]:
        r = http.request(method, url, json=body)
        assert r.status_code == 404, (method, url, r.text)
        assert r.json() == {"error": f"no exception {spelling!r}", "status": 404,
                            "type": "NotFound"}
    bulk = http.post("/v1/exceptions/resolve", json={
        "ids": [spelling], "action": "mark_resolved_no_replay", **NOTE})
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["results"] == [{"exception_id": spelling, "status": "not_found",
                                       "error": f"no exception {spelling!r}"}]
    audit = http.get("/v1/audit", params={"exception_id": spelling})
    assert audit.status_code == 200 and audit.json()["items"] == []
    # exception "1" is untouched: still open, no audit entry
    assert http.get(f"/v1/exceptions/{one}").json()["status"] == "open"
    assert http.get("/v1/audit").json()["items"] == []


def test_a_canonical_raw_id_must_be_the_exact_string(http):
    one = _conflict_one(http)
    raws = [a["raw_id"] for a in http.get(f"/v1/exceptions/{one}").json()["arrivals"]]
    assert raws == ["1", "2"]
    for spelling in ("01", "+1", "1.0", " 1", "2 "):
        r = http.post(f"/v1/exceptions/{one}/resolve", json={
            "action": "override_and_replay", "canonical_raw_id": spelling, **NOTE})
        assert r.status_code == 422, (spelling, r.text)
        assert f"canonical_raw_id {spelling!r} is not an arrival" in r.json()["error"]
    assert http.get(f"/v1/exceptions/{one}").json()["status"] == "open"
    r = http.post(f"/v1/exceptions/{one}/resolve", json={
        "action": "override_and_replay", "canonical_raw_id": "1", **NOTE})
    assert r.status_code == 200 and r.json()["canonical_raw_id"] == "1"


def test_a_cursor_must_be_the_exact_string(http):
    _conflict_one(http)
    for cursor in ("01", "+1", "1.0"):
        r = http.get("/v1/exceptions", params={"cursor": cursor})
        assert r.status_code == 422 and "invalid cursor" in r.json()["error"], r.text


@pytest.mark.parametrize("spelling", ["01", "+1", " 1", "1.0", "1e0", ".", "..", "%31"])
def test_the_workbench_takes_only_the_exact_id(wb, spelling):
    wb.ingest([ev("K", P1), ev("K", P2)])
    assert [e["exception_id"] for e in wb.list_exceptions()["items"]] == ["1"]
    with pytest.raises(opswb.NotFound, match="no exception"):
        wb.exception(spelling)
    with pytest.raises(opswb.NotFound, match="no exception"):
        wb.resolve(spelling, action="mark_resolved_no_replay", **NOTE)
    with pytest.raises(opswb.NotFound, match="no exception"):
        wb.reopen(spelling, **NOTE)
    with pytest.raises(opswb.NotFound, match="no exception"):
        wb.preview(spelling)
    assert wb.resolve_many(ids=[spelling], action="mark_resolved_no_replay",
                           **NOTE)["results"][0]["status"] == "not_found"
    assert wb.audit(exception_id=spelling) == []
    assert wb.exception("1")["status"] == "open" and wb.audit() == []

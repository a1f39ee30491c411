"""SPEC §6, §9, §13 at the edges a hostile or careless client reaches: exact ids, 500
answers, batch ids reused, per-arrival results, the busy message in full.

Each test runs a real ``opswb serve`` on loopback over a fresh DuckDB file (the pooled
servers of tests/support/server.py), or the CLI as a subprocess, as a user would.
"""

from __future__ import annotations

import asyncio
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


# ---- 2. a 500 names no internal type or trace; the server's log has them (§9) ---------

class _Broken:
    """A workbench whose calls fail the way a bug underneath would."""

    def health(self):
        "\ud800".encode("utf-8")  # UnicodeEncodeError, as a lone surrogate once did

    def exception(self, exception_id):
        raise opswb.StoreError("store /srv/x.duckdb: Invalid Input Error: Malformed JSON "
                               "at byte 3 of input: no low surrogate")

    def ingest_batch(self, elements, batch_id=None, body_sha256=None):
        raise KeyError("seq")


def _ask(app, method: str, path: str, body) -> httpx.Response:
    """One request to ``app`` in this process (httpx over ASGI: no network, no server)."""
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     headers={"Authorization": "Bearer t"}) as client:
            return await client.request(method, path, json=body)

    return asyncio.run(go())


def test_a_500_answers_a_fixed_message_and_logs_the_traceback(caplog):
    from opswb.api import create_app
    from opswb.api_gate import INTERNAL_ERROR

    app = create_app(_Broken(), token="t")
    for method, path, logged in [("GET", "/v1/health", UnicodeEncodeError),
                                 ("GET", "/v1/exceptions/7", opswb.StoreError),
                                 ("POST", "/v1/events", KeyError)]:
        caplog.clear()
        with caplog.at_level("ERROR", logger="opswb.api"):
            r = _ask(app, method, path, [{}] if method == "POST" else None)
        assert r.status_code == 500, r.text
        body = r.json()
        assert set(body) == {"error", "status"} and body["status"] == 500
        assert body["error"].startswith(INTERNAL_ERROR + " (incident ")
        for secret in (logged.__name__, "surrogate", "Traceback", "seq", "duckdb", ".py"):
            assert secret not in r.text, (path, r.text)
        [record] = [rec for rec in caplog.records if rec.name == "opswb.api"]
        incident = body["error"].rsplit(" ", 1)[1].rstrip(")")
        assert incident in record.getMessage() and path in record.getMessage()
        assert record.exc_info[0] is logged
        assert "Traceback" in caplog.text and logged.__name__ in caplog.text

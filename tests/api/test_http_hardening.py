"""SPEC §6, §9, §13 at the edges a hostile or careless client reaches: exact ids, 500
answers, batch ids reused, per-arrival results, the busy message in full.

Each test runs a real ``opswb serve`` on loopback over a fresh DuckDB file (the pooled
servers of tests/support/server.py), or the CLI as a subprocess, as a user would.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import duckdb
import httpx
import pytest

import opswb
from tests.helpers import ev, run_async
from tests.support.people import PeopleAuth
from tests.support.server import ServerProcess

P1 = {"amount": 1200, "currency": "EUR"}
P2 = {"amount": 1250, "currency": "EUR"}
NOTE = {"actor": "ann", "resolution_notes": "checked with billing"}
# Spellings of 1 that are not the string the API gave: none of them names exception "1".
NOT_ONE = ["01", "001", "+1", " 1", "1 ", "1\n", "\t1", "1.0", "1.", "1e0", "0x1", "١",
           "１", "1_0", "-0", "0"]


@pytest.fixture
def http(remote_wb):
    """A raw HTTP client on the test's own server (a fresh store); a body naming an actor
    goes with that person's own token (SPEC §15)."""
    with httpx.Client(base_url=remote_wb.url, timeout=30,
                      auth=PeopleAuth(remote_wb.url, remote_wb.token)) as client:
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
    trail = http.get("/v1/audit").json()["items"]  # the people's tokens (tests/support)
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
    assert http.get("/v1/audit").json()["items"] == trail


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
    trail = wb.audit()  # remote: the people's tokens (tests/support/people.py)
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
    assert wb.exception("1")["status"] == "open" and wb.audit() == trail


# ---- 2. a 500 names no internal type or trace; the server's log has them (§9) ---------

class _Broken:
    """A workbench whose calls fail the way a bug underneath would."""

    def health(self):
        "\ud800".encode("utf-8")  # UnicodeEncodeError, as a lone surrogate once did

    def exception(self, exception_id):
        raise opswb.StoreError("store /srv/x.duckdb: Invalid Input Error: Malformed JSON "
                               "at byte 3 of input: no low surrogate")

    def ingest_json(self, body, batch_id=None):
        raise KeyError("seq")


def _ask(app, method: str, path: str, body) -> httpx.Response:
    """One request to ``app`` in this process (httpx over ASGI: no network, no server)."""
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     headers={"Authorization": "Bearer t"}) as client:
            return await client.request(method, path, json=body)

    return run_async(go())


def test_a_500_answers_a_fixed_message_and_logs_the_traceback(caplog):
    from opswb.api import create_app
    from opswb.api.gate import INTERNAL_ERROR

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


# ---- 4. results: what became of each arrival, in input order (§9) ---------------------

def _events(http, body, batch_id=None, ndjson=False):
    headers = {"Opswb-Batch-Id": batch_id} if batch_id else {}
    if ndjson:
        headers["Content-Type"] = "application/x-ndjson"
        return http.post("/v1/events", content=body, headers=headers)
    headers["Content-Type"] = "application/json"
    return http.post("/v1/events", content=body if isinstance(body, bytes)
                     else json.dumps(body).encode(), headers=headers)


def test_results_say_what_became_of_each_arrival(http):
    setup = _events(http, [ev("A", P1), ev("Q", P1), ev("Q", P2)]).json()
    assert [r["outcome"] for r in setup["results"]] == ["processed", "processed",
                                                        "exception_opened"]
    q_ex = setup["results"][2]["exception_id"]
    r = _events(http, [ev("A", P1, source="retry"), ev("N", P1), ev("A", P2), "junk",
                       ev("Q", P1), ev("U", P1, event_type="x.unknown"), ev("A", P2),
                       ev("N", P1)])
    assert r.status_code == 200, r.text
    answer = r.json()
    opened = {e["idempotency_key"] or "junk": e["exception_id"]
              for e in http.get("/v1/exceptions", params={"limit": 100}).json()["items"]}
    conflict = {"outcome": "exception_opened", "reason_code": "IDEMPOTENCY_CONFLICT"}
    expected = [
        {"outcome": "duplicate"},
        {"outcome": "processed"},
        {**conflict, "exception_id": opened["A"]},
        {"outcome": "exception_opened", "exception_id": opened["junk"],
         "reason_code": "INVALID_EVENT"},
        {"outcome": "attached", "exception_id": q_ex, "reason_code": "IDEMPOTENCY_CONFLICT"},
        {"outcome": "exception_opened", "exception_id": opened["U"],
         "reason_code": "UNKNOWN_EVENT_TYPE"},
        {"outcome": "attached", "exception_id": opened["A"],
         "reason_code": "IDEMPOTENCY_CONFLICT"},
        {"outcome": "duplicate"},
    ]
    assert [{k: v for k, v in x.items() if k != "raw_id"} for x in answer["results"]] == expected
    assert [x["raw_id"] for x in answer["results"]] == [str(i) for i in range(4, 12)]
    assert {k: answer[k] for k in ("received", "processed", "duplicates",
                                   "exceptions_opened", "attached", "skipped_files")} == {
        "received": 8, "processed": 1, "duplicates": 2, "exceptions_opened": 3,
        "attached": 2, "skipped_files": []}
    # each raw_id is the arrival the caller sent: the detail shows its exact text
    junk = http.get(f"/v1/exceptions/{opened['junk']}").json()
    assert junk["raw"]["raw_id"] == answer["results"][3]["raw_id"] and junk["raw"]["text"] == '"junk"'
    nd = _events(http, b'{"x": 1}\nnot json\n', ndjson=True).json()
    assert [x["outcome"] for x in nd["results"]] == ["exception_opened"] * 2
    one = _events(http, ev("O", P1)).json()
    assert one["results"] == [{"raw_id": "14", "outcome": "processed"}]


def test_the_python_api_answers_results_too_and_ingest_the_summary(wb):
    answer = wb.ingest_batch([ev("A", P1), ev("A", P2)])
    assert [x["outcome"] for x in answer["results"]] == ["processed", "exception_opened"]
    assert wb.ingest(ev("B", P1)) == {"received": 1, "processed": 1, "duplicates": 0,
                                      "exceptions_opened": 0, "attached": 0,
                                      "skipped_files": []}


# ---- 3. a batch id names one body (§9) -------------------------------------------------

def _raws(http) -> int:
    return http.get("/v1/health").json()["raw_events"]


def test_a_retried_batch_answers_the_first_results_and_stores_nothing(http):
    body = json.dumps([ev("A", P1), ev("A", P2), "junk", ev("A", P2)]).encode()
    first = _events(http, body, "client-1:0").json()
    raws = _raws(http)
    again = _events(http, body, "client-1:0")
    assert again.status_code == 200, again.text
    zero = dict.fromkeys(("received", "processed", "duplicates", "exceptions_opened",
                          "attached"), 0)
    assert again.json() == {**zero, "skipped_files": ["batch:client-1:0"],
                            "results": first["results"]}
    assert _raws(http) == raws
    nd = b'{"x": 1}\n' + json.dumps(ev("B", P1)).encode() + b"\n"
    first = _events(http, nd, "nd:0", ndjson=True).json()
    assert _events(http, nd, "nd:0", ndjson=True).json()["results"] == first["results"]


@pytest.mark.parametrize("second", [
    pytest.param(lambda b: b.replace(b"1250", b"1251"), id="another event"),
    pytest.param(lambda b: b.replace(b", ", b","), id="same events, other bytes"),
    pytest.param(lambda b: b[:-1] + b', "one more"]', id="one element more")])
def test_a_batch_id_with_another_body_is_409_and_stores_nothing(http, second):
    body = json.dumps([ev("A", P1), ev("B", P2)]).encode()
    first = _events(http, body, "b:0").json()
    raws, audit = _raws(http), http.get("/v1/exceptions", params={"status": "all"}).json()
    r = _events(http, second(body), "b:0")
    assert r.status_code == 409, r.text
    assert r.json()["error"].startswith("Opswb-Batch-Id 'b:0' is already stored with a "
                                        "different body; nothing was stored")
    assert _raws(http) == raws
    assert http.get("/v1/exceptions", params={"status": "all"}).json() == audit
    assert _events(http, body, "b:0").json()["results"] == first["results"]
    nd = _events(http, b'{"x": 1}\n', "b:0", ndjson=True)  # NDJSON, other bytes: refused too
    assert nd.status_code == 409 and _raws(http) == raws


def test_the_python_api_compares_batches_too(wb):
    first = wb.ingest_batch([ev("A", P1)], "job-7")
    assert wb.ingest_batch([ev("A", P1)], "job-7")["results"] == first["results"]
    with pytest.raises(opswb.Conflict, match="different body"):
        wb.ingest_batch([ev("A", P2)], "job-7")
    with pytest.raises(opswb.Conflict, match="different body"):
        wb.ingest_ndjson(b'{"a": 1}\n', "job-7")
    assert wb.health()["raw_events"] == 1


def test_batches_stored_before_schema_4_answer_as_retries(db_path, tmp_path):
    """A store whose batch was recorded the old way (the ledger only): after the
    upgrade a retry answers that batch's results with zero counts, whatever the body."""
    local = opswb.connect(db_path)
    first = local.ingest_batch([ev("A", P1), ev("A", P2)], "old:0")
    con = duckdb.connect(db_path)  # the store as schema 3 left it
    con.execute("DROP TABLE ingest_batches")
    con.execute("DELETE FROM schema_version WHERE version = 4")
    con.execute("INSERT INTO ingest_ledger VALUES ('batch:old:0', NULL, -1, 2, 0, now())")
    con.close()
    server = ServerProcess(db_path, tmp_path / "serve.log")
    try:
        served = server.wait()
        with httpx.Client(base_url=served.url, timeout=30,
                          headers={"Authorization": f"Bearer {served.token}"}) as http:
            again = _events(http, [ev("Z", P1)], "old:0")
            assert again.status_code == 200, again.text
            assert again.json()["received"] == 0
            assert again.json()["results"] == first["results"]
            assert _raws(http) == 2
    finally:
        server.stop()


def test_posts_the_gate_leaves_to_the_route_answer_as_before(http):
    """The gate takes POST /v1/events past FastAPI's routing (api/gate.py); a batch id
    past its 512 characters or a query parameter still get the route's 422, and nothing
    is stored."""
    long_id = _events(http, [ev("L1", P1)], batch_id="b" * 513)
    assert long_id.status_code == 422, long_id.text
    assert "Opswb-Batch-Id" in long_id.json()["error"]
    query = http.post("/v1/events?tenant=acme", json=[ev("L2", P1)])
    assert query.status_code == 422 and "tenant" in query.json()["error"]
    assert http.get("/v1/health").json()["raw_events"] == 0
    ok = _events(http, [ev("L3", P1)], batch_id="b" * 512)
    assert ok.status_code == 200 and ok.json()["processed"] == 1

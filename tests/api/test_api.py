"""SPEC §9 and serve mode (§13) against a real ``opswb serve`` subprocess on loopback.

Tests in this module share one server (``serve_url``) and keep out of each other's way
by using their own tenants; figures they check are deltas or per-tenant counts.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from opswb.workbench import remote as remote_mod
from tests.api.helpers import NOTE, P1, P2, conflict, open_ids, post_events
from tests.helpers import ev, write_jsonl
from tests.support.people import PeopleAuth, PeopleWorkbench
from tests.support.server import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


# ---- auth ------------------------------------------------------------------------------

def _routes():
    doc = json.loads((ROOT / "docs" / "openapi.json").read_text())
    calls = [(m.upper(), p.replace("{exception_id}", "1")) for p, ops in doc["paths"].items()
             for m in ops]
    return calls + [("GET", "/v1/openapi.json"), ("GET", "/v1/no-such-route")]


@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", "Basic YW5uOnB3", "Bearer"])
def test_every_route_refuses_a_missing_or_wrong_token(serve_url, auth):
    url = serve_url.url
    headers = {"Authorization": auth} if auth else {}
    with httpx.Client(base_url=url, headers=headers) as c:
        for method, path in _routes():
            r = c.request(method, path, json={} if method == "POST" else None)
            assert r.status_code == 401, (method, path, r.text)
            assert "token" in r.json()["error"]
            assert r.headers["www-authenticate"] == "Bearer"


def test_served_openapi_document_is_the_one_in_the_repo(api):
    served = api.get("/v1/openapi.json").json()
    assert served == json.loads((ROOT / "docs" / "openapi.json").read_text()), (
        "docs/openapi.json is stale: python -m opswb.api openapi docs/openapi.json")
    assert set(served["paths"]) >= {
        "/v1/health", "/v1/exceptions", "/v1/exceptions/{exception_id}",
        "/v1/exceptions/{exception_id}/resolve", "/v1/exceptions/resolve",
        "/v1/exceptions/{exception_id}/reopen", "/v1/events", "/v1/audit", "/v1/types",
        "/v1/health/snapshots"}


# ---- status codes ----------------------------------------------------------------------

@pytest.mark.parametrize("ex_id", ["999999999", "abc", "-1", "0", "1.5", "%20", "1e3",
                                   "99999999999999999999999"])
def test_ids_that_name_nothing_are_404(api, ex_id):
    for method, path, body in [("GET", f"/v1/exceptions/{ex_id}", None),
                               ("POST", f"/v1/exceptions/{ex_id}/resolve",
                                {"action": "mark_resolved_no_replay", **NOTE}),
                               ("POST", f"/v1/exceptions/{ex_id}/reopen", NOTE)]:
        r = api.request(method, path, json=body)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["status"] == 404 and r.json()["error"]


def test_second_resolution_and_reopen_of_open_are_409(api):
    ex_id = conflict(api, "t409")
    r = api.post(f"/v1/exceptions/{ex_id}/reopen", json=NOTE)
    assert r.status_code == 409 and "already open" in r.json()["error"]
    body = {"action": "mark_resolved_no_replay", **NOTE}
    assert api.post(f"/v1/exceptions/{ex_id}/resolve", json=body).status_code == 200
    r = api.post(f"/v1/exceptions/{ex_id}/resolve", json=body)
    assert r.status_code == 409
    assert "already resolved by ann" in r.json()["error"]


@pytest.mark.parametrize("name,body", [
    ("actor not text", {"action": "mark_resolved_no_replay", "actor": 5,
                        "resolution_notes": "x"}),
    ("blank notes", {"action": "mark_resolved_no_replay", "actor": "ann",
                     "resolution_notes": ""}),
    ("missing notes", {"action": "mark_resolved_no_replay", "actor": "ann"}),
    ("unknown action", {"action": "delete", **NOTE}),
    ("forbidden patch member", {"action": "override_and_replay", **NOTE,
                                "override_patch": {"tenant_id": "evil"}}),
    ("result not allowed", {"action": "override_and_replay", **NOTE,
                            "override_patch": {"event_type": "no.such.type"}}),
    ("foreign canonical raw", {"action": "override_and_replay", **NOTE,
                               "canonical_raw_id": "1"}),
    ("typo in a member", {"action": "mark_resolved_no_replay", "actor": "ann",
                          "notes": "x"}),
])
def test_invalid_resolutions_are_422_and_change_nothing(api, name, body):
    tenant = "t422-" + name.replace(" ", "-")
    ex_id = conflict(api, tenant)
    before = api.get(f"/v1/exceptions/{ex_id}").json()
    r = api.post(f"/v1/exceptions/{ex_id}/resolve", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] and r.json()["status"] == 422
    assert api.get(f"/v1/exceptions/{ex_id}").json() == before
    assert api.get("/v1/audit", params={"exception_id": ex_id}).json()["items"] == []


@pytest.mark.parametrize("path", ["/v1/exceptions/1/resolve", "/v1/events",
                                  "/v1/exceptions/resolve", "/v1/types"])
@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe"])
def test_bodies_that_are_not_json_are_422(api, path, body):
    r = api.post(path, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]


@pytest.mark.parametrize("query", ["limit=0", "limit=many", "limit=10001", "status=closed",
                                   "cursor=abc", "tenant=acme", "tenant_id=a&tenant_id=b",
                                   "sort=oldest", "sort=--key", "sort=key&sort=age",
                                   "q=" + "x" * 201, "sort=key&cursor=7"])
def test_invalid_list_parameters_are_422(api, query):
    r = api.get("/v1/exceptions?" + query)
    assert r.status_code == 422 and r.json()["error"], r.text


def test_events_body_must_be_an_array_or_one_event(api):
    r = api.post("/v1/events", json=5)
    assert r.status_code == 422 and "array" in r.json()["error"]
    one = api.post("/v1/events", json=ev("one", P1, tenant="tone"))
    assert one.status_code == 200 and one.json()["processed"] == 1


def test_declared_body_over_the_limit_is_413_before_any_byte_is_read(serve_url):
    url, token = serve_url
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=10)
    conn.putrequest("POST", "/v1/events")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(65 * 1024 * 1024))
    conn.endheaders()  # and send no body at all: the answer must come anyway
    r = conn.getresponse()
    assert r.status == 413
    assert "limit" in json.loads(r.read())["error"]
    conn.close()


def test_an_event_of_one_mebibyte_is_an_ordinary_event(api):
    big = ev("big", {"blob": "x" * (1024 * 1024)}, tenant="t1mib")
    assert post_events(api, [big])["processed"] == 1


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """A server with a 64 KiB body limit and no OPSWB_API_TOKEN (it makes its own)."""
    d = tmp_path_factory.mktemp("small")
    server = ServerProcess(str(d / "opswb.duckdb"), d / "serve.log",
                           env={"OPSWB_MAX_BODY": "65536", "OPSWB_SNAPSHOT_EVERY": "0.3"},
                           generate_token=True)
    try:
        yield server.wait()
    finally:
        server.stop()


def test_server_without_a_token_makes_one_and_prints_it_once(small_server):
    url, token = small_server
    assert token and len(token) >= 32
    assert small_server.log.read_text().count(token) == 1
    assert httpx.get(url + "/v1/health").status_code == 401
    assert httpx.get(url + "/v1/health",
                     headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_server_records_health_snapshots_on_a_schedule(small_server):
    url, token = small_server
    auth = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 20
    items: list = []
    while time.monotonic() < deadline and len(items) < 2:
        time.sleep(0.3)
        items = httpx.get(url + "/v1/health/snapshots", headers=auth).json()["items"]
    assert len(items) >= 2
    assert items[0]["taken_at"] < items[-1]["taken_at"]


def test_streamed_body_over_the_limit_is_413(small_server):
    url, token = small_server
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=10)
    chunks = (b"[" + b'"' + b"x" * 8190 + b'",' for _ in range(32))  # 256 KiB, no length
    conn.request("POST", "/v1/events", body=chunks, encode_chunked=True,
                 headers={"Authorization": f"Bearer {token}", "Content-Type":
                          "application/json", "Transfer-Encoding": "chunked"})
    r = conn.getresponse()
    assert r.status == 413, r.read()
    assert "limit of 65536 bytes" in json.loads(r.read())["error"]
    conn.close()
    health = httpx.get(url + "/v1/health", headers={"Authorization": f"Bearer {token}"})
    assert health.json()["raw_events"] == 0  # nothing half-stored


# ---- lists -----------------------------------------------------------------------------

def test_pages_are_oldest_first_and_the_cursor_is_stable(api):
    tenant = "tpage"
    post_events(api, [ev(f"u{i:02}", P1, event_type="x.unknown", tenant=tenant)
                       for i in range(25)])
    seen, cursor, first_page = [], None, None
    while True:
        params = {"tenant_id": tenant, "limit": 10, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/exceptions", params=params).json()
        assert len(page["items"]) <= 10
        if first_page is None:
            first_page = page
            # resolving an already-listed item must not shift the next page
            api.post(f"/v1/exceptions/{page['items'][0]['exception_id']}/resolve",
                     json={"action": "mark_resolved_no_replay", **NOTE})
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    keys = [e["idempotency_key"] for e in seen]
    assert keys == [f"u{i:02}" for i in range(25)]
    raw_ids = [int(e["raw_id"]) for e in seen]
    assert raw_ids == sorted(raw_ids)
    assert all(isinstance(e["exception_id"], str) for e in seen)
    everything = api.get("/v1/exceptions", params={"tenant_id": tenant, "status": "all"})
    assert len(everything.json()["items"]) == 25


# ---- the runbook loop ------------------------------------------------------------------

def test_runbook_loop_over_http(api):
    t = "trunbook"
    post_events(api, [ev("K1", P1, tenant=t), ev("K2", P1, tenant=t),
                       ev("K3", P1, event_type="payment.chargeback", tenant=t),
                       ev("K1", P2, tenant=t), ev("K2", P2, tenant=t),
                       ev("K9", P1, tenant="trunbook-other"),
                       ev("K9", P2, tenant="trunbook-other")])
    h0 = api.get("/v1/health").json()
    assert h0["open_by_tenant"][t] == 3
    everyone = api.get("/v1/exceptions", params={"limit": 1000}).json()["items"]
    assert {"trunbook", "trunbook-other"} <= {e["tenant_id"] for e in everyone}
    mine = api.get("/v1/exceptions", params={"tenant_id": t}).json()["items"]
    assert [(e["idempotency_key"], e["reason_code"]) for e in mine] == [
        ("K3", "UNKNOWN_EVENT_TYPE"), ("K1", "IDEMPOTENCY_CONFLICT"),
        ("K2", "IDEMPOTENCY_CONFLICT")]
    unknown, c1, c2 = (e["exception_id"] for e in mine)

    detail = api.get(f"/v1/exceptions/{c1}").json()
    assert detail["first"]["payload"] == P1 and detail["last"]["payload"] == P2
    assert detail["diff"] == {"changed": [{"path": "/payload/amount", "first": 1200,
                                           "last": 1250}], "added": [], "removed": []}
    assert detail["events_processed"]["state"] == "quarantined"
    assert [a["payload"] for a in detail["arrivals"]] == [P1, P2]
    assert len(detail["deliveries"]) == 1

    r = api.post(f"/v1/exceptions/{c1}/resolve",
                 json={"action": "mark_resolved_no_replay", **NOTE})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    first_raw = api.get(f"/v1/exceptions/{c2}").json()["first"]["raw_id"]
    r = api.post(f"/v1/exceptions/{c2}/resolve", json={
        "action": "override_and_replay", "actor": "bob", "resolution_notes": "keep FIRST",
        "canonical_raw_id": first_raw})
    assert r.status_code == 200 and r.json()["replay_attempts"] == 1
    r = api.post(f"/v1/exceptions/{unknown}/resolve", json={
        "action": "override_and_replay", "actor": "cy", "resolution_notes": "mis-typed",
        "override_patch": {"event_type": "payment.captured"}})
    assert r.status_code == 200, r.text

    h1 = api.get("/v1/health").json()
    assert h1["exceptions_open"] == h0["exceptions_open"] - 3
    assert t not in h1["open_by_tenant"]
    assert h1["idempotency"]["quarantined"] == h0["idempotency"]["quarantined"] - 3
    assert h1["idempotency"]["ignored"] == h0["idempotency"]["ignored"] + 1
    assert h1["idempotency"]["processed"] == h0["idempotency"]["processed"] + 2
    states = {k: api.get("/v1/keys", params={"tenant_id": t, "idempotency_key": k}).json()
              for k in ("K1", "K2", "K3")}
    assert {k: v["events_processed"]["state"] for k, v in states.items()} == {
        "K1": "ignored", "K2": "processed", "K3": "processed"}
    assert states["K2"]["deliveries"][-1]["is_replay"] is True
    assert states["K2"]["events_processed"]["canonical_raw_id"] == first_raw

    audit = api.get("/v1/audit", params={"tenant_id": t}).json()["items"]
    assert [(a["actor"], a["notes"], a["exception_id"]) for a in audit] == [
        ("cy", "mis-typed", unknown), ("bob", "keep FIRST", c2),
        ("ann", "checked with billing", c1)]
    assert audit[2]["state_before"] == "quarantined" and audit[2]["state_after"] == "ignored"
    by_actor = api.get("/v1/audit", params={"actor": "bob"}).json()["items"]
    assert [a["exception_id"] for a in by_actor] == [c2]


def test_bulk_resolution_by_filter_and_by_ids_reports_each_item(api):
    t = "tbulk"
    post_events(api, [ev(f"b{i}", P1, event_type="x.unknown", tenant=t) for i in range(3)])
    ids = open_ids(api, t)
    r = api.post("/v1/exceptions/resolve", json={"ids": [ids[0], "nope"],
                                                  "action": "mark_resolved_no_replay", **NOTE})
    assert r.json()["results"] == [
        {"exception_id": ids[0], "status": "resolved"},
        {"exception_id": "nope", "status": "not_found", "error": "no exception 'nope'"}]
    r = api.post("/v1/exceptions/resolve", json={"filter": {"tenant_id": t},
                                                  "action": "mark_resolved_no_replay", **NOTE})
    assert [x["exception_id"] for x in r.json()["results"]] == ids[1:]
    assert open_ids(api, t) == []


def test_reopen_then_replay_once_the_type_is_allowed(api):
    t = "treopen"
    post_events(api, [ev("R", P1, event_type="invoice.paid", tenant=t)])
    (ex_id,) = open_ids(api, t)
    api.post(f"/v1/exceptions/{ex_id}/resolve", json={"action": "mark_resolved_no_replay",
                                                       **NOTE})
    r = api.post("/v1/types", json={"event_type": "invoice.paid", "tenant_id": t,
                                     "actor": "ann", "notes": "now supported"})
    assert r.status_code == 200 and r.json()["allowed"] is True
    assert "invoice.paid" in {e["event_type"] for e in
                              api.get("/v1/types", params={"tenant_id": t}).json()["items"]}
    r = api.post(f"/v1/exceptions/{ex_id}/reopen", json=NOTE)
    assert r.status_code == 200 and r.json()["status"] == "open"
    r = api.post(f"/v1/exceptions/{ex_id}/resolve",
                 json={"action": "override_and_replay", **NOTE})
    assert r.status_code == 200 and r.json()["replay_attempts"] == 1
    r = api.request("DELETE", "/v1/types", params={"event_type": "invoice.paid",
                                                   "tenant_id": t, "actor": "ann"})
    assert r.status_code == 200 and r.json()["allowed"] is False


def test_health_snapshot_is_201_and_listed(api):
    r = api.post("/v1/health/snapshots")
    assert r.status_code == 201
    assert r.json()["exceptions_open"] == api.get("/v1/health").json()["exceptions_open"]
    assert api.get("/v1/health/snapshots").json()["items"][-1]["taken_at"] == \
        r.json()["taken_at"]


# ---- concurrency and retries -----------------------------------------------------------

def test_eight_concurrent_resolves_one_wins_seven_conflict_one_audit_entry(serve_url, api):
    ex_id = conflict(api, "tconcurrent")
    url, token = serve_url
    barrier = threading.Barrier(8)
    codes: list[int] = []

    def attempt(i: int) -> None:
        people = PeopleAuth(url, token)
        people.token_of(f"op{i}")  # op{i}'s own token, minted before the race starts
        with httpx.Client(base_url=url, auth=people, timeout=30) as c:
            barrier.wait()
            r = c.post(f"/v1/exceptions/{ex_id}/resolve", json={
                "action": "mark_resolved_no_replay", "actor": f"op{i}",
                "resolution_notes": "race"})
            codes.append(r.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(codes) == [200] + [409] * 7
    assert len(api.get("/v1/audit", params={"exception_id": ex_id}).json()["items"]) == 1


def test_batch_id_retry_is_a_no_op(api):
    events = [ev("B1", P1, tenant="tbatch"), ev("B1", P2, tenant="tbatch"), "junk"]
    first = post_events(api, events, **{"Opswb-Batch-Id": "tbatch:0"})
    raws = api.get("/v1/health").json()["raw_events"]
    again = post_events(api, events, **{"Opswb-Batch-Id": "tbatch:0"})
    assert first["received"] == 3 and first["exceptions_opened"] == 2
    assert {k: again[k] for k in ("received", "processed", "duplicates",
                                  "exceptions_opened", "attached")} == dict.fromkeys(
        ("received", "processed", "duplicates", "exceptions_opened", "attached"), 0)
    assert api.get("/v1/health").json()["raw_events"] == raws
    r = api.post("/v1/events", content=b'{"x": 1}\nnot json\n',
                 headers={"Content-Type": "application/x-ndjson", "Opswb-Batch-Id": "nd:1"})
    assert r.json()["received"] == 2
    arrivals = api.get("/v1/exceptions", params={"status": "all", "limit": 10_000}).json()
    texts = {api.get(f"/v1/exceptions/{e['exception_id']}").json()["raw"]["text"]
             for e in arrivals["items"][-2:]}
    assert texts == {'{"x": 1}', "not json"}  # NDJSON lines kept exactly as received


def test_remote_file_ingest_resumes_and_skips_by_batch_ids(serve_url, tmp_path, monkeypatch):
    monkeypatch.setattr(remote_mod, "BATCH_ROWS", 3)
    lines = [ev(f"F{i}", P1, tenant="tfile") for i in range(7)] + ["{broken"]
    path = write_jsonl(tmp_path / "events.jsonl", lines)
    wb = PeopleWorkbench(serve_url.url, serve_url.token)
    # a client that died after its first batch: the retry sends only what is missing
    body = b"".join(path.read_bytes().splitlines(keepends=True)[:3])
    digest = __import__("opswb.engine.readers", fromlist=["file_hash"]).file_hash(path)
    wb.ingest_ndjson(body, f"{digest}:0")
    progress: list[int] = []
    summary = wb.ingest(str(path), on_progress=lambda rows, nbytes: progress.append(rows))
    assert summary["received"] == 5 and summary["processed"] == 4
    assert summary["exceptions_opened"] == 1 and summary["skipped_files"] == []
    assert progress == [0, 3, 5]
    again = wb.ingest(str(path))
    assert again["received"] == 0 and again["skipped_files"] == [str(path)]
    assert len(wb.list_exceptions(tenant_id="tfile", status="all")["items"]) == 0
    wb.close()

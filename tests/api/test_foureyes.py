"""Four eyes, claims and comments (SPEC §15) end to end over a real ``opswb serve``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.helpers import ev
from tests.support.server import ServerProcess

P1, P2 = {"amount": 1200}, {"amount": 1250}
PEOPLE = {"olga": "operator", "amy": "approver", "abe": "approver", "vic": "viewer",
          **{f"ap{i}": "approver" for i in range(8)}}


@pytest.fixture(scope="module")
def people(module_store, tmp_path_factory):
    """A server over each store, and an HTTP client per person (``admin``: the
    bootstrap token)."""
    d = tmp_path_factory.mktemp("foureyes")
    server = ServerProcess(module_store, d / "serve.log")
    clients = {}
    try:
        s = server.wait()
        clients["admin"] = httpx.Client(base_url=s.url, timeout=60,
                                        headers={"Authorization": f"Bearer {s.token}"})
        for name, role in PEOPLE.items():
            r = clients["admin"].post("/v1/tokens", json={"name": name, "role": role})
            clients[name] = httpx.Client(base_url=s.url, timeout=60, headers={
                "Authorization": f"Bearer {r.json()['token']}"})
        yield clients
    finally:
        for c in clients.values():
            c.close()
        server.stop()


def _conflict(c: httpx.Client, tenant: str) -> str:
    c.post("/v1/events", json=[ev("K", P1, tenant=tenant), ev("K", P2, tenant=tenant)])
    return c.get("/v1/exceptions", params={"tenant_id": tenant}).json()["items"][0][
        "exception_id"]


def _propose(people, tenant: str, who: str = "olga") -> str:
    assert people["admin"].post("/v1/policies", json={"tenant_id": tenant}).status_code == 200
    ex_id = _conflict(people["olga"], tenant)
    r = people[who].post(f"/v1/exceptions/{ex_id}/resolve", json={
        "action": "override_and_replay", "resolution_notes": "the second is right",
        "override_patch": {"payload": {"note": "fixed"}}})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open"
    pending = r.json()["pending"]
    assert pending["proposed_by"] == who and pending["action"] == "override_and_replay"
    assert pending["override_patch"] == {"payload": {"note": "fixed"}}
    assert set(pending) == {"action", "proposed_by", "canonical_raw_id", "override_patch",
                            "resolution_notes", "proposed_at"}
    return ex_id


def _key(c: httpx.Client, tenant: str) -> dict:
    return c.get("/v1/keys", params={"tenant_id": tenant, "idempotency_key": "K"}).json()


def test_propose_then_a_different_approver_approves_and_the_delivery_happens_once(people):
    ex_id = _propose(people, "fe-ok", who="amy")
    assert _key(people["vic"], "fe-ok")["events_processed"]["state"] == "quarantined"
    decide = {"resolution_notes": "checked the ledger"}
    r = people["amy"].post(f"/v1/exceptions/{ex_id}/approve", json=decide)
    assert r.status_code == 403 and "a different approver" in r.json()["error"]
    r = people["olga"].post(f"/v1/exceptions/{ex_id}/approve", json=decide)
    assert r.status_code == 403 and "needs approver" in r.json()["error"]  # the role
    r = people["abe"].post(f"/v1/exceptions/{ex_id}/approve", json=decide)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved" and r.json()["pending"] is None
    key = _key(people["vic"], "fe-ok")
    assert key["events_processed"]["state"] == "processed"
    assert [d["is_replay"] for d in key["deliveries"]] == [False, True]
    assert key["deliveries"][1]["payload"]["note"] == "fixed"
    trail = people["vic"].get("/v1/audit", params={"exception_id": ex_id}).json()["items"]
    assert [(e["action"], e["actor"]) for e in reversed(trail)] == [
        ("propose", "amy"), ("approve", "abe"), ("override_and_replay", "abe")]
    assert trail[1]["details"]["proposed_by"] == "amy"
    again = people["ap0"].post(f"/v1/exceptions/{ex_id}/approve", json=decide)
    assert again.status_code == 409


def test_a_rejection_leaves_the_exception_open_and_the_key_quarantined(people):
    ex_id = _propose(people, "fe-no")
    r = people["abe"].post(f"/v1/exceptions/{ex_id}/reject",
                           json={"resolution_notes": "wrong amount"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open" and r.json()["pending"] is None
    key = _key(people["vic"], "fe-no")
    assert key["events_processed"]["state"] == "quarantined" and len(key["deliveries"]) == 1
    trail = people["vic"].get("/v1/audit", params={"exception_id": ex_id}).json()["items"]
    assert [(e["action"], e["actor"]) for e in trail] == [("reject", "abe"),
                                                          ("propose", "olga")]
    r = people["abe"].post(f"/v1/exceptions/{ex_id}/approve",
                           json={"resolution_notes": "changed my mind"})
    assert r.status_code == 409 and "no pending proposal" in r.json()["error"]


def test_eight_concurrent_approvals_one_wins(people):
    ex_id = _propose(people, "fe-race")

    def approve(i: int) -> int:
        return people[f"ap{i}"].post(f"/v1/exceptions/{ex_id}/approve",
                                     json={"resolution_notes": f"ap{i} agrees"}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(approve, range(8)))
    assert codes == [200] + [409] * 7
    assert len(_key(people["vic"], "fe-race")["deliveries"]) == 2  # the first, one replay
    trail = people["vic"].get("/v1/audit", params={"exception_id": ex_id}).json()["items"]
    assert [e["action"] for e in trail].count("approve") == 1


def test_without_a_policy_an_override_applies_at_once(people):
    ex_id = _conflict(people["olga"], "fe-none")
    r = people["olga"].post(f"/v1/exceptions/{ex_id}/resolve", json={
        "action": "override_and_replay", "resolution_notes": "no policy here"})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    policies = people["vic"].get("/v1/policies").json()["items"]
    assert {"fe-ok", "fe-no"} <= {p["tenant_id"] for p in policies}
    assert "fe-none" not in {p["tenant_id"] for p in policies}


def test_claim_and_comments(people):
    ex_id = _conflict(people["olga"], "fe-claim")
    r = people["olga"].post(f"/v1/exceptions/{ex_id}/claim")
    assert r.status_code == 200 and r.json()["assignee"] == "olga"
    assert people["vic"].post(f"/v1/exceptions/{ex_id}/claim").status_code == 403
    text = "<script>alert(1)</script> calling billing"
    r = people["olga"].post(f"/v1/exceptions/{ex_id}/comments", json={"text": text})
    assert r.status_code == 200 and r.json()["comments"][0]["author"] == "olga"
    detail = people["vic"].get(f"/v1/exceptions/{ex_id}").json()
    assert [(c["author"], c["text"]) for c in detail["comments"]] == [("olga", text)]
    assert detail["assignee"] == "olga"
    mine = people["vic"].get("/v1/exceptions", params={"assignee": "olga"}).json()["items"]
    assert [e["exception_id"] for e in mine] == [ex_id]
    assert people["vic"].get("/v1/exceptions", params={"assignee": "amy"}).json()["items"] == []
    r = people["olga"].delete(f"/v1/exceptions/{ex_id}/claim")
    assert r.status_code == 200 and r.json()["assignee"] is None
    trail = people["vic"].get("/v1/audit", params={"exception_id": ex_id}).json()["items"]
    assert [e["action"] for e in trail] == ["unclaim", "comment", "claim"]
    blank = people["olga"].post(f"/v1/exceptions/{ex_id}/comments", json={"text": " "})
    assert blank.status_code == 422


def _acting_calls(ex_id: str, actor: str) -> list[tuple[str, str, dict]]:
    """Every call whose body (or query) names an actor: ``(method, path, json|params)``."""
    note = {"actor": actor, "resolution_notes": "as someone"}
    return [
        ("POST", f"/v1/exceptions/{ex_id}/resolve",
         {**note, "action": "mark_resolved_no_replay"}),
        ("POST", "/v1/exceptions/resolve", {**note, "action": "mark_resolved_no_replay",
                                            "ids": [ex_id]}),
        ("POST", f"/v1/exceptions/{ex_id}/reopen", note),
        ("POST", f"/v1/exceptions/{ex_id}/approve", note),
        ("POST", f"/v1/exceptions/{ex_id}/reject", note),
        ("POST", f"/v1/exceptions/{ex_id}/claim", {"actor": actor}),
        ("POST", f"/v1/exceptions/{ex_id}/comments", {"actor": actor, "text": "hello"}),
        ("POST", "/v1/types", {"actor": actor, "event_type": "fe.boot", "tenant_id": "fe-boot"}),
        ("DELETE", "/v1/types", {"actor": actor, "event_type": "payment.captured",
                                 "tenant_id": "fe-boot"}),
    ]


def _everything(c: httpx.Client, ex_id: str) -> tuple:
    return (c.get(f"/v1/exceptions/{ex_id}").json(), c.get("/v1/audit/verify").json(),
            c.get("/v1/types", params={"tenant_id": "fe-boot"}).json())


def test_the_bootstrap_token_acts_only_as_admin(people):
    """SPEC §15, the bootstrap token included: a body ``actor`` naming anyone but the
    token's name (``admin``) is 422 on every call that takes one, and changes nothing;
    a person with no token of their own is no exception."""
    ex_id = _propose(people, "fe-boot", who="amy")
    before = _everything(people["vic"], ex_id)
    for name in ("alice", "abe", " abe ", "vic", "night-shift"):
        for method, path, fields in _acting_calls(ex_id, name):
            where = {"params" if method == "DELETE" else "json": fields}
            r = people["admin"].request(method, path, **where)
            assert r.status_code == 422, (method, path, name, r.text)
            assert r.json()["error"] == (
                f"actor {name!r} is not the caller: this token is 'admin'; leave actor out "
                "(the audit records the token's name), or call with that person's own "
                "token"), r.json()
    assert _everything(people["vic"], ex_id) == before


def test_the_bootstrap_token_is_recorded_as_admin(people):
    """Without ``actor``, or naming itself, the bootstrap token's decisions are ``admin``'s."""
    ex_id = _propose(people, "fe-admin", who="amy")
    r = people["admin"].post(f"/v1/exceptions/{ex_id}/claim", json={"actor": "admin"})
    assert r.status_code == 200 and r.json()["assignee"] == "admin"
    r = people["admin"].post(f"/v1/exceptions/{ex_id}/comments", json={"text": "mine"})
    assert r.status_code == 200 and r.json()["comments"][-1]["author"] == "admin"
    r = people["admin"].post(f"/v1/exceptions/{ex_id}/reject", json={
        "resolution_notes": "as the bootstrap admin"})
    assert r.status_code == 200 and r.json()["actor"] is None
    r = people["admin"].post(f"/v1/exceptions/{ex_id}/resolve", json={
        "action": "mark_resolved_no_replay", "actor": " admin ", "resolution_notes": "done"})
    assert r.status_code == 200 and r.json()["actor"] == "admin"
    trail = people["vic"].get("/v1/audit", params={"exception_id": ex_id}).json()["items"]
    assert [(e["action"], e["actor"]) for e in trail][:4] == [
        ("mark_resolved_no_replay", "admin"), ("reject", "admin"), ("comment", "admin"),
        ("claim", "admin")]

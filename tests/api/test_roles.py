"""Who may do what (SPEC §15) over a real ``opswb serve``: every route × every role, no
token and a revoked token; the actor is the token's name; no token is stored in clear."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from opswb.api.app import create_app
from opswb.api.roles import PLANNED, RULES, route_rules
from opswb.core.models import Role
from tests.helpers import ev
from tests.support.server import ServerProcess

ROLES = [r.value for r in Role]
CALLERS = ["none", "revoked", *ROLES]
ROUTES = [(m, p) for m, p, _ in route_rules(create_app(None, token="x").routes)]
P1, P2 = {"amount": 1}, {"amount": 2}


def test_every_route_has_a_rule_and_every_rule_a_route():
    rules = route_rules(create_app(None, token="x").routes)
    assert [(m, p) for m, p, need in rules if need is None] == []
    assert set(RULES) - {(m, p) for m, p, _ in rules} <= PLANNED  # no stale rule


@pytest.fixture(scope="module")
def served(module_store, tmp_path_factory):
    """A server over each store with one token per role and a revoked one:
    ``(url, {caller: token})``."""
    d = tmp_path_factory.mktemp("roles")
    server = ServerProcess(module_store, d / "serve.log")
    try:
        s = server.wait()
        boot = {"Authorization": f"Bearer {s.token}"}
        tokens = {"none": ""}
        for name in [*ROLES, "revoked"]:
            r = httpx.post(s.url + "/v1/tokens", headers=boot, json={
                "name": f"t-{name}", "role": "admin" if name == "revoked" else name})
            assert r.status_code == 201, r.text
            tokens[name] = r.json()["token"]
        assert httpx.delete(s.url + "/v1/tokens", headers=boot,
                            params={"name": "t-revoked"}).status_code == 200
        yield s, tokens
    finally:
        server.stop()


def _call(url: str, token: str, method: str, path: str) -> httpx.Response:
    """One call with inputs that change nothing that matters: an exception id that names
    nothing, bodies that are empty or refused after the role check."""
    path = path.replace("{exception_id}", "no-such-id")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    json = [] if path == "/v1/events" else {} if method == "POST" else None
    params = {"tenant_id": "t-roles"} if path == "/v1/policies" else None
    return httpx.request(method, url + path, headers=headers, json=json, params=params,
                         timeout=30)


def _expected(caller: str, method: str, path: str) -> str:
    if caller in ("none", "revoked"):
        return "401"
    return "allowed" if Role(caller).rank >= RULES[(method, path)].rank else "403"


@pytest.mark.parametrize("caller", CALLERS)
def test_the_role_table_over_http(served, caller):
    s, tokens = served
    got, want = {}, {}
    for method, path in ROUTES:
        r = _call(s.url, tokens[caller], method, path)
        status = r.status_code
        got[(method, path)] = ("allowed" if status not in (401, 403) and status < 500
                               else str(status))
        want[(method, path)] = _expected(caller, method, path)
        if status == 403:
            assert f"needs {RULES[(method, path)].value} or above" in r.json()["error"]
    assert got == want


def test_actor_is_the_token_name(served):
    s, tokens = served
    op = httpx.Client(base_url=s.url, headers={"Authorization": f"Bearer {tokens['operator']}"})
    assert op.get("/v1/whoami").json() == {"name": "t-operator", "role": "operator",
                                           "bootstrap": False}
    op.post("/v1/events", json=[ev("K", P1, tenant="t-actor"), ev("K", P2, tenant="t-actor")])
    ex_id = op.get("/v1/exceptions", params={"tenant_id": "t-actor"}).json()["items"][0][
        "exception_id"]
    body = {"action": "mark_resolved_no_replay", "resolution_notes": "dup"}
    r = op.post(f"/v1/exceptions/{ex_id}/resolve", json={**body, "actor": "ann"})
    assert r.status_code == 422 and "not the caller" in r.json()["error"]
    assert op.get(f"/v1/exceptions/{ex_id}").json()["status"] == "open"
    r = op.post(f"/v1/exceptions/{ex_id}/resolve", json={**body, "actor": "t-operator"})
    assert r.status_code == 200 and r.json()["actor"] == "t-operator"
    entry = op.get("/v1/audit", params={"exception_id": ex_id}).json()["items"][0]
    assert entry["actor"] == "t-operator"
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    listed = {t["name"]: t for t in httpx.get(s.url + "/v1/tokens", headers=admin).json()[
        "items"]}
    assert listed["t-operator"]["last_used_at"] is not None
    assert listed["t-revoked"]["revoked_at"] is not None
    assert listed["t-viewer"]["role"] == "viewer" and "token" not in listed["t-viewer"]


def test_revocation_is_effective_on_the_next_request(served):
    s, _ = served
    boot = {"Authorization": f"Bearer {s.token}"}
    new = httpx.post(s.url + "/v1/tokens", headers=boot,
                     json={"name": "t-soon-gone", "role": "viewer"}).json()["token"]
    mine = {"Authorization": f"Bearer {new}"}
    assert httpx.get(s.url + "/v1/health", headers=mine).status_code == 200
    assert httpx.delete(s.url + "/v1/tokens", headers=boot,
                        params={"name": "t-soon-gone"}).status_code == 200
    assert httpx.get(s.url + "/v1/health", headers=mine).status_code == 401
    again = httpx.post(s.url + "/v1/tokens", headers=boot,
                       json={"name": "t-soon-gone", "role": "viewer"})
    assert again.status_code == 409 and "never reused" in again.json()["error"]


def test_the_store_file_holds_no_token_in_clear(tmp_path):
    db = tmp_path / "opswb.duckdb"
    server = ServerProcess(str(db), tmp_path / "serve.log")
    made = []
    try:
        s = server.wait()
        boot = {"Authorization": f"Bearer {s.token}"}
        for i, role in enumerate(ROLES):
            r = httpx.post(s.url + "/v1/tokens", headers=boot,
                           json={"name": f"scan-{i}", "role": role})
            made.append(r.json())
            # a use, so last_used_at is written too
            assert httpx.get(s.url + "/v1/health", headers={
                "Authorization": f"Bearer {made[-1]['token']}"}).status_code == 200
    finally:
        server.stop()
    stored = b"".join(p.read_bytes() for p in Path(tmp_path).glob("opswb.duckdb*")
                      if p.is_file())
    assert b"scan-0" in stored  # the scan sees what the file holds in clear
    for t in made:
        assert t["token"].encode() not in stored, t["name"]


def test_postgresql_holds_no_token_in_clear(pg_url, tmp_path):
    from tests.support.postgres import dump_database

    server = ServerProcess(pg_url, tmp_path / "serve.log")
    made = []
    try:
        s = server.wait()
        boot = {"Authorization": f"Bearer {s.token}"}
        for i, role in enumerate(ROLES):
            made.append(httpx.post(s.url + "/v1/tokens", headers=boot,
                                   json={"name": f"scan-{i}", "role": role}).json())
            assert httpx.get(s.url + "/v1/health", headers={
                "Authorization": f"Bearer {made[-1]['token']}"}).status_code == 200
    finally:
        server.stop()
    stored = repr(dump_database(pg_url))
    assert "scan-0" in stored  # every row of every table, as text
    for t in made:
        assert t["token"] not in stored, t["name"]

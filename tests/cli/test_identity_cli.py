"""`opswb tokens`, `opswb policy`, `opswb approve|reject`, `opswb claim|comment` (SPEC
§15), on a file and against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from tests.helpers import ev
from tests.support.server import ServerProcess

OPSWB = [sys.executable, "-m", "opswb.cli"]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPSWB_")}
    return subprocess.run(OPSWB + list(args), capture_output=True, text=True, check=False,
                          env={**clean, **(env or {})}, timeout=120)


def test_tokens_on_a_file_then_served(tmp_path):
    db = str(tmp_path / "id.duckdb")
    r = run("tokens", "add", "ann", "--role", "operator", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    assert set(made) == {"name", "role", "token"} and made["role"] == "operator"
    plain = run("tokens", "add", "vic", "--role", "viewer", "--db", db)
    vic = plain.stdout.strip()
    assert plain.returncode == 0 and len(vic) >= 43 and "shown only now" in plain.stderr
    bad = run("tokens", "add", "eve", "--role", "root", "--db", db)
    assert bad.returncode == 1 and "unknown role 'root'" in bad.stderr
    listed = json.loads(run("tokens", "list", "--db", db, "--json").stdout)["items"]
    assert [(t["name"], t["role"]) for t in listed] == [("ann", "operator"), ("vic", "viewer")]
    assert made["token"] not in json.dumps(listed)
    server = ServerProcess(db, tmp_path / "serve.log")
    try:
        s = server.wait()
        who = httpx.get(s.url + "/v1/whoami",
                        headers={"Authorization": f"Bearer {made['token']}"}).json()
        assert who == {"name": "ann", "role": "operator", "bootstrap": False}
        as_ann = {"OPSWB_API_TOKEN": made["token"]}
        refused = run("tokens", "add", "bob", "--role", "admin", "--db", s.url, env=as_ann)
        assert refused.returncode == 1 and "needs admin" in refused.stderr
        as_admin = {"OPSWB_API_TOKEN": s.token}
        assert run("tokens", "revoke", "vic", "--db", s.url, env=as_admin).returncode == 0
        assert httpx.get(s.url + "/v1/health",
                         headers={"Authorization": f"Bearer {vic}"}).status_code == 401
        r = run("tokens", "list", "--db", s.url, env=as_admin)
        assert r.returncode == 0 and "vic" in r.stdout and "never" in r.stdout
    finally:
        server.stop()


def test_four_eyes_claim_and_comment_embedded(tmp_path):
    db = str(tmp_path / "fe.duckdb")
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(ev("K", {"amount": a})) for a in (1, 2)) + "\n")
    assert run("ingest", str(src), "--db", db).returncode == 0
    assert run("policy", "set", "--tenant", "acme", "--db", db).returncode == 0
    assert "needs approval for tenant acme" in run("policy", "list", "--db", db).stdout
    r = run("resolve", "1", "--action", "override_and_replay", "--actor", "ann",
            "--notes", "take the second", "--db", db)
    assert r.returncode == 0 and "proposal: override_and_replay by ann" in r.stdout
    own = run("approve", "1", "--actor", "ann", "--notes", "ok", "--db", db)
    assert own.returncode == 1 and "a different approver" in own.stderr
    ok = run("approve", "1", "--notes", "ok", "--db", db, env={"OPSWB_ACTOR": "bob"})
    assert ok.returncode == 0 and "override_and_replay by bob" in ok.stdout
    shown = json.loads(run("show", "1", "--db", db, "--json").stdout)
    assert shown["status"] == "resolved" and len(shown["deliveries"]) == 2
    assert run("comment", "1", "checked <b>twice</b>", "--actor", "carl",
               "--db", db).returncode == 0
    assert "checked <b>twice</b>" in run("show", "1", "--db", db).stdout
    assert run("policy", "clear", "--tenant", "acme", "--db", db).returncode == 0
    assert run("audit", "verify", "--db", db).returncode == 0

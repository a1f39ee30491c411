"""Serve mode (SPEC §13) beyond the routes: one file and several processes, and the
remote workbench against a real ``opswb serve`` subprocess on loopback.

Tests in this module share one server (``serve_url``) and keep out of each other's way
by using their own tenants.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import opswb
from opswb.workbench import remote as remote_mod
from opswb.workbench.local import LocalWorkbench
from tests.api.helpers import P1, P2, conflict
from tests.helpers import ev, write_jsonl
from tests.support.people import PeopleWorkbench, mint_people

ROOT = Path(__file__).resolve().parents[2]


# ---- one file, several processes -------------------------------------------------------

def _cli(*args: str, env: dict | None = None, timeout: float = 60):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPSWB_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "opswb.cli", *args], capture_output=True,
                          check=False, text=True, env=full_env, timeout=timeout, cwd=ROOT)


@pytest.mark.duckdb_only("one process holds a DuckDB file; PostgreSQL has no holder")
def test_embedded_ingest_gives_up_and_points_at_the_server(serve_url, api, tmp_path):
    path = write_jsonl(tmp_path / "late.jsonl", [ev("L1", P1, tenant="tlate")])
    raws = api.get("/v1/health").json()["raw_events"]
    started = time.monotonic()
    done = _cli("ingest", "--db", serve_url.db, str(path), env={"OPSWB_BUSY_TIMEOUT": "2"})
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    message = done.stderr.strip()
    assert "busy" in message and "opswb serve" in message and "URL" in message, message
    assert str(serve_url.pid) in message and serve_url.db in message
    assert elapsed < 2 + 10  # the bound plus interpreter start-up, not the default 10 s
    assert api.get("/v1/health").json()["raw_events"] == raws

    via_url = _cli("ingest", "--db", serve_url.url, str(path), "--json",
                   env={"OPSWB_API_TOKEN": serve_url.token})
    assert via_url.returncode == 0, via_url.stderr
    assert json.loads(via_url.stdout)["processed"] == 1


def test_cli_health_json_over_the_url_is_the_api_answer(serve_url, api):
    done = _cli("health", "--db", serve_url.url, "--json",
                env={"OPSWB_API_TOKEN": serve_url.token})
    assert done.returncode == 0, done.stderr
    drop = "oldest_open_age_seconds"
    got = {k: v for k, v in json.loads(done.stdout).items() if k != drop}
    assert got == {k: v for k, v in api.get("/v1/health").json().items() if k != drop}


# ---- the remote workbench --------------------------------------------------------------

def _public(cls) -> dict:
    return {n: inspect.signature(f) for n, f in inspect.getmembers(cls, inspect.isfunction)
            if not n.startswith("_")}


def test_remote_workbench_has_the_local_methods_and_signatures():
    local, remote = _public(LocalWorkbench), _public(opswb.RemoteWorkbench
                                                      if hasattr(opswb, "RemoteWorkbench")
                                                      else remote_mod.RemoteWorkbench)
    assert set(local) <= set(remote)
    assert set(remote) - set(local) <= {"close", "sql"}
    for name, sig in local.items():
        assert list(sig.parameters) == list(remote[name].parameters), name
        assert [p.default for p in sig.parameters.values()] == [
            p.default for p in remote[name].parameters.values()], name


def test_remote_errors_are_the_engine_errors(serve_url, api):
    wb = PeopleWorkbench(serve_url.url, serve_url.token)
    ex_id = conflict(api, "terrors")
    with pytest.raises(opswb.NotFound):
        wb.exception("no-such-id")
    with pytest.raises(opswb.InvalidRequest, match="resolution_notes"):
        wb.resolve(ex_id, action="mark_resolved_no_replay", actor="ann", resolution_notes=" ")
    wb.resolve(ex_id, action="mark_resolved_no_replay", actor="ann", resolution_notes="x")
    with pytest.raises(opswb.Conflict, match="already resolved"):
        wb.resolve(ex_id, action="mark_resolved_no_replay", actor="ann", resolution_notes="x")
    with pytest.raises(opswb.LocalOnly, match="local-only"):
        wb.sql("SELECT 1")
    with pytest.raises(opswb.LocalOnly, match="local-only"):
        wb.views  # noqa: B018 - the attribute access itself must refuse
    frame = wb.exceptions(tenant_id="terrors", status="all")
    assert list(frame["exception_id"]) == [ex_id]
    wb.close()
    with pytest.raises(opswb.Unauthorized):
        opswb.connect(serve_url.url, token="wrong").health()
    with pytest.raises(opswb.RemoteError, match="cannot reach"):
        opswb.connect("http://127.0.0.1:9", token="x").health()


def test_a_plain_remote_workbench_acts_as_its_token(serve_url, api):
    """``opswb.connect(URL, token=…)`` with the bootstrap token: naming someone else is
    the server's 422 (InvalidRequest) and changes nothing; no name is ``admin``."""
    wb = opswb.connect(serve_url.url, token=serve_url.token)
    ex_id = conflict(api, "tplain")
    before = (wb.exception(ex_id), wb.verify_audit()["checked"])
    with pytest.raises(opswb.InvalidRequest, match="'alice' is not the caller: this token "
                                                   "is 'admin'"):
        wb.resolve(ex_id, action="mark_resolved_no_replay", actor="alice",
                   resolution_notes="as alice")
    with pytest.raises(opswb.InvalidRequest, match="'alice' is not the caller"):
        wb.comment(ex_id, "as alice", actor="alice")
    # routes that take no actor: the workbench refuses the name before sending anything
    for call in (lambda: wb.unclaim(ex_id, actor="alice"),
                 lambda: wb.set_policy(tenant_id="tplain", actor="alice"),
                 lambda: wb.add_token("tplain-vic", "viewer", actor="alice")):
        with pytest.raises(opswb.InvalidRequest, match="'alice' is not the caller"):
            call()
    assert (wb.exception(ex_id), wb.verify_audit()["checked"]) == before
    assert "tplain-vic" not in {t["name"] for t in wb.tokens()}
    done = wb.resolve(ex_id, action="mark_resolved_no_replay", actor="",
                      resolution_notes="as the token")
    assert done["actor"] == "admin"
    assert wb.audit(exception_id=ex_id)[0]["actor"] == "admin"
    wb.close()


def _scrub(value):
    """Drop timestamps: the only thing two stores fed the same input may disagree on."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()
                if not (k.endswith("_at") or k in ("at", "oldest_open_age_seconds"))}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def test_local_and_remote_workbenches_answer_alike(local_wb, remote_wb, tmp_path):
    lines = [ev("A", P1), ev("A", P2), ev("B", P1, event_type="x.unknown"), ev("C", P1),
             ev("C", P1, source="retry"), "{not json", ev("D", P1, tenant="other")]
    path = write_jsonl(tmp_path / "same.jsonl", lines)
    mint_people(local_wb.db)  # the people the remote store holds, so the audits match
    results = []
    for wb in (local_wb, remote_wb):
        summary = wb.ingest(str(path))
        page = wb.list_exceptions(limit=2)
        ex_id = page["items"][0]["exception_id"]
        resolved = wb.resolve(ex_id, action="override_and_replay", actor="ann",
                              resolution_notes="keep LAST", canonical_raw_id="2")
        frame = wb.exceptions(status="all")
        results.append({
            "summary": summary, "page": page, "resolved": resolved,
            "detail": wb.exception(ex_id), "key": wb.key("acme", "A"),
            "health": wb.health(), "audit": wb.audit(), "types": wb.types("acme"),
            "preview": wb.preview(page["items"][1]["exception_id"],
                                  override_patch={"event_type": "payment.captured"}),
            "frame": (list(frame.columns), [str(t) for t in frame.dtypes],
                      frame.drop(columns=["created_at", "resolved_at"]).to_dict("records")),
        })
    local, remote = (_scrub(r) for r in results)
    for part in local:
        assert local[part] == remote[part], part

"""The CLI as a user runs it: real subprocesses on a real store file."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys

import pytest

import opswb
from tests.helpers import ev, write_jsonl

OPSWB = [sys.executable, "-m", "opswb.cli"]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(OPSWB + list(args), capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def loaded(tmp_path):
    db = str(tmp_path / "cli.duckdb")
    src = write_jsonl(tmp_path / "in.jsonl", [
        ev("k1", {"amount": 1}), ev("k1", {"amount": 2}), ev("k2", {"a": 1}, "weird.type"),
        "{broken", ev("k3", {"amount": 3}, tenant="globex"),
    ])
    r = run("ingest", str(src), "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    return db, json.loads(r.stdout)


def test_ingest_json_prints_the_summary(loaded):
    _, summary = loaded
    assert summary == {"received": 5, "processed": 2, "duplicates": 0,
                       "exceptions_opened": 3, "attached": 0, "skipped_files": []}


def test_json_output_equals_the_python_api(loaded):
    import opswb

    db, _ = loaded
    wb = opswb.connect(db)
    health = json.loads(run("health", "--db", db, "--json").stdout)
    expected = wb.health()
    for volatile in ("oldest_open_age_seconds",):
        health.pop(volatile), expected.pop(volatile)
    assert health == expected
    page = json.loads(run("exceptions", "--db", db, "--json", "--tenant", "acme").stdout)
    assert page == wb.list_exceptions(tenant_id="acme")
    first = page["items"][0]["exception_id"]
    assert json.loads(run("show", first, "--db", db, "--json").stdout) == wb.exception(first)


def test_people_output_is_a_table(loaded):
    db, _ = loaded
    out = run("exceptions", "--db", db).stdout
    assert "IDEMPOTENCY_CONFLICT" in out and "reason" in out
    health = run("health", "--db", db).stdout
    figures = json.loads(run("health", "--db", db, "--json").stdout)
    assert f"{figures['exceptions_open']} exceptions open" in health
    assert f"{figures['deliveries']} deliveries" in health


def test_resolve_refusal_is_one_line_and_changes_nothing(loaded):
    db, _ = loaded
    before = run("show", "1", "--db", db, "--json").stdout
    r = run("resolve", "1", "--db", db, "--action", "mark_resolved_no_replay",
            "--actor", "ann", "--notes", "   ")
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "resolution_notes" in r.stderr
    assert run("show", "1", "--db", db, "--json").stdout == before


def test_resolve_with_patch_file_and_bulk_by_filter(loaded, tmp_path):
    db, _ = loaded
    patch = tmp_path / "patch.json"
    patch.write_text('{"payload": {"amount": 20}}')
    r = run("resolve", "1", "--db", db, "--action", "override_and_replay", "--actor", "ann",
            "--notes", "corrected amount", "--patch", f"@{patch}", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["override_patch"] == {"payload": {"amount": 20}}
    r = run("resolve", "--reason", "INVALID_EVENT", "--db", db, "--action",
            "mark_resolved_no_replay", "--notes", "junk line", "--json", "--yes",
            env={"OPSWB_ACTOR": "bot"})
    assert r.returncode == 0, r.stderr
    assert [x["status"] for x in json.loads(r.stdout)["results"]] == ["resolved"]


def test_types_add_remove_and_refusal(loaded):
    db, _ = loaded
    assert run("types", "add", "weird.type", "--tenant", "acme", "--actor", "ann",
               "--db", db).returncode == 0
    listed = json.loads(run("types", "list", "--db", db, "--json").stdout)["items"]
    assert {"tenant_id": "acme", "event_type": "weird.type"}.items() <= next(
        t for t in listed if t["event_type"] == "weird.type").items()
    r = run("types", "remove", "payment.captured", "--tenant", "acme", "--actor", "ann",
            "--db", db)
    assert r.returncode != 0 and "globally" in r.stderr
    r = run("reopen", "2", "--db", db, "--actor", "ann", "--notes", "n")
    assert r.returncode != 0 and "already open" in r.stderr


def test_cli_path_imports_no_heavy_library(loaded):
    """What keeps `opswb health` quick from a cold start (no timing asserted)."""
    db, _ = loaded
    assert run("health", "--db", db, "--json").returncode == 0
    code = ("import sys, opswb.cli; from opswb.cli import app;"
            "heavy = [m for m in ('pandas', 'papermill', 'nbformat',"
            " 'ipywidgets', 'fastapi', 'matplotlib') if m in sys.modules];"
            "print(heavy)")
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=False)
    assert probe.stdout.strip() == "[]"


# A notebook-style holder: a script given with -c, its command line holding newlines.
HOLDER = ("import duckdb, sys, time\n"
          "con = duckdb.connect(sys.argv[1])  # holds the file\n"
          "print('holding', flush=True)\n"
          "time.sleep(120)\n")


def test_busy_message_is_printed_whole_on_one_line(loaded):
    db, _ = loaded
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        r = run("health", "--db", db, env={"OPSWB_BUSY_TIMEOUT": "1"})
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode != 0
    message = r.stderr
    assert message.endswith("\n") and message.count("\n") == 1, message
    assert message.startswith(f"opswb: error: store is busy: {db} is held by PID "
                              f"{holder.pid} (")
    assert "import duckdb, sys, time con = duckdb.connect" in message  # newlines as spaces
    assert message.rstrip().endswith(f"run `opswb serve --db {db}` and point clients at "
                                     "its URL."), message


# ---- a path to nothing is refused, not created ----------------------------------------

READERS = [
    ["health"], ["health", "--json"], ["exceptions"], ["show", "1"],
    ["resolve", "1", "--action", "mark_resolved_no_replay", "--actor", "ann", "--notes", "n"],
    ["reopen", "1", "--actor", "ann", "--notes", "n"],
    ["types", "list"], ["types", "add", "x.y", "--actor", "ann"],
    ["types", "remove", "x.y", "--actor", "ann"], ["audit"], ["audit", "--json"],
    ["console", "--port", "9"], ["report", "--out", "{tmp}/reports"],
]


@pytest.mark.parametrize("args", READERS, ids=lambda a: "-".join(a[:2]))
def test_reading_commands_refuse_a_missing_store_and_create_nothing(tmp_path, args):
    from typer.testing import CliRunner

    from opswb.cli import app

    missing = tmp_path / "typo" / "opswb.duckdb"
    argv = [a.format(tmp=tmp_path) for a in args] + ["--db", str(missing)]
    r = CliRunner().invoke(app, argv)
    assert r.exit_code != 0
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"opswb: error: no store at {missing}; ")
    assert "`opswb init --db " in r.stderr and "`opswb ingest FILE --db " in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_default_store_from_opswb_db_is_refused_too(tmp_path):
    missing = tmp_path / "nothing.duckdb"
    r = run("health", env={"OPSWB_DB": str(missing)})
    assert r.returncode != 0 and f"no store at {missing}" in r.stderr
    assert not missing.exists()


def test_init_and_ingest_create_the_store_and_a_url_is_not_a_path(tmp_path):
    made = tmp_path / "new" / "opswb.duckdb"
    assert run("init", "--db", str(made)).returncode == 0 and made.exists()
    src = write_jsonl(tmp_path / "in.jsonl", [ev("k1", {"amount": 1})])
    fresh = tmp_path / "fresh.duckdb"
    assert run("ingest", str(src), "--db", str(fresh)).returncode == 0 and fresh.exists()
    r = run("health", "--db", "http://127.0.0.1:9", env={"OPSWB_API_TOKEN": "x"})
    assert r.returncode != 0 and "no store" not in r.stderr and "cannot reach" in r.stderr


# ---- opswb audit ------------------------------------------------------------------------

def _decide(db: str, env: dict | None = None) -> None:
    """Three audited decisions: a resolution and a reopen by ann, an allowlist change by bob."""
    for args in (["resolve", "1", "--action", "mark_resolved_no_replay", "--actor", "ann",
                  "--notes", "dup from retry"],
                 ["reopen", "1", "--actor", "ann", "--notes", "wrong call"],
                 ["types", "add", "weird.type", "--tenant", "acme", "--actor", "bob",
                  "--notes", "new product"]):
        r = run(*args, "--db", db, env=env)
        assert r.returncode == 0, r.stderr


AUDIT_QUESTIONS = [[], ["--exception", "1"], ["--actor", "bob"], ["--tenant", "acme"],
                   ["--actor", "ann", "--limit", "1"], ["--exception", "999"]]


def test_audit_json_is_the_workbench_answer_and_people_get_a_table(loaded):
    import opswb

    db, _ = loaded
    _decide(db)
    wb = opswb.connect(db)
    for question in AUDIT_QUESTIONS:
        r = run("audit", "--db", db, "--json", *question)
        assert r.returncode == 0, r.stderr
        flags = dict(zip(question[::2], question[1::2], strict=True))
        assert json.loads(r.stdout) == {"items": wb.audit(
            exception_id=flags.get("--exception"), actor=flags.get("--actor"),
            tenant_id=flags.get("--tenant"), limit=int(flags.get("--limit", 200))),
            "next_cursor": None}
    everything = json.loads(run("audit", "--db", db, "--json").stdout)["items"]
    assert [e["action"] for e in everything] == ["types.add", "reopen",
                                                 "mark_resolved_no_replay"]
    out = run("audit", "--db", db, "--exception", "1").stdout
    assert "reopen" in out and "wrong call" in out and "mark_resolved_no_replay" in out
    assert "quarantined" in out and "types.add" not in out
    assert "no audit entries match" in run("audit", "--db", db, "--actor", "zed").stdout


def test_audit_over_a_serve_url_is_the_api_answer(serve_url, tmp_path):
    import httpx

    env = {"OPSWB_API_TOKEN": serve_url.token}
    src = write_jsonl(tmp_path / "in.jsonl", [
        ev("a1", {"amount": 1}, tenant="audit-cli"), ev("a1", {"amount": 2}, tenant="audit-cli"),
        ev("a2", {"a": 1}, "weird.type", tenant="audit-cli")])
    assert run("ingest", str(src), "--db", serve_url.url, env=env).returncode == 0
    page = json.loads(run("exceptions", "--db", serve_url.url, "--tenant", "audit-cli",
                          "--json", env=env).stdout)
    first = page["items"][0]["exception_id"]
    headers = {"Authorization": f"Bearer {serve_url.token}"}
    ann = httpx.post(serve_url.url + "/v1/tokens", headers=headers,
                     json={"name": "ann", "role": "operator"}).raise_for_status().json()
    r = run("resolve", first, "--db", serve_url.url, "--action", "mark_resolved_no_replay",
            "--actor", "ann", "--notes", "dup from retry", env={"OPSWB_API_TOKEN": ann["token"]})
    assert r.returncode == 0, r.stderr
    for flags, params in [(["--tenant", "audit-cli"], {"tenant_id": "audit-cli"}),
                          (["--exception", first], {"exception_id": first}),
                          (["--actor", "ann", "--limit", "1"], {"actor": "ann", "limit": 1})]:
        r = run("audit", "--db", serve_url.url, "--json", *flags, env=env)
        assert r.returncode == 0, r.stderr
        answer = httpx.get(serve_url.url + "/v1/audit", params=params, headers=headers)
        assert json.loads(r.stdout) == answer.json()
        assert answer.json()["items"], params
    out = run("audit", "--db", serve_url.url, "--tenant", "audit-cli", env=env).stdout
    assert "dup from retry" in out and "mark_resolved_no_replay" in out


def test_over_a_url_the_cli_acts_as_its_token(serve_url, tmp_path):
    """SPEC §15 over HTTP: without ``--actor`` the CLI sends no name (not OPSWB_ACTOR,
    not the OS user) and the server records the token's; another ``--actor`` is the
    server's 422, on one line, and changes nothing."""
    import httpx

    boot = {"OPSWB_API_TOKEN": serve_url.token, "OPSWB_ACTOR": "someone-else"}
    src = write_jsonl(tmp_path / "in.jsonl", [
        ev(k, {"amount": a}, tenant="who-cli") for k in ("w1", "w2") for a in (1, 2)])
    assert run("ingest", str(src), "--db", serve_url.url, env=boot).returncode == 0
    first, second = (e["exception_id"] for e in json.loads(run(
        "exceptions", "--db", serve_url.url, "--tenant", "who-cli", "--json",
        env=boot).stdout)["items"])
    r = run("resolve", first, "--db", serve_url.url, "--action", "mark_resolved_no_replay",
            "--notes", "dup", "--json", env=boot)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["actor"] == "admin"
    before = run("audit", "--db", serve_url.url, "--json", "--limit", "10000", env=boot).stdout
    r = run("resolve", second, "--db", serve_url.url, "--action", "mark_resolved_no_replay",
            "--actor", "alice", "--notes", "as alice", env=boot)
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "actor 'alice' is not the caller: this token is 'admin'" in r.stderr
    assert run("audit", "--db", serve_url.url, "--json", "--limit", "10000",
               env=boot).stdout == before
    olga = httpx.post(serve_url.url + "/v1/tokens", json={"name": "olga", "role": "operator"},
                      headers={"Authorization": f"Bearer {serve_url.token}"}).json()["token"]
    as_olga = {**boot, "OPSWB_API_TOKEN": olga}
    assert run("claim", second, "--db", serve_url.url, env=as_olga).returncode == 0
    shown = json.loads(run("show", second, "--db", serve_url.url, "--json", env=boot).stdout)
    assert (shown["status"], shown["assignee"]) == ("open", "olga")


def test_types_help_says_what_is_required(loaded):
    db, _ = loaded
    help_text = " ".join(run("types", "add", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "Who decides (default OPSWB_ACTOR, else the OS user" in help_text
    assert "Why (optional; audited)" in help_text and "Why (required)" not in help_text
    assert run("types", "add", "x.noted", "--db", db).returncode == 0  # the OS user decides
    assert opswb.connect(db).audit(limit=1)[0]["actor"] == getpass.getuser()
    assert run("types", "add", "x.named", "--actor", "ann", "--db", db).returncode == 0

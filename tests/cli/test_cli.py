"""The CLI as a user runs it: real subprocesses on a real store file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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
    assert "exceptions open" in run("health", "--db", db).stdout


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

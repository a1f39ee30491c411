"""`opswb groups`, `--group`, and the guard of a bulk by filter or group: real
subprocesses on a real store file."""

from __future__ import annotations

import json
import subprocess

import pytest

import opswb
from tests.cli.test_cli import OPSWB, run
from tests.helpers import dump_store, ev

NOTE = ("--actor", "ann", "--notes", "one cause")


@pytest.fixture
def grouped(tmp_path):
    db = str(tmp_path / "groups.duckdb")
    wb = opswb.connect(db)
    wb.ingest_batch([ev(f"u{i}", {"a": i}, "invoice.paid") for i in range(4)]
                    + [ev("k1", {"amount": 1}), ev("k1", {"amount": 2})])
    gid = next(g["group_id"] for g in wb.groups()["items"]
               if g["signature"] == "invoice.paid")
    return db, gid


def test_groups_json_is_the_api_answer(grouped):
    db, _ = grouped
    r = run("groups", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == opswb.connect(db).groups()
    r = run("groups", "--db", db, "--reason", "IDEMPOTENCY_CONFLICT")
    assert "/payload/amount" in r.stdout and "invoice.paid" not in r.stdout
    r = run("groups", "--db", db, "--reason", "NOPE")
    assert r.returncode == 1 and "invalid reason_code" in r.stderr


def test_exceptions_by_group(grouped):
    db, gid = grouped
    r = run("exceptions", "--db", db, "--group", gid, "--json")
    assert [e["idempotency_key"] for e in json.loads(r.stdout)["items"]] == [
        "u0", "u1", "u2", "u3"]
    r = run("exceptions", "--db", db, "--group", "bogus")
    assert r.returncode == 1 and "invalid group" in r.stderr


def test_dry_run_prints_the_plan_and_writes_nothing(grouped):
    db, gid = grouped
    before = dump_store(db)
    r = run("resolve", "--db", db, "--group", gid, "--action", "mark_resolved_no_replay",
            *NOTE, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["count"] == 4 and [s["would"] for s in plan["sample"]] == ["resolve"] * 4
    r = run("resolve", "--db", db, "--group", gid, "--action", "mark_resolved_no_replay",
            *NOTE, "--dry-run")
    assert "4 open exceptions match" in r.stdout
    ex_id = plan["sample"][0]["exception_id"]
    r = run("resolve", ex_id, "--db", db, "--action", "mark_resolved_no_replay", *NOTE,
            "--dry-run")
    assert r.returncode == 0 and "would apply" in r.stdout
    assert dump_store(db) == before


def test_a_bulk_by_group_needs_yes_without_a_terminal(grouped):
    db, gid = grouped
    before = dump_store(db)
    r = subprocess.run(OPSWB + ["resolve", "--db", db, "--group", gid, "--action",
                                "mark_resolved_no_replay", *NOTE],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       check=False)
    assert r.returncode == 1 and "--yes" in r.stderr
    assert dump_store(db) == before
    r = run("resolve", "--db", db, "--group", gid, "--action", "mark_resolved_no_replay",
            *NOTE, "--yes")
    assert r.returncode == 0, r.stderr
    assert "4 resolved" in r.stdout
    wb = opswb.connect(db)
    assert wb.list_exceptions(group=gid)["items"] == []
    assert wb.health()["exceptions_open"] == 1  # the conflict, in another group

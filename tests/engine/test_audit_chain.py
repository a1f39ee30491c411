"""The audit trail's hash chain (SPEC §15): ``opswb audit verify`` passes after the whole
operator loop and names the first entry changed, deleted or reordered in the file."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

import opswb
from tests.helpers import ev

P1, P2 = {"amount": 1}, {"amount": 2}


def verify(db: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opswb.cli", "audit", "verify", "--db", db],
                          capture_output=True, text=True, timeout=120, check=False)


def operator_loop(db: str) -> None:
    """Every kind of audited decision, embedded."""
    wb = opswb.connect(db)
    wb.ingest_batch([ev(k, p) for k in ("A", "B", "C", "D") for p in (P1, P2)])
    a, b, c, d = (e["exception_id"] for e in wb.list_exceptions()["items"])
    wb.resolve(a, "mark_resolved_no_replay", "ann", "duplicate")
    wb.resolve(b, "override_and_replay", "ann", "second is right")
    wb.reopen(a, "bob", "look again")
    wb.add_type("x.y", "acme", "ann", "new type")
    wb.remove_type("x.y", "acme", "ann", None)
    wb.add_token("olga", "operator", "root")
    wb.revoke_token("olga", "root")
    wb.set_policy("override_and_replay", None, "root")
    wb.resolve(c, "override_and_replay", "ann", "needs a look")
    wb.approve(c, "bob", "agreed")
    wb.resolve(d, "override_and_replay", "ann", "maybe")
    wb.reject(d, "bob", "no")
    wb.claim(d, "bob")
    wb.comment(d, "calling the customer <b>today</b>", "bob")
    wb.unclaim(d, "bob")
    wb.clear_policy("override_and_replay", None, "root")


@pytest.fixture
def looped(db_path) -> str:
    operator_loop(db_path)
    return db_path


def test_verify_passes_after_the_whole_operator_loop(store_url):
    operator_loop(store_url)
    r = verify(store_url)
    assert r.returncode == 0, r.stderr
    n = len(opswb.connect(store_url).audit(limit=10_000))
    assert f"audit chain intact: {n} entries verified" in r.stdout
    assert opswb.connect(store_url).verify_audit()["checked"] == n > 15


@pytest.mark.parametrize("sql,bad", [
    ("UPDATE audit_log SET notes = 'nothing to see' WHERE audit_id = 5", "5"),
    ("UPDATE audit_log SET tenant_id = 'globex' WHERE audit_id = 2", "2"),
    ("DELETE FROM audit_log WHERE audit_id = 4", "5"),
    ("DELETE FROM audit_log WHERE audit_id = (SELECT max(audit_id) FROM audit_log)",
     "newer entries were deleted"),
])
def test_verify_sees_changes_underneath_on_postgresql(pg_url, sql, bad):
    import psycopg

    opswb.connect(pg_url).init()
    operator_loop(pg_url)
    with psycopg.connect(pg_url) as con:
        con.execute(sql)
    r = verify(pg_url)
    assert r.returncode == 1
    assert bad in r.stderr, r.stderr


@pytest.mark.parametrize("sql,bad", [
    ("UPDATE audit_log SET notes = 'nothing to see' WHERE audit_id = 5", "5"),
    ("UPDATE audit_log SET actor = 'mallory' WHERE audit_id = 2", "2"),
    ("UPDATE audit_log SET created_at = created_at + INTERVAL 1 SECOND WHERE audit_id = 7",
     "7"),
    ("DELETE FROM audit_log WHERE audit_id = 4", "5"),
    (("UPDATE audit_log SET audit_id = CASE audit_id WHEN 3 THEN 6 ELSE 3 END"
     " WHERE audit_id IN (3, 6)"), "3"),
])
def test_verify_names_the_first_entry_changed_underneath(looped, sql, bad):
    con = duckdb.connect(looped)
    con.execute(sql)
    con.close()
    r = verify(looped)
    assert r.returncode == 1
    assert f"audit chain broken at entry {bad}:" in r.stderr, r.stderr


def test_verify_sees_the_newest_entries_deleted(looped):
    con = duckdb.connect(looped)
    last = con.execute("SELECT max(audit_id) FROM audit_log").fetchone()[0]
    con.execute("DELETE FROM audit_log WHERE audit_id = ?", [last])
    con.close()
    r = verify(looped)
    assert r.returncode == 1 and "newer entries were deleted" in r.stderr


def test_a_store_from_before_the_chain_chains_its_new_entries(db_path):
    wb = opswb.connect(db_path)
    wb.ingest_batch([ev("A", P1), ev("A", P2)])
    wb.resolve("1", "mark_resolved_no_replay", "ann", "dup")
    con = duckdb.connect(db_path)  # the store as schema 4 left it
    for table in ("api_tokens", "approval_policies", "exception_comments", "audit_chain"):
        con.execute(f"DROP TABLE {table}")
    for table, col in (("exceptions", "pending"), ("exceptions", "assignee"),
                       ("audit_log", "prev_hash"), ("audit_log", "entry_hash")):
        con.execute(f"ALTER TABLE {table} DROP COLUMN {col}")
    con.execute("DELETE FROM schema_version WHERE version = 7")
    con.close()
    again = subprocess.run([sys.executable, "-m", "opswb.cli", "reopen", "1", "--actor", "bob",
                            "--notes", "again", "--db", db_path], capture_output=True,
                           text=True, timeout=120, check=False)  # a new process: it migrates the file
    assert again.returncode == 0, again.stderr
    r = verify(db_path)
    assert r.returncode == 0, r.stderr
    assert "1 entries verified; 1 entries written before the chain existed" in r.stdout
    con = duckdb.connect(db_path)
    con.execute("UPDATE audit_log SET notes = 'x' WHERE audit_id = 2")
    con.close()
    assert "broken at entry 2" in verify(db_path).stderr

"""The PostgreSQL store (SPEC §14) against a real server: the catalog is ready to
distribute by tenant, migrations are safe to race, a held store hears other processes'
commits, texts PostgreSQL cannot hold are stored exactly. Several writers at once:
``test_postgres_writers.py``."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

import opswb
from opswb.store import store_for
from opswb.store.postgres.store import PostgresStore

# Not tenant data: replicated to every node under Citus (docs/scale-out.md).
REFERENCE_TABLES = {"event_types", "ingest_ledger", "ingest_batches", "health_snapshots",
                    "schema_version", "api_tokens", "approval_policies", "audit_chain"}

OPSWB = [sys.executable, "-m", "opswb.cli"]


def test_a_postgresql_url_selects_the_postgres_store(pg_url):
    store = store_for(pg_url)
    assert isinstance(store, PostgresStore)
    with store.read() as db:
        assert db.health_figures()["raw_events"] == 0
        assert {t["event_type"] for t in db.allowed_types()} >= {"payment.captured"}


def test_no_key_or_constraint_blocks_distribution_by_tenant(pg_url):
    """What Citus requires of a table distributed by tenant_id, read from the live
    catalog: every primary key, unique constraint and unique index includes tenant_id
    (ours lead with it), tenant_id is NOT NULL, and no foreign key exists."""
    opswb.connect(pg_url).init()
    with psycopg.connect(pg_url) as con:
        tables = {r[0] for r in con.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        distributed = tables - REFERENCE_TABLES
        assert {"raw_events", "idempotency_keys", "exceptions", "deliveries",
                "audit_log"} <= distributed
        unique = con.execute("""
            SELECT c.relname, i.relname, array_agg(a.attname ORDER BY k.ord)
            FROM pg_index x
            JOIN pg_class c ON c.oid = x.indrelid
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
            WHERE x.indisunique GROUP BY c.relname, i.relname""").fetchall()
        blocking = [(t, i, cols) for t, i, cols in unique
                    if t in distributed and "tenant_id" not in cols]
        assert not blocking, f"unique indexes without tenant_id: {blocking}"
        not_leading = [(t, i, cols) for t, i, cols in unique
                       if t in distributed and cols[0] != "tenant_id"]
        assert not not_leading, f"unique indexes not led by tenant_id: {not_leading}"
        assert {t for t, _, _ in unique} >= distributed  # every tenant table has a key
        nullable = con.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND column_name = 'tenant_id' AND is_nullable = 'YES'").fetchall()
        assert not [t for (t,) in nullable if t in distributed]
        fks = con.execute("SELECT conrelid::regclass::text, conname FROM pg_constraint"
                          " WHERE contype = 'f'").fetchall()
        assert not fks, f"foreign keys: {fks}"


def test_processes_migrating_at_once_apply_each_version_once(pg_url):
    code = "import sys; from opswb.store import store_for; store_for(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_url]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    with psycopg.connect(pg_url) as con:
        versions = [r[0] for r in con.execute("SELECT version FROM schema_version")]
        seeded = con.execute("SELECT count(*) FROM event_types").fetchone()[0]
    assert sorted(versions) == sorted(set(versions)) and versions
    assert seeded == len(opswb.store.seed.seed_rows())


def test_migrate_applies_every_version_not_recorded_even_below_the_highest(pg_url,
                                                                             monkeypatch):
    """A file numbered on a parallel branch (3 here) applies to a store that a
    later-numbered file (4) already reached; a recorded version is not applied again."""
    from opswb.store.postgres import store as pg_store

    store_for(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("INSERT INTO schema_version (version) VALUES (4)")
        real = pg_store.migrations()
        monkeypatch.setattr(pg_store, "migrations", lambda: sorted(
            [*real, (3, "CREATE TABLE branch_three (x int)"),
             (4, "CREATE TABLE branch_four (x int)")]))
        assert pg_store.migrate(con) == 4
        tables = {r[0] for r in con.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        versions = sorted(r[0] for r in con.execute("SELECT version FROM schema_version"))
    assert "branch_three" in tables and "branch_four" not in tables
    assert versions == [1, 2, 3, 4]


def test_a_held_store_hears_commits_of_other_processes_and_not_rollbacks(pg_url):
    """The commit signal of a server's store moves when another process commits a
    delivery (NOTIFY on commit, LISTEN in the store), not when it rolls back."""
    held = store_for(pg_url, held=True)
    try:
        signal = held.commit_signal()
        seen = signal.count
        other = PostgresStore(pg_url)
        with pytest.raises(RuntimeError), other.write() as db:
            db.add_replay_delivery("t", "k", 1, "payment.captured", "{}", "f", 1)
            raise RuntimeError("roll back")
        with other.write() as db:  # a commit after it: the next thing the signal hears
            db.write_audit(actor="ann", action="probe")
        assert signal.wait(seen, 60) == seen + 1
        seen = signal.count
        code = ("import sys, opswb; opswb.connect(sys.argv[1]).ingest_batch("
                "[{'tenant_id': 't', 'idempotency_key': 'k', 'event_type':"
                " 'payment.captured', 'payload': {}}])")
        subprocess.run([sys.executable, "-c", code, pg_url], check=True, timeout=120)
        assert signal.wait(seen, 60) != seen
    finally:
        held.close()
    assert signal.closed

def test_texts_postgresql_text_cannot_hold_are_stored_exactly(pg_url, db_path, tmp_path):
    """A raw NUL byte, bytes that are not UTF-8 and a NUL escape in a payload: stored and
    shown exactly as the DuckDB store shows them, not refused as a server error."""
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b'{"a":"x\x00y"}\nabc\x00\n\xff\xfe\n{"tenant_id":"acme",'
                     b'"idempotency_key":"n","event_type":"payment.captured",'
                     b'"payload":{"s":"a\\u0000b"}}\n')

    def shown(url: str) -> dict:
        wb = opswb.connect(url)
        summary = wb.ingest(str(path))
        texts = [wb.exception(e["exception_id"])["raw"]["text"]
                 for e in wb.list_exceptions()["items"]]
        return {"summary": summary, "texts": texts,
                "payload": wb.key("acme", "n")["arrivals"][0]["payload"]}

    on_pg = shown(pg_url)
    assert on_pg == shown(db_path)
    assert on_pg["texts"][:2] == ['{"a":"x\x00y"}', "abc\x00"]
    assert on_pg["payload"] == {"s": "a\x00b"}


def test_a_lookup_with_text_postgresql_cannot_hold_is_an_answer_not_an_error(pg_url):
    """A NUL or a lone surrogate in a looked-up id is bound as the stored text maps it
    (U+FFFD): the lookup finds nothing here, as on DuckDB, instead of failing."""
    import opswb

    wb = opswb.connect(pg_url)
    wb.init()
    for bad in ("a\x00b", "a\udc80b"):
        with pytest.raises(opswb.NotFound):
            wb.key(bad, "k")
        assert wb.list_exceptions(tenant_id=bad)["items"] == []
        assert wb.audit(actor=bad) == []


def test_failure_groups_have_the_same_ids_on_both_stores(pg_url, tmp_path):
    """A group's id and signature come out the same on DuckDB (SQL) and PostgreSQL
    (Python): one link names one group whichever store answers."""
    from tests.helpers import ev

    arrivals = [ev("c1", {"amount": 1, "x": {"é": 1}}), ev("c1", {"amount": 2, "y": 1}),
                ev("c2", {"amount": 1}), ev("c2", {"amount": 3}),
                ev("u1", event_type="thing.unheard_of"),
                {"tenant_id": "acme", "idempotency_key": "bad"}, {"event_type": 5}]
    answers = []
    for target in (str(tmp_path / "groups.duckdb"), pg_url):
        wb = opswb.connect(target)
        wb.init()
        wb.ingest_batch(arrivals)
        answers.append(sorted((g["group_id"], json.dumps(g["signature"]), g["count"])
                              for g in wb.groups()["items"]))
    assert len(answers[0]) >= 3
    assert answers[0] == answers[1]
    # Schema 2's backfill of exceptions stored before it gives the same text.
    from opswb.store.postgres.store import migrations

    sql = dict(migrations())[2]
    backfill = [s for s in sql.split(";") if "UPDATE exceptions SET" in s]
    with psycopg.connect(pg_url) as con:
        before = con.execute("SELECT exception_id, signature, group_id FROM exceptions"
                             " ORDER BY 1").fetchall()
        con.execute("UPDATE exceptions SET signature = NULL, group_id = NULL")
        for statement in backfill:
            con.execute(statement)
        after = con.execute("SELECT exception_id, signature, group_id FROM exceptions"
                            " ORDER BY 1").fetchall()
    assert len(backfill) == 2 and after == before


def test_a_new_key_stored_by_another_writer_meanwhile_is_classified_again(pg_url):
    """A chunk's new key is written once, at the end of its classification; when another
    transaction stores the same key first, the chunk waits for its commit, then is
    classified again from its savepoint and sees the key stored: one key record, the
    second payload an IDEMPOTENCY_CONFLICT, nothing stored twice."""
    import threading
    import time

    from opswb.core.envelope import stage_row
    from tests.helpers import ev

    opswb.connect(pg_url).init()
    store = PostgresStore(pg_url)
    stored, go = threading.Event(), threading.Event()

    def first_writer():
        with store.write_chunk() as db:
            db.store_arrivals([stage_row(json.dumps(ev("K", {"a": 1})))], "first")
            stored.set()
            go.wait(60)

    holder = threading.Thread(target=first_writer)
    holder.start()
    assert stored.wait(60)
    second: dict = {}
    racer = threading.Thread(target=lambda: second.update(
        opswb.connect(pg_url).ingest([ev("K", {"a": 2}), ev("L", {"a": 3})])))
    racer.start()
    with psycopg.connect(pg_url, autocommit=True) as watch:
        for _ in range(600):  # until the second writer waits on the first one's key
            if watch.execute("SELECT count(*) FROM pg_stat_activity"
                             " WHERE wait_event_type = 'Lock'").fetchone()[0]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the second writer never waited for the key")
    go.set()
    holder.join(60)
    racer.join(60)
    assert {k: second[k] for k in ("received", "processed", "exceptions_opened")} == \
        {"received": 2, "processed": 1, "exceptions_opened": 1}
    wb = opswb.connect(pg_url)
    assert wb.health()["idempotency"] == {"processed": 1, "quarantined": 1, "ignored": 0}
    [item] = wb.list_exceptions()["items"]
    assert item["reason_code"] == "IDEMPOTENCY_CONFLICT"
    with psycopg.connect(pg_url) as con:
        assert con.execute("SELECT arrival_count FROM idempotency_keys WHERE"
                           " idempotency_key = 'K'").fetchall() == [(2,)]
    store.close()

"""``opswb copy`` (SPEC §14): a whole store between backends, audit trail included.

One store after the whole operator loop is copied DuckDB → PostgreSQL → DuckDB; every
answer of the workbench is the same on each copy, and the audit chain verifies on each.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import opswb
from opswb.cli.commands import app
from tests.helpers import dump_store, ev, write_jsonl

P1, P2 = {"amount": 1}, {"amount": 2}
REPLAY, NO_REPLAY = "override_and_replay", "mark_resolved_no_replay"


def _operator_loop(wb, tmp_path) -> None:
    """Ingest with duplicates, conflicts, unknown types and invalid lines; resolve by
    each action; reopen; four eyes; claim; comments; tokens; snapshots."""
    wb.ingest(str(write_jsonl(tmp_path / "day1.jsonl", [
        ev("A", P1), ev("A", P1), ev("B", P1), ev("B", P2), ev("B", {"amount": 3}),
        ev("C", P1, event_type="refund.weird"), ev("D", P1, tenant="globex"),
        ev("D", P2, tenant="globex"), '{"tenant_id": "acme", "broken',
        {"tenant_id": "acme", "idempotency_key": "E", "payload": {}},
        "x\u00e9\u2603 not json", "a NUL \x00 PostgreSQL text cannot hold",
        ev("F", P1), ev("F", P2)])))
    wb.ingest_batch([ev("G", P1), ev("G", P2), ev("A", P1)], batch_id="b-1")
    ids = {(e["idempotency_key"], e["reason_code"]): e["exception_id"]
           for e in wb.list_exceptions(status="all", limit=None)["items"]}
    b, c, d = ids[("B", "IDEMPOTENCY_CONFLICT")], ids[("C", "UNKNOWN_EVENT_TYPE")], \
        ids[("D", "IDEMPOTENCY_CONFLICT")]
    invalid = [e for e in wb.list_exceptions(status="all", limit=None)["items"]
               if e["reason_code"] == "INVALID_EVENT"]
    b_raws = wb.exception(b)["arrivals"]
    wb.resolve(b, REPLAY, "ann", "take the first", canonical_raw_id=b_raws[0]["raw_id"],
               override_patch={"payload": {"note": "fixed"}})
    wb.resolve(c, NO_REPLAY, "ann", "later")
    wb.add_type("refund.weird", "acme", "root", "supported now")
    wb.reopen(c, "bob", "backlog")
    wb.resolve(c, REPLAY, "bob", "replay it now")
    wb.resolve(invalid[1]["exception_id"], REPLAY, "ann", "fill the type",
               override_patch={"event_type": "payment.captured"})
    wb.set_policy(REPLAY, "globex", "root")
    wb.resolve(d, REPLAY, "ann", "take LAST")  # a proposal (four eyes)
    wb.approve(d, "carl", "agreed")
    f, g = ids[("F", "IDEMPOTENCY_CONFLICT")], ids[("G", "IDEMPOTENCY_CONFLICT")]
    wb.set_policy(REPLAY, "acme", "root")
    wb.resolve(f, REPLAY, "ann", "pending one")  # left pending
    wb.claim(g, "bob")
    wb.comment(g, "looking into it \u2603", "bob")
    wb.comment(g, "second thought", "ann")
    wb.remove_type("order.created", None, "root", "retired")
    wb.add_token("ci", "operator", "root")
    wb.record_snapshot()
    wb.ingest_batch([ev("H", P1)], batch_id="b-2")
    wb.record_snapshot()


def _answers(wb) -> dict:
    """What the workbench answers about a store: health, the queue, each exception's
    detail, groups, keys' deliveries, the outbox, audit, allowlist, policies, tokens."""
    items = wb.list_exceptions(status="all", limit=None)["items"]
    return {
        "health": {k: v for k, v in wb.health().items() if k != "oldest_open_age_seconds"},
        "open": wb.list_exceptions()["items"],
        "queue": items,
        "details": [wb.exception(e["exception_id"]) for e in items],
        "groups": wb.groups(status=None),
        "deliveries": wb.deliveries(limit=1000),
        "audit": wb.audit(limit=1000),
        "types": wb.types(),
        "policies": wb.policies(),
        "tokens": wb.tokens(),
        "snapshots": wb.snapshots(),
    }


@pytest.fixture(scope="module")
def looped(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("copy")
    path = str(tmp / "source.duckdb")
    wb = opswb.connect(path)
    _operator_loop(wb, tmp)
    return path, _answers(wb)


def test_duckdb_to_postgresql_to_duckdb_answers_the_same(looped, pg_url, tmp_path):
    source, before = looped
    back = str(tmp_path / "back.duckdb")
    counts = opswb.copy(source, pg_url)
    assert counts["raw_events"] == before["health"]["raw_events"]
    opswb.copy(pg_url, back)
    for target in (pg_url, back):
        wb = opswb.connect(target)
        assert _answers(wb) == before, target
        assert wb.verify_audit()["ok"] is True
        assert wb.verify_audit()["checked"] == len(before["audit"])
    # The exact text of each raw survives both hops (a line that was not JSON too).
    raws = [r for d in before["details"] for r in d.get("arrivals", [])]
    texts = {r["raw_id"]: r.get("text") for r in raws}
    wb = opswb.connect(back)
    assert {r["raw_id"]: r.get("text") for d in _answers(wb)["details"]
            for r in d.get("arrivals", [])} == texts


def test_the_copy_goes_on_as_a_store_with_new_ids(looped, tmp_path):
    source, before = looped
    copy = str(tmp_path / "copy.duckdb")
    opswb.copy(source, copy)
    wb = opswb.connect(copy)
    summary = wb.ingest_batch([ev("Z", P1), ev("Z", P2)])
    new = wb.list_exceptions(idempotency_key="Z")["items"][0]
    assert int(new["exception_id"]) > max(int(e["exception_id"]) for e in before["queue"])
    assert summary["exceptions_opened"] == 1
    wb.resolve(new["exception_id"], NO_REPLAY, "ann", "after the copy")
    assert wb.verify_audit()["ok"] is True


def test_cli_copy_and_audit_verify_on_the_destination(looped, pg_url):
    source, before = looped
    runner = CliRunner()
    result = runner.invoke(app, ["copy", "--from", source, "--to", pg_url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["copied"]["audit_log"] == len(before["audit"])
    verify = runner.invoke(app, ["audit", "verify", "--db", pg_url])
    assert verify.exit_code == 0, verify.output


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_a_copy_into_a_store_holding_anything_is_refused_and_changes_nothing(
        looped, kind, tmp_path, request):
    source, _ = looped
    target = (request.getfixturevalue("pg_url") if kind == "postgres"
              else str(tmp_path / "busy.duckdb"))
    wb = opswb.connect(target)
    wb.ingest_batch([ev("X", P1)])
    before = dump_store(target)
    result = CliRunner().invoke(app, ["copy", "--from", source, "--to", target])
    assert result.exit_code == 1
    assert "is not empty (it holds raw_events" in result.output
    assert dump_store(target) == before


def test_a_copy_needs_an_existing_source_and_two_stores(tmp_path, db_path):
    with pytest.raises(opswb.InvalidRequest, match="no store at"):
        opswb.copy(str(tmp_path / "nothing.duckdb"), str(tmp_path / "to.duckdb"))
    assert not (tmp_path / "to.duckdb").exists()
    with pytest.raises(opswb.InvalidRequest, match="onto itself"):
        opswb.copy(db_path, db_path)
    with pytest.raises(opswb.InvalidRequest, match="opswb serve URL"):
        opswb.copy(db_path, "http://127.0.0.1:1")

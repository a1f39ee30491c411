"""Issue 6: decision analytics, suggested rules, read-only analyst views, exports, triage
notebook (papermill, real kernel)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import opswb
from opswb.analysis import decisions as analytics
from opswb.store.duckdb import views
from tests.helpers import dump_store, ev

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample_events.jsonl"
RULE_SENTENCE = "acme / billing-api: LAST chosen in 9 of 10 conflicts"


def _pay(amount: int, currency: str = "EUR") -> dict:
    return {"amount": amount, "currency": currency, "customer_id": "c_19"}


def build_history(wb) -> None:
    """A store whose decision history suggests one rule, with bystanders it must not touch.

    acme/billing-api: 10 past conflicts (9 LAST chosen, 1 ignored), 3 open.
    acme/erp-sync: 3 conflicts resolved LAST + a patch upper-casing the currency, 1 open.
    globex/billing-api: 1 open conflict. Unknown types: invoice.paid (globex ×2, acme ×1),
    payout.settled (acme ×1).
    """
    firsts, lasts = [], []
    for i in range(13):
        firsts.append(ev(f"B{i}", _pay(100), source="billing-api"))
        lasts.append(ev(f"B{i}", _pay(150), source="billing-api"))
    for i in range(4):
        firsts.append(ev(f"E{i}", _pay(10), source="erp-sync"))
        lasts.append(ev(f"E{i}", _pay(11, "eur"), source="erp-sync"))
    firsts.append(ev("G0", _pay(7), tenant="globex", source="billing-api"))
    lasts.append(ev("G0", _pay(8), tenant="globex", source="billing-api"))
    unknown = [ev("U0", _pay(1), "invoice.paid", tenant="globex", source="erp-sync"),
               ev("U1", _pay(2), "invoice.paid", tenant="globex", source="erp-sync"),
               ev("U2", _pay(3), "invoice.paid", source="erp-sync"),
               ev("U3", _pay(4), "payout.settled", source="partner-webhook")]
    wb.ingest(firsts + unknown)
    wb.ingest(lasts)
    ids = {e["idempotency_key"]: e["exception_id"]
           for e in wb.list_exceptions(limit=None)["items"]}
    for i in range(9):
        last = wb.exception(ids[f"B{i}"])["last"]["raw_id"]
        wb.resolve(ids[f"B{i}"], action="override_and_replay", actor="ann",
                   resolution_notes="LAST is the corrected amount", canonical_raw_id=last)
    wb.resolve(ids["B9"], action="mark_resolved_no_replay", actor="ann",
               resolution_notes="test traffic")
    for i in range(3):
        last = wb.exception(ids[f"E{i}"])["last"]["raw_id"]
        wb.resolve(ids[f"E{i}"], action="override_and_replay", actor="bob",
                   resolution_notes="currency must be upper-case", canonical_raw_id=last,
                   override_patch={"payload": {"currency": "EUR"}})


@pytest.fixture(scope="module")
def history_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("history") / "history.duckdb"
    build_history(opswb.connect(str(path)))
    return path


@pytest.fixture
def wb(history_template, tmp_path):
    """A fresh copy of the history store (tests resolve things in it)."""
    path = tmp_path / "opswb.duckdb"
    shutil.copy(history_template, path)
    return opswb.connect(str(path))


def _open_ids(wb, **filters) -> list[str]:
    return [e["exception_id"] for e in wb.list_exceptions(limit=None, **filters)["items"]]


# ---- decisions and suggested rules -------------------------------------------------------

def test_decisions_view_classifies_each_resolution(wb):
    df = views.run_sql(wb, "SELECT tenant_id, source, decision, count(*) AS n FROM decisions"
                           " GROUP BY ALL ORDER BY ALL")
    got = {(r.tenant_id, r.source, r.decision): r.n for r in df.itertuples()}
    assert got == {("acme", "billing-api", "LAST chosen"): 9,
                   ("acme", "billing-api", "ignored"): 1,
                   ("acme", "erp-sync", "patched"): 3}


def test_decision_summary_counts_and_open_matches(wb):
    s = analytics.decision_summary(wb).set_index(["tenant_id", "source", "reason_code"])
    row = s.loc[("acme", "billing-api", "IDEMPOTENCY_CONFLICT")]
    assert (row.decisions, row.last_chosen, row.ignored, row.first_kept) == (10, 9, 1, 0)
    assert (row.top_decision, row.share, row.open_matching) == ("LAST chosen", 0.9, 3)
    erp = s.loc[("acme", "erp-sync", "IDEMPOTENCY_CONFLICT")]
    assert (erp.patched, erp.open_matching) == (3, 1)


def test_suggested_rules_name_the_stable_decision(wb):
    rules = analytics.suggest_rules(wb, min_decisions=5, min_share=0.9)
    assert list(rules["rule"]) == [RULE_SENTENCE]
    rule = rules.iloc[0]
    assert (rule.decision, rule.agreeing, rule.decisions, rule.open_matching) == \
        ("LAST chosen", 9, 10, 3)
    # A stricter bar, or too little history, suggests nothing.
    assert analytics.suggest_rules(wb, min_share=0.95).empty
    assert analytics.suggest_rules(wb, min_decisions=11).empty


def test_applying_a_rule_resolves_exactly_the_matching_open_exceptions(wb):
    matching = _open_ids(wb, tenant_id="acme", source="billing-api")
    assert len(matching) == 3
    lasts = {i: wb.exception(i)["last"]["raw_id"] for i in matching}
    bystanders = {e["exception_id"]: e for e in wb.list_exceptions(limit=None)["items"]
                  if e["exception_id"] not in matching}
    audit_before = len(wb.audit(limit=10_000))
    rule = analytics.suggest_rules(wb).iloc[0]

    out = analytics.apply_rule(wb, rule, actor="carol", notes="agreed with billing team")

    assert sorted(r["exception_id"] for r in out["results"]) == sorted(matching)
    assert {r["status"] for r in out["results"]} == {"resolved"}
    for ex_id in matching:
        detail = wb.exception(ex_id)
        assert detail["status"] == "resolved"
        assert detail["canonical_raw_id"] == lasts[ex_id]  # each its own LAST
        assert detail["deliveries"][-1]["payload"]["amount"] == 150
        entries = wb.audit(exception_id=ex_id)
        assert len(entries) == 1
        assert entries[0]["actor"] == "carol"
        assert rule.rule_id in entries[0]["notes"] and RULE_SENTENCE in entries[0]["notes"]
        assert "agreed with billing team" in entries[0]["notes"]
    assert len(wb.audit(limit=10_000)) == audit_before + 3
    after = {e["exception_id"]: e for e in wb.list_exceptions(limit=None)["items"]}
    assert after == bystanders  # nothing else resolved or changed
    # Applied once, the rule has nothing left to match.
    assert analytics.apply_rule(wb, rule, actor="carol")["results"] == []


def test_apply_rule_first_kept_and_ignored(wb):
    first_ids = _open_ids(wb, tenant_id="globex", reason_code="IDEMPOTENCY_CONFLICT")
    first_raw = wb.exception(first_ids[0])["first"]["raw_id"]
    out = analytics.apply_rule(wb, {"tenant_id": "globex", "source": "billing-api",
                                    "reason_code": "IDEMPOTENCY_CONFLICT",
                                    "decision": "FIRST kept"}, actor="dan")
    assert [r["exception_id"] for r in out["results"]] == first_ids
    detail = wb.exception(first_ids[0])
    assert detail["canonical_raw_id"] == first_raw
    assert detail["deliveries"][-1]["payload"]["amount"] == 7
    assert "globex/billing-api/IDEMPOTENCY_CONFLICT/first-kept" in detail["resolution_notes"]

    out = analytics.apply_rule(wb, {"tenant_id": "acme", "source": "erp-sync",
                                    "reason_code": "IDEMPOTENCY_CONFLICT",
                                    "decision": "ignored"}, actor="dan")
    (res,) = out["results"]
    assert wb.exception(res["exception_id"])["action"] == "mark_resolved_no_replay"


@pytest.mark.parametrize("rule, actor", [
    ({"tenant_id": "acme", "source": "erp-sync", "reason_code": "IDEMPOTENCY_CONFLICT",
      "decision": "patched"}, "ann"),
    ({"tenant_id": "acme", "source": "billing-api", "reason_code": "IDEMPOTENCY_CONFLICT",
      "decision": "LAST chosen"}, "   "),
])
def test_apply_rule_refusals_change_nothing(wb, rule, actor):
    before = dump_store(wb.db)
    with pytest.raises(opswb.InvalidRequest):
        analytics.apply_rule(wb, rule, actor=actor)
    assert dump_store(wb.db) == before


# ---- unknown types and override learnings --------------------------------------------------

def test_unknown_types_frequency_tenants_and_seen(wb):
    df = analytics.unknown_types(wb).set_index("event_type")
    assert list(df.index) == ["invoice.paid", "payout.settled"]
    paid = df.loc["invoice.paid"]
    assert (paid.arrivals, paid.distinct_keys, paid.tenants, paid.open_exceptions) == \
        (3, 3, "acme, globex", 3)
    assert paid.first_seen <= paid.last_seen
    assert pd.isna(paid.allowed_for)


def test_allow_type_and_replay_is_one_audited_step(wb):
    globex = _open_ids(wb, tenant_id="globex", reason_code="UNKNOWN_EVENT_TYPE")
    acme_open = _open_ids(wb, tenant_id="acme", reason_code="UNKNOWN_EVENT_TYPE")
    out = analytics.allow_type_and_replay(wb, "invoice.paid", "globex", actor="erin",
                                          notes="new billing event, agreed with finance")
    assert out["type"]["allowed"] is True
    assert sorted(r["exception_id"] for r in out["results"]) == sorted(globex)
    assert {r["status"] for r in out["results"]} == {"resolved"}
    assert _open_ids(wb, tenant_id="acme", reason_code="UNKNOWN_EVENT_TYPE") == acme_open
    trail = wb.audit(actor="erin")
    assert sorted(e["action"] for e in trail) == \
        ["override_and_replay", "override_and_replay", "types.add"]
    assert analytics.unknown_types(wb).set_index("event_type").loc[
        "invoice.paid", "allowed_for"] == "globex"


def test_override_learnings_propose_a_source_validation(wb):
    df = analytics.override_learnings(wb)
    (row,) = df.itertuples()
    assert (row.path, row.tenant_id, row.source, row.patched) == \
        ("/payload/currency", "acme", "erp-sync", 3)
    assert row.suggested_rule == "validate currency is ISO-4217 upper-case at source"
    assert row.learning == ("/payload/currency patched 3× for acme/erp-sync: "
                            "validate currency is ISO-4217 upper-case at source")
    assert row.examples == '"eur" → "EUR"'


def test_override_learnings_skip_what_a_patch_left_as_it_was(wb):
    ex_id = analytics_open_id(wb, "E3")
    last = wb.exception(ex_id)["last"]["raw_id"]
    wb.resolve(ex_id, action="override_and_replay", actor="bob",
               resolution_notes="currency must be upper-case", canonical_raw_id=last,
               override_patch={"payload": {"currency": "EUR", "amount": 11, "gone": None}})
    df = analytics.override_learnings(wb)
    assert list(df["path"]) == ["/payload/currency"]  # amount was 11 already, gone absent
    assert df["patched"].tolist() == [4]


def analytics_open_id(wb, key: str) -> str:
    return next(e["exception_id"] for e in wb.list_exceptions(limit=None)["items"]
                if e["idempotency_key"] == key)


# ---- the analyst views are read-only -------------------------------------------------------

WRITES = [
    "UPDATE exceptions SET status = 'resolved'",
    "DELETE FROM arrivals",
    "INSERT INTO audit_log (audit_id) VALUES (999)",
    "UPDATE opswb.main.exceptions SET status = 'resolved'",
    "CREATE TABLE notes AS SELECT 1",
    "DROP TABLE raw_events",
    "COPY exceptions TO 'leak.csv'",
    "SELECT 1; DELETE FROM raw_events",
]


@pytest.mark.parametrize("sql", WRITES)
def test_views_refuse_writes_and_change_nothing(wb, sql):
    before, digest = dump_store(wb.db), hashlib.sha256(Path(wb.db).read_bytes()).hexdigest()
    with pytest.raises(opswb.InvalidRequest) as err:
        views.run_sql(wb, sql)
    assert "read-only" in str(err.value) or "exactly one SELECT" in str(err.value)
    assert dump_store(wb.db) == before
    assert hashlib.sha256(Path(wb.db).read_bytes()).hexdigest() == digest


def test_views_answer_selects_and_document_themselves(wb):
    assert set(views.describe_views()["view"]) == {
        "arrivals", "keys", "exceptions", "deliveries", "audit", "types", "decisions"}
    n = views.run_sql(wb, "SELECT count(*) AS n FROM exceptions WHERE status = ?", ["open"])
    assert n["n"][0] == len(_open_ids(wb))
    assert len(views.Views(wb).keys(limit=None)) == 22
    # The file is closed again: a writer gets straight in.
    wb.resolve(_open_ids(wb)[0], action="mark_resolved_no_replay", actor="a",
               resolution_notes="n")


def test_remote_workbench_sql_is_local_only():
    pytest.importorskip("opswb.workbench.remote")
    remote = opswb.connect("http://127.0.0.1:9", token="t")
    with pytest.raises(opswb.LocalOnly, match="need the store file"):
        views.run_sql(remote, "SELECT 1")


# ---- exports ----------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_exports_round_trip(wb, tmp_path, ext):
    queue = wb.exceptions(tenant_id="acme")
    out = analytics.export_queue(wb, tmp_path / f"queue.{ext}", tenant_id="acme")
    back = pd.read_csv(out["path"], dtype=str) if ext == "csv" else pd.read_parquet(out["path"])
    assert out["rows"] == len(queue) == len(back) == 6
    assert list(back["exception_id"].astype(str)) == list(queue["exception_id"])
    assert [json.loads(d) for d in back["details"]] == list(queue["details"])

    dec = analytics.export_decisions(wb, tmp_path / f"decisions.{ext}")
    back = pd.read_csv(dec["path"]) if ext == "csv" else pd.read_parquet(dec["path"])
    assert dec["rows"] == len(back) == 13
    assert back["decision"].value_counts().to_dict() == {
        "LAST chosen": 9, "patched": 3, "ignored": 1}


def test_export_refuses_unknown_format(wb, tmp_path):
    with pytest.raises(opswb.InvalidRequest, match="csv or .parquet"):
        analytics.export_queue(wb, tmp_path / "queue.xlsx")


# ---- the triage notebook runs end to end ---------------------------------------------------

@pytest.mark.slow
def test_triage_notebook_runs_with_papermill(history_template, tmp_path):
    db = tmp_path / "triage.duckdb"
    shutil.copy(history_template, db)
    if SAMPLE.exists():
        opswb.connect(str(db)).ingest(str(SAMPLE))
    out = tmp_path / "triage-out.ipynb"
    proc = subprocess.run(
        [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "triage.ipynb"),
         str(out), "-p", "db", str(db), "--cwd", str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "\n".join("".join(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert RULE_SENTENCE in text and "invoice.paid" in text
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in outputs)


def test_on_postgresql_analytics_say_to_read_a_copy_and_read_it(pg_url):
    from opswb.analysis import history_copy, run_sql

    wb = opswb.connect(pg_url)
    wb.ingest_batch([{"tenant_id": "acme", "idempotency_key": "u1", "event_type": "invoice.paid",
                      "payload": {}}])
    with pytest.raises(opswb.LocalOnly, match="history_copy"):
        run_sql(wb, "SELECT 1")
    copy = history_copy(wb)
    assert copy.endswith(".duckdb")
    assert analytics.unknown_types(copy)["event_type"].tolist() == ["invoice.paid"]
    assert history_copy(opswb.connect(copy)).db == copy  # a file is read as it is

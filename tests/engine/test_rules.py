"""SPEC §5: every row of the arrival table, as one parametrized table, plus batches."""

from __future__ import annotations

import pytest

import opswb
from tests.helpers import ev, write_jsonl

P1 = {"amount": 1200, "currency": "EUR", "customer": {"id": "c_19", "tier": "gold"}}
P1_REORDERED = {"customer": {"tier": "gold", "id": "c_19"}, "currency": "EUR",
                "amount": 1200.0}
P2 = {"amount": 1250, "currency": "EUR", "customer": {"id": "c_19", "tier": "gold"}}
P3 = {"amount": 1200, "currency": "EUR", "customer": {"id": "c_19", "tier": "silver"}}


def _before(wb, state: str, key: str) -> None:
    """Bring ``key`` of tenant acme into ``state``."""
    if state == "none":
        return
    wb.ingest([ev(key, P1)])
    if state in ("quarantined", "ignored"):
        wb.ingest([ev(key, P2)])
    if state == "ignored":
        ex = wb.list_exceptions(idempotency_key=key)["items"][0]
        wb.resolve(ex["exception_id"], action="mark_resolved_no_replay", actor="t",
                   resolution_notes="setup")


# (row, before, arrival, bucket, key state after, reason opened or None)
RULES = [
    ("1", "none", ev("K", P1), "processed", "processed", None),
    ("2", "none", ev("K", P1, "payment.chargeback"), "exceptions_opened", "quarantined",
     "UNKNOWN_EVENT_TYPE"),
    ("3 exact copy", "processed", ev("K", P1), "duplicates", "processed", None),
    ("3 key order, 1200.0, source, occurred_at", "processed",
     ev("K", P1_REORDERED, source="retry-bot", occurred_at="2026-11-28T00:00:00Z"),
     "duplicates", "processed", None),
    ("3 ignored, adjudicated", "ignored", ev("K", P2), "duplicates", "ignored", None),
    ("4 processed, new fingerprint", "processed", ev("K", P3), "exceptions_opened",
     "quarantined", "IDEMPOTENCY_CONFLICT"),
    ("4 ignored, new fingerprint", "ignored", ev("K", P3), "exceptions_opened",
     "quarantined", "IDEMPOTENCY_CONFLICT"),
    ("4 conflict and unknown type", "processed", ev("K", P1, "invoice.paid"),
     "exceptions_opened", "quarantined", "IDEMPOTENCY_CONFLICT"),
    ("5 exact copy attaches", "quarantined", ev("K", P1), "attached", "quarantined", None),
    ("5 new payload attaches", "quarantined", ev("K", P3), "attached", "quarantined", None),
    ("6 missing payload", "none", {"tenant_id": "acme", "idempotency_key": "K",
                                   "event_type": "payment.captured"},
     "exceptions_opened", None, "INVALID_EVENT"),
    ("6 wins over 5", "quarantined", {"tenant_id": "acme", "idempotency_key": "K",
                                      "event_type": "payment.captured", "payload": [1]},
     "exceptions_opened", "quarantined", "INVALID_EVENT"),
    ("6 not JSON", "processed", "{not json", "exceptions_opened", "processed",
     "INVALID_EVENT"),
]


@pytest.mark.parametrize("row,before,arrival,bucket,state_after,reason", RULES,
                         ids=[r[0] for r in RULES])
def test_arrival_rule(wb, tmp_path, row, before, arrival, bucket, state_after, reason):
    _before(wb, before, "K")
    open_before = wb.list_exceptions(status="all", limit=None)["items"]
    key_before = _key_record(wb)
    if isinstance(arrival, str):
        summary = wb.ingest(str(write_jsonl(tmp_path / "in.jsonl", [arrival])))
    else:
        summary = wb.ingest([arrival])

    assert summary["received"] == 1
    assert summary[bucket] == 1, summary
    after = wb.list_exceptions(status="all", limit=None)["items"]
    opened = [e for e in after if e["exception_id"] not in
              {x["exception_id"] for x in open_before}]
    assert [e["reason_code"] for e in opened] == ([reason] if reason else [])
    key_after = _key_record(wb)
    assert (key_after or {}).get("state") == state_after
    if reason == "INVALID_EVENT":
        # Row 6 never creates, changes or attaches to a key record.
        assert key_after == key_before
    if bucket == "attached":
        quarantining = [e for e in after if e["reason_code"] != "INVALID_EVENT"
                        and e["status"] == "open"]
        assert len(quarantining) == 1
        detail = wb.exception(quarantining[0]["exception_id"])
        assert detail["arrivals"][-1]["raw_id"] == key_after["last_raw_id"]
    if row.startswith("4 conflict and unknown"):
        assert opened[0]["details"]["also_unknown_event_type"] == "invoice.paid"
    if row == "1":
        assert key_after["delivery_count"] == 1
        assert len(wb.key("acme", "K")["deliveries"]) == 1


def _key_record(wb):
    try:
        return wb.key("acme", "K")["events_processed"]
    except opswb.NotFound:
        return None


BATCH = [ev("B", P1), ev("B", P1_REORDERED), ev("B", P2), ev("B", P1), ev("B", P3),
         ev("C", P1, "weird.type"), ev("C", P1), "not json", ev("D", P1)]


def test_rules_apply_in_arrival_order_within_one_batch(wb, tmp_path):
    summary = wb.ingest(str(write_jsonl(tmp_path / "batch.jsonl", BATCH)))
    assert summary == {"received": 9, "processed": 2, "duplicates": 1,
                       "exceptions_opened": 3, "attached": 3, "skipped_files": []}
    items = wb.list_exceptions(limit=None)["items"]
    assert [e["reason_code"] for e in items] == [
        "IDEMPOTENCY_CONFLICT", "UNKNOWN_EVENT_TYPE", "INVALID_EVENT"]
    conflict = wb.exception(items[0]["exception_id"])
    assert conflict["first"]["payload"] == P1
    assert conflict["last"]["payload"] == P3          # latest attached that differs
    assert conflict["diff"]["changed"] == [
        {"path": "/payload/customer/tier", "first": "gold", "last": "silver"}]
    assert [a["raw_id"] for a in conflict["arrivals"]] == ["1", "2", "3", "4", "5"]
    assert conflict["events_processed"]["arrival_count"] == 5
    assert conflict["events_processed"]["delivery_count"] == 1
    h = wb.health()
    assert h["idempotency"] == {"processed": 1, "quarantined": 2, "ignored": 0}
    assert h["raw_events"] == 9


def test_same_batch_split_over_chunks_gives_the_same_result(wb, tmp_path, monkeypatch):
    monkeypatch.setenv("OPSWB_CHUNK_ROWS", "2")
    if getattr(wb, "remote", False):
        pytest.skip("chunk size is the server's setting")
    summary = wb.ingest(str(write_jsonl(tmp_path / "batch.jsonl", BATCH)))
    assert {k: summary[k] for k in ("processed", "duplicates", "exceptions_opened",
                                    "attached")} == {
        "processed": 2, "duplicates": 1, "exceptions_opened": 3, "attached": 3}

"""SPEC §2, §3, §10: every input shape, every bad input stored, counts that add up."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from opswb import NotFound
from opswb.engine.ingest import PARSE_NICE, Prefetch
from tests.helpers import ev, write_jsonl

COUNTS = ("processed", "duplicates", "exceptions_opened", "attached")


def _adds_up(s: dict) -> bool:
    return s["received"] == sum(s[k] for k in COUNTS)


def _nested(depth: int) -> dict:
    node: dict = {"leaf": True}
    for i in range(depth):
        node = {f"l{i}": node}
    return node


BAD_LINES = [
    "{this is not json",
    json.dumps({"tenant_id": "acme", "event_type": "payment.captured", "payload": {}}),
    json.dumps({"tenant_id": "acme", "idempotency_key": "k-str", "event_type":
                "payment.captured", "payload": "not an object"}),
    json.dumps({"tenant_id": "acme", "idempotency_key": "", "event_type": "payment.captured",
                "payload": {}}),
    json.dumps([1, 2, 3]),
    json.dumps("a string"),
    "42",
    "null",
]
GOOD_ODD = [
    ev("big", {"blob": "x" * 500_000}),
    ev("deep", _nested(60)),
    ev("ключ-ü-😀", {"name": "Zoë ☕"}, tenant="商户-ü"),
    ev("nul", {"note": "before\u0000after"}),
]


def test_bad_and_odd_input_is_all_stored_and_counted(local_wb, tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", BAD_LINES + GOOD_ODD)
    with open(path, "ab") as f:
        f.write(b'{"tenant_id": "acme", "idempotency_key": "\xff\xfe"}\n')   # not UTF-8
    s = local_wb.ingest(str(path))
    assert s["received"] == len(BAD_LINES) + len(GOOD_ODD) + 1
    assert _adds_up(s)
    assert s["processed"] == len(GOOD_ODD)
    assert s["exceptions_opened"] == len(BAD_LINES) + 1
    invalid = local_wb.list_exceptions(reason_code="INVALID_EVENT", limit=None)["items"]
    assert len(invalid) == len(BAD_LINES) + 1
    # An invalid envelope keeps the fields that parsed: filtering by tenant finds it.
    assert {e["idempotency_key"] for e in local_wb.list_exceptions(
        tenant_id="acme", limit=None)["items"]} >= {"k-str", ""}
    # The raw text is kept exactly as received.
    detail = local_wb.exception(invalid[0]["exception_id"])
    assert detail["raw"]["text"] == "{this is not json"
    assert "not JSON" in detail["details"]["error"]
    assert local_wb.key("商户-ü", "ключ-ü-😀")["arrivals"][0]["payload"] == {"name": "Zoë ☕"}
    assert local_wb.key("acme", "nul")["arrivals"][0]["payload"]["note"] == "before\u0000after"
    assert len(local_wb.key("acme", "big")["arrivals"][0]["text"]) > 500_000
    assert local_wb.health()["raw_events"] == s["received"]


def test_json_array_every_element_is_an_arrival(local_wb, tmp_path):
    path = tmp_path / "events.json"
    path.write_text(json.dumps([ev("a"), ev("a"), "just a string", 7, ev("b")]))
    s = local_wb.ingest(str(path))
    assert (s["received"], s["processed"], s["duplicates"], s["exceptions_opened"]) == (
        5, 2, 1, 2)


def test_csv_parquet_dataframe_and_iterable(local_wb, tmp_path):
    rows = [{"tenant_id": "acme", "idempotency_key": f"t{i}", "event_type": "order.created",
                 "source": "erp-sync", "payload": json.dumps({"n": i, "b": {"c": 1}})}
            for i in range(4)]
    pd.DataFrame(rows).to_csv(tmp_path / "e.csv", index=False)
    s = local_wb.ingest(str(tmp_path / "e.csv"))
    assert s["processed"] == 4
    # Parquet with the payload as a struct: the same events are duplicates.
    table = pa.Table.from_pylist([{**r, "payload": json.loads(r["payload"])} for r in rows])
    pq.write_table(table, tmp_path / "e.parquet")
    assert local_wb.ingest(str(tmp_path / "e.parquet"))["duplicates"] == 4
    df = pd.DataFrame(rows + [{"tenant_id": "acme", "idempotency_key": "t0",
                                   "event_type": "order.created", "payload": '{"n": 99}'}])
    s = local_wb.ingest(df)
    assert (s["duplicates"], s["exceptions_opened"]) == (4, 1)
    s = local_wb.ingest(iter([ev("gen1"), ev("gen2")]))
    assert s["processed"] == 2


def test_reingest_is_a_noop_and_several_files_sum(local_wb, tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [ev("a1"), ev("a2")])
    b = write_jsonl(tmp_path / "b.jsonl", [ev("b1"), ev("a1")])
    s = local_wb.ingest([str(a), str(b)])
    assert (s["received"], s["processed"], s["duplicates"]) == (4, 3, 1)
    copy = tmp_path / "a-copy.jsonl"
    copy.write_bytes(a.read_bytes())
    again = local_wb.ingest([str(a), str(copy)])
    assert {k: again[k] for k in ("received", *COUNTS)} == dict.fromkeys(
        ("received", *COUNTS), 0)
    assert again["skipped_files"] == [str(a), str(copy)]
    assert local_wb.health()["raw_events"] == 4


def test_missing_file_is_a_clear_error_and_changes_nothing(local_wb, tmp_path):
    import opswb

    with pytest.raises(opswb.InvalidRequest, match="no such file"):
        local_wb.ingest(str(tmp_path / "nope.jsonl"))
    assert local_wb.health()["raw_events"] == 0


@pytest.mark.duckdb_only("reads the DuckDB file directly")
def test_raw_rows_are_append_only(local_wb, tmp_path):
    local_wb.ingest([ev("k", {"a": 1}), ev("k", {"a": 2})])
    con = duckdb.connect(local_wb.db, read_only=True)
    before = con.execute("SELECT * FROM raw_events ORDER BY raw_id").fetchall()
    con.close()
    ex = local_wb.list_exceptions()["items"][0]
    local_wb.resolve(ex["exception_id"], action="override_and_replay", actor="a",
                     resolution_notes="n", override_patch={"payload": {"a": 3}})
    con = duckdb.connect(local_wb.db, read_only=True)
    after = con.execute("SELECT * FROM raw_events ORDER BY raw_id").fetchall()
    con.close()
    assert after == before


def test_huge_integer_payloads_are_exact_and_lone_surrogates_invalid(local_wb, tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text(
        '{"tenant_id":"acme","idempotency_key":"s","event_type":"order.created",'
        '"payload":{"x":"y","n":123456789012345678901234567890}}\n'
        '{"tenant_id":"acme","idempotency_key":"s","event_type":"order.created",'
        '"payload":{"n":123456789012345678901234567890,"x":"y"}}\n'
        '{"tenant_id":"acme","idempotency_key":"s","event_type":"order.created",'
        '"payload":{"n":123456789012345678901234567891,"x":"y"}}\n'
        '{"tenant_id":"acme","idempotency_key":"u","event_type":"order.created",'
        '"payload":{"x":"\\ud800"}}\n')
    s = local_wb.ingest(str(path))
    assert (s["processed"], s["duplicates"], s["exceptions_opened"]) == (1, 1, 2)
    arrival = local_wb.key("acme", "s")["arrivals"][0]
    assert arrival["payload"]["n"] == 123456789012345678901234567890
    invalid = local_wb.exceptions(reason_code="INVALID_EVENT")
    assert len(invalid) == 1 and "lone surrogate" in str(invalid.details[0])
    with pytest.raises(NotFound):  # an invalid arrival creates no key record
        local_wb.key("acme", "u")


def test_chunks_are_parsed_on_a_thread_of_lower_priority():
    """The parse thread yields the cores to the store (Linux: priority is per thread)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread priority is a Linux feature")
    main_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if main_nice >= 19:
        pytest.skip("this process already runs at the lowest priority")
    seen = []

    def chunks():
        for i in range(3):
            tid = threading.get_native_id()
            seen.append((tid, os.getpriority(os.PRIO_PROCESS, tid)))
            yield i

    assert list(Prefetch(chunks())) == [0, 1, 2]
    assert {tid for tid, _ in seen} != {threading.get_native_id()}
    assert {nice for _, nice in seen} == {min(19, main_nice + PARSE_NICE)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_nice


def test_parsing_starts_at_once_and_stops_when_the_caller_stops():
    started, closed = threading.Event(), threading.Event()

    def endless():
        started.set()
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()  # the reader's file and connection are released

    parsed = Prefetch(endless())
    assert started.wait(5)  # before anything was asked for (ingest_file hashes meanwhile)
    assert next(parsed) == 0 and next(parsed) == 1
    parsed.close()
    assert closed.wait(5)
    with pytest.raises(StopIteration):
        next(parsed)


def test_closing_waits_for_a_chunk_being_parsed():
    """Nothing of the reader outlives close(): a process whose parse thread is still
    inside DuckDB when it exits aborts (exit code 134; seen when re-ingesting a file
    already ingested, which stops parsing as soon as the file's hash is known)."""
    def slow():
        yield 0
        time.sleep(0.5)  # the thread is busy with the next chunk when the caller stops
        yield 1

    parsed = Prefetch(slow())
    assert next(parsed) == 0
    parsed.close()
    assert not [t for t in threading.enumerate() if t.name == "opswb-parse"]


def test_a_reader_error_reaches_the_caller():
    def failing():
        yield 1
        raise ValueError("line 2 is broken")

    parsed = Prefetch(failing())
    assert next(parsed) == 1
    with pytest.raises(ValueError, match="line 2"):
        next(parsed)

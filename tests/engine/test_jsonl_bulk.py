"""JSON Lines staged in bulk by DuckDB read exactly as the per-line Python reader does.

``bulkjsonl.read_jsonl_bulk`` is what ``opswb ingest`` uses for JSON Lines; the per-line
``readers.read_jsonl`` (the same path as an NDJSON request body) is the reference. Every
staged column must agree, for plain lines and for every odd one, whatever the chunking.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from opswb.core import jsonscan
from opswb.core.fingerprint import loads
from opswb.core.staging import stage_table
from opswb.engine.jsonl_bulk import read_jsonl_bulk
from opswb.engine.readers import read_jsonl
from opswb.store.duckdb.classify import store_chunk
from opswb.store.duckdb.connection import open_store, transaction
from opswb.store.duckdb.queries import RecentRaws, stored_events
from opswb.testing.synth import write_jsonl

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_events.jsonl"


def _ev(**kw) -> bytes:
    base = {"tenant_id": "acme", "idempotency_key": "k1", "event_type": "payment.captured",
            "source": "api", "payload": {"a": 1}}
    return json.dumps({**base, **kw}, ensure_ascii=False).encode()


ODD_LINES = [
    _ev(), b"", b"   ", b"\t", _ev(idempotency_key="k2") + b"\r",
    _ev(idempotency_key="k3") + b"\r\r",
    b'{"tenant_id":"acme","idempotency_key":"k4","event_type":"x","payload":{"a":NaN}}',
    _ev(tenant_id="t\u00fcnant", idempotency_key="\u952e"),
    _ev(payload={"s": "nul\u0000here"}),
    b'{"tenant_id":"acme","idempotency_key":"k5","event_type":"x","payload":{"a":"raw\x00nul"}}',
    _ev(payload=json.loads('{"a":' * 60 + "1" + "}" * 60)),
    _ev(payload={"big": "x" * 200_000}),
    _ev(tenant_id=" x"), _ev(tenant_id="\u00a0"), _ev(tenant_id="  "), _ev(tenant_id=""),
    b"\xff\xfe not utf-8", b"[1,2]", _ev(tenant_id=5), _ev(source=5),
    _ev(occurred_at={"a": 1}), _ev(source=None), _ev(tenant_id="a\\b"),
    b'{"tenant_id":"acme","idempotency_key":"k7","event_type":"x"}',
    _ev(payload=[1]), _ev(payload="str"), b"not json", b'{"a":1} trailing',
    b'   {"tenant_id":"acme","idempotency_key":"k8","event_type":"x","payload":{}}  ',
    (b'{"tenant_id":"acme","idempotency_key":"k9","event_type":"x","payload":'
     b'{"n":12345678901234567890123,"f":1e2,"s":"\\ud800"}}'),
    b'{"tenant_id":"\\u0061cme","idempotency_key":"k10","event_type":"x","payload":{}}',
    b'{"tenant_id":"acme","idempotency_key":"k11","event_type":"x","payload":{},"extra":[1]}',
    _ev(idempotency_key="last"),
]


def _rows(chunks) -> list[dict]:
    out = []
    for chunk in chunks:
        table = chunk.rows if hasattr(chunk.rows, "num_rows") else stage_table(chunk.rows)
        out.extend(table.to_pylist())
    return out


def _comparable(row: dict) -> dict:
    """A staged row without what the two paths may legitimately differ in: the chunk's
    numbering, the fingerprint (computed later, where needed) and the payload's text form."""
    payload = row["payload"]
    if payload is None and row["valid"]:  # bulk-staged: the payload is in ``text``
        payload = json.dumps(json.loads(row["text"])["payload"])
    return {k: v for k, v in row.items() if k not in ("seq", "fingerprint", "payload")} \
        | {"payload": loads(payload) if payload is not None else None}


@pytest.fixture(params=["C scanner", "DuckDB + orjson"])
def scanner(request, monkeypatch):
    """The bulk reader with the C scanner (one pass reads every clean envelope) and as
    it runs where the extension was not built (DuckDB extracts, orjson checks)."""
    if request.param == "C scanner" and not jsonscan.NATIVE:
        pytest.skip("built without a C compiler")
    monkeypatch.setattr(jsonscan, "NATIVE", request.param == "C scanner")
    return request.param


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
@pytest.mark.parametrize("ending", [b"\n", b""], ids=["final newline", "no final newline"])
def test_odd_lines_stage_as_on_the_per_line_path(tmp_path, size, ending, scanner):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join(ODD_LINES) + ending)
    bulk, line = list(read_jsonl_bulk(path, 0, size)), list(read_jsonl(path, 0, size))
    assert bulk[-1].end_offset == line[-1].end_offset == path.stat().st_size
    got, want = _rows(bulk), _rows(line)
    assert len(got) == len(want) == len(ODD_LINES) - 3  # three blank lines are not arrivals
    assert [_comparable(r) for r in got] == [_comparable(r) for r in want]
    # Plain lines went through DuckDB, the others through the Python reference; a chunk
    # holding a line that is not UTF-8 goes through the reference whole.
    in_text = [r["valid"] and r["payload"] is None for r in got]
    assert 0 < sum(in_text) < len(in_text) if size < len(ODD_LINES) else sum(in_text) == 0


def test_generated_and_sample_data_stage_alike(tmp_path, scanner):
    gen = write_jsonl(tmp_path / "gen.jsonl", 3000, seed=3, dup_rate=0.1,
                      conflict_rate=0.05, unknown_rate=0.02, invalid_rate=0.05)
    for path in (gen, SAMPLE):
        got, want = _rows(read_jsonl_bulk(path, 0, 700)), _rows(read_jsonl(path, 0, 700))
        assert [_comparable(r) for r in got] == [_comparable(r) for r in want]


def test_in_chunk_repeats_are_fingerprinted_while_staging(tmp_path):
    """A key that arrives twice in one chunk is contested whatever the store holds: the
    bulk reader fingerprints those arrivals, as the per-line path does. Other plain lines
    get none (odd ones, staged by the per-line code, come with theirs)."""
    gen = write_jsonl(tmp_path / "gen.jsonl", 3000, seed=3, dup_rate=0.1,
                      conflict_rate=0.05, unknown_rate=0.02, invalid_rate=0.05)
    for path in (gen, SAMPLE):
        chunks = list(read_jsonl_bulk(path, 0, 700))
        got, want = _rows(chunks), _rows(read_jsonl(path, 0, 700))
        assert len(got) == len(want)
        at, repeats, lone = 0, 0, 0
        for chunk in chunks:
            rows = got[at:at + chunk.count]
            seen = Counter((r["tenant_id"], r["idempotency_key"]) for r in rows if r["valid"])
            for r, w in zip(rows, want[at:at + chunk.count]):
                repeated = r["valid"] and seen[(r["tenant_id"], r["idempotency_key"])] > 1
                assert r["fingerprint"] in ((w["fingerprint"],) if repeated
                                            else (None, w["fingerprint"])), r["text"]
                repeats += repeated
                lone += not repeated and r["fingerprint"] is None
            at += chunk.count
        assert repeats > 0 and lone > 0
        assert all(w["fingerprint"] for w in want if w["valid"])


def test_resume_offsets_cut_whole_lines(tmp_path):
    """Reading on from a chunk's end offset yields exactly the rest of the file."""
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\r\n".join(ODD_LINES))
    chunks = list(read_jsonl_bulk(path, 0, 4))
    whole = [_comparable(r) for r in _rows(chunks)]
    for i, chunk in enumerate(chunks[:-1]):
        rest = [_comparable(r) for r in _rows(read_jsonl_bulk(path, chunk.end_offset, 4))]
        done = sum(c.count for c in chunks[:i + 1])
        assert rest == whole[done:]


@pytest.mark.duckdb_only("the analyst views (wb.sql) are DuckDB's")
def test_crlf_file_stores_the_same_texts_as_lf(local_wb, tmp_path):
    lines = [_ev(idempotency_key=f"k{i}") for i in range(5)]
    (tmp_path / "lf.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "crlf.jsonl").write_bytes(b"\r\n".join(lines) + b"\r\n")
    first = local_wb.ingest(str(tmp_path / "lf.jsonl"))
    second = local_wb.ingest(str(tmp_path / "crlf.jsonl"))
    assert first["processed"] == 5 and second["duplicates"] == 5
    texts = local_wb.sql("SELECT text FROM arrivals ORDER BY raw_id")["text"].tolist()
    assert texts == [ln.decode() for ln in lines] * 2


@pytest.mark.duckdb_only("the analyst views (wb.sql) are DuckDB's")
def test_a_key_first_stored_without_fingerprint_still_conflicts_and_shows_first_last(
        local_wb, tmp_path):
    """A lone arrival is stored without a fingerprint; when its key comes back in a later
    file, the comparison, the detail's FIRST/LAST and the decisions view still hold."""
    first = _ev(idempotency_key="K", payload={"amount": 100, "currency": "EUR"})
    changed = _ev(idempotency_key="K", payload={"currency": "EUR", "amount": 120})
    reordered_copy = _ev(idempotency_key="K", source="retry",
                         payload={"currency": "EUR", "amount": 100.0})
    (tmp_path / "a.jsonl").write_bytes(first + b"\n")
    (tmp_path / "b.jsonl").write_bytes(reordered_copy + b"\n")
    (tmp_path / "c.jsonl").write_bytes(changed + b"\n" + reordered_copy + b"\n")
    assert local_wb.ingest(str(tmp_path / "a.jsonl"))["processed"] == 1
    assert local_wb.ingest(str(tmp_path / "b.jsonl"))["duplicates"] == 1  # same by value
    got = local_wb.ingest(str(tmp_path / "c.jsonl"))
    assert (got["exceptions_opened"], got["attached"]) == (1, 1)
    [ex_id] = local_wb.exceptions()["exception_id"].tolist()
    detail = local_wb.exception(ex_id)
    assert detail["reason_code"] == "IDEMPOTENCY_CONFLICT"
    assert detail["first"]["payload"] == {"amount": 100, "currency": "EUR"}
    assert detail["last"]["payload"] == {"currency": "EUR", "amount": 120}
    assert [c["path"] for c in detail["diff"]["changed"]] == ["/payload/amount"]
    rec = detail["events_processed"]
    assert rec["canonical_fingerprint"] and rec["canonical_fingerprint"] in \
        rec["adjudicated_fingerprints"]
    # LAST is the changed arrival, not the later re-sent copy of FIRST.
    local_wb.resolve(ex_id, action="override_and_replay", actor="ops",
                     resolution_notes="a real correction",
                     canonical_raw_id=detail["last"]["raw_id"])
    decision = local_wb.sql("SELECT decision FROM decisions")["decision"].tolist()
    assert decision == ["LAST chosen"]


def test_long_lines_are_chunked_by_bytes(tmp_path, monkeypatch, scanner):
    """Lines too long for a chunk's byte cap make smaller chunks, never a lost line."""
    monkeypatch.setattr("opswb.engine.jsonl_bulk._MAX_BYTES", 1 << 16)  # 64 KiB, the least read
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join(ODD_LINES * 3))
    chunks = list(read_jsonl_bulk(path, 0, 1000))
    assert len(chunks) > 3 and chunks[-1].end_offset == path.stat().st_size
    assert [_comparable(r) for r in _rows(chunks)] == \
        [_comparable(r) for r in _rows(read_jsonl(path, 0, 1000))]


@pytest.mark.parametrize("size", [3, 7, 1000])
def test_the_previous_chunk_in_memory_reads_as_the_store(db_path, tmp_path, size):
    """An ingest reads the stored raws it needs from the chunk it stored last when it can
    (``storage.RecentRaws``): type, payload and fingerprint must be the store's own, for
    plain, odd and invalid lines alike."""
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join(ODD_LINES) + b"\n")
    recent, compared = RecentRaws(), 0
    for chunk in read_jsonl_bulk(path, 0, size):
        with open_store(db_path) as con, transaction(con):
            store_chunk(con, chunk.rows, "test", recent=recent)
        with open_store(db_path) as con:
            ids = list(range(recent.raw_base + 1, recent.raw_base + chunk.count + 1))
            held, stored = recent.events(con, ids), stored_events(con, ids)
        assert held == stored
        compared += len(held)
    with open_store(db_path) as con:
        valid = con.execute("SELECT count(*) FROM raw_events WHERE valid").fetchall()[0][0]
    assert compared == valid > 10  # every valid arrival of the file, each compared once

"""Hostile input never costs an arrival (SPEC §2-§4, issue 12).

The same bytes go through every reader: a JSON Lines file (the bulk reader, by the CLI),
an NDJSON body (the per-line reader), a JSON array file (the array reader) and both body
kinds over HTTP to a real ``opswb serve``. Every element is stored exactly once, with its
exact text; all paths agree on validity, the rule that failed, the fingerprint and the
outcome; nothing raises.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

import opswb
from tests.hostile import OUTCOMES, VALID, arrivals, corpus, corpus_lines, elements

OPSWB = [sys.executable, "-m", "opswb.cli"]
BOM = b"\xef\xbb\xbf"


def _cli_ingest(path: Path, db: str) -> dict:
    r = subprocess.run(OPSWB + ["ingest", str(path), "--db", db, "--json"],
                       capture_output=True, text=True, check=False, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _through_local_paths(lines: list[bytes], d: Path) -> dict[str, list[tuple]]:
    """The arrivals each embedded path stores for ``lines``, in a fresh store each."""
    out = {}
    jsonl = d / "in.jsonl"
    jsonl.write_bytes(b"\n".join(lines) + b"\n")
    array = d / "in.json"
    array.write_bytes(b"[" + b",\n".join(lines) + b"]")
    for name, feed in (("bulk", lambda wb: wb.ingest(str(jsonl))),
                       ("per-line", lambda wb: wb.ingest_ndjson(b"\n".join(lines))),
                       ("array", lambda wb: wb.ingest(str(array)))):
        db = str(d / f"{name}.duckdb")
        wb = opswb.connect(db)
        wb.init()
        summary = feed(wb)
        assert summary["received"] == len(lines), name
        out[name] = arrivals(db)
    return out


def _post(url: str, token: str, body: bytes, ctype: str) -> dict:
    r = httpx.post(f"{url}/v1/events", content=body, timeout=60,
                   headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
    assert r.status_code == 200, r.text
    return r.json()


# ---- the corpus: each reproduction of the issue, between valid lines ----------------

@pytest.fixture(scope="module")
def corpus_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    path = d / "corpus.jsonl"
    lines = corpus_lines()
    path.write_bytes(b"\n".join(lines) + b"\n")
    db = str(d / "corpus.duckdb")
    return db, lines, _cli_ingest(path, db)


def test_corpus_file_stores_every_line_and_processes_the_valid_ones(corpus_store):
    db, lines, summary = corpus_store
    assert summary["received"] == len(lines)
    stored = arrivals(db)
    assert [a[0].encode("utf-8") for a in stored] == lines  # exact text, every line
    outcomes = {v: [a[3] for a in stored if a[0].encode("utf-8") == v] for v in VALID}
    assert outcomes[VALID[0]] == outcomes[VALID[2]] == ["processed"]
    # the valid line between the cases: processed once, a duplicate ever after
    assert outcomes[VALID[1]] == ["processed"] + ["duplicates"] * (len(corpus()) - 1)


@pytest.mark.parametrize(("case", "rule"), [
    ("lone surrogate in tenant_id", "lone_surrogate"),
    ("lone surrogate in idempotency_key", "lone_surrogate"),
    ("lone surrogate in payload", "lone_surrogate"),
    ("array as a JSON Lines line", "not_an_object"),
    ("NaN literal", "nan_or_infinity"), ("Infinity literal", "nan_or_infinity"),
    ("lower-case nan", "not_json"),
    ("duplicate payload member", "duplicate_member"),
    ("duplicate tenant_id", "duplicate_member"),
    ("duplicate nested member", "duplicate_member"),
    ("trailing comma", "not_json"), ("control character in a string", "not_json"),
    ("not JSON", "not_json"), ("a bare string", "not_an_object"),
    ("payload an array", "payload_not_object"), ("tenant a number", "missing_field"),
])
def test_each_hostile_case_is_an_invalid_arrival_naming_its_rule(corpus_store, case, rule):
    db, _, _ = corpus_store
    by_text = {a[0].encode("utf-8"): a for a in arrivals(db)}
    for element in corpus()[case]:
        _, valid, failed, outcome, reason, _ = by_text[element]
        assert (valid, failed, outcome, reason) == (False, rule, "exceptions_opened",
                                                    "INVALID_EVENT")


def test_numbers_past_the_double_range_compare_by_exact_value(corpus_store):
    db, _, _ = corpus_store
    by_text = {a[0].encode("utf-8"): a for a in arrivals(db)}
    big, null, big2, neg = (by_text[e] for e in corpus()["1e400 then null on one key"])
    assert big[3] == "processed"
    assert (null[3], null[4]) == ("exceptions_opened", "IDEMPOTENCY_CONFLICT")
    assert big2[5] == big[5] != neg[5]  # 10e399 is 1e400; -1e400 is not
    zero, tiny = (by_text[e] for e in corpus()["1e-400 is not 0"])
    assert (tiny[3], tiny[4]) == ("exceptions_opened", "IDEMPOTENCY_CONFLICT")
    assert zero[5] != tiny[5]


def test_deep_payload_is_invalid_and_the_key_stays_usable(corpus_store):
    db, _, _ = corpus_store
    deep, later = (next(a for a in arrivals(db) if a[0].encode() == e)
                   for e in corpus()["payload nested 2,000 deep, then the same key"])
    assert (deep[1], deep[2]) == (False, "too_deep")
    assert later[3] == "processed"  # the invalid arrival created no key record
    assert opswb.connect(db).key("acme", "deep")["events_processed"]["state"] == "processed"


def test_the_views_the_readme_documents_answer_on_the_corpus_store(corpus_store):
    db, lines, _ = corpus_store
    wb = opswb.connect(db)
    for view in ("arrivals", "keys", "exceptions", "deliveries", "audit", "types",
                 "decisions"):
        wb.sql(f"SELECT * FROM {view}")
        assert wb.sql(f"SELECT count(*) AS n FROM {view}") is not None
    assert int(wb.sql("SELECT count(*) AS n FROM arrivals")["n"][0]) == len(lines)


def test_a_bom_is_encoding_and_a_jsonl_file_is_lines_whatever_its_first_line(tmp_path):
    db = str(tmp_path / "s.duckdb")
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(BOM + VALID[0] + b"\n" + VALID[1] + b"\n")
    assert _cli_ingest(bom, db)["processed"] == 2
    first = tmp_path / "first.jsonl"
    first.write_bytes(b"[1,2]\n" + b"\n".join(
        VALID[2].replace(b"ok2", f"x{i}".encode()) for i in range(100)) + b"\n")
    s = _cli_ingest(first, db)
    assert (s["received"], s["processed"], s["exceptions_opened"]) == (101, 100, 1)
    only = tmp_path / "only.jsonl"
    only.write_bytes(b"[1,2]\n")
    assert _cli_ingest(only, db)["received"] == 1


def test_every_path_reads_the_corpus_alike(tmp_path):
    paths = _through_local_paths(corpus_lines(), tmp_path)
    assert paths["per-line"] == paths["bulk"]
    assert paths["array"] == paths["bulk"]


def test_the_corpus_over_http_is_stored_whole(serve_url, corpus_store):
    url, token = serve_url
    db, lines, _ = corpus_store
    expected = [OUTCOMES[a[3]] for a in arrivals(db)]
    for ctype, body in (("application/x-ndjson", b"\n".join(lines)),
                        ("application/json", b"[" + b",".join(lines) + b"]")):
        # a fresh namespace of keys per body, so both see an empty store
        tag = uuid.uuid4().hex[:8].encode()
        body = body.replace(b'"idempotency_key":"', b'"idempotency_key":"' + tag)
        answer = _post(url, token, body, ctype)
        assert answer["received"] == len(lines)
        if "results" in answer:
            assert [r["outcome"] for r in answer["results"]] == expected


# ---- the property: generated envelopes and hostile mutations, every path ------------

@settings(max_examples=int(os.environ.get("OPSWB_HYPOTHESIS_EXAMPLES", "40")),
          deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow])
@given(batch=elements())
def test_every_path_agrees_on_hostile_batches(batch, serve_url):
    with tempfile.TemporaryDirectory() as d:
        paths = _through_local_paths(batch, Path(d))
    bulk = paths["bulk"]
    assert [a[0].encode("utf-8", "surrogatepass") for a in bulk] == batch
    assert paths["per-line"] == bulk
    assert paths["array"] == bulk
    url, token = serve_url
    expected = [OUTCOMES[a[3]] for a in bulk]
    for ctype, join in (("application/x-ndjson", b"\n"), ("application/json", b",")):
        tag = uuid.uuid4().hex[:8].encode()
        # The generated keys start with k; an empty or blank key stays as it is (invalid)
        body = join.join(batch).replace(b'"idempotency_key":"k', b'"idempotency_key":"' + tag + b"k")
        if ctype == "application/json":
            body = b"[" + body + b"]"
        answer = _post(url, token, body, ctype)
        assert answer["received"] == len(batch)
        if "results" in answer:
            assert [r["outcome"] for r in answer["results"]] == expected

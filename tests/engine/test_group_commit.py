"""Group commit (engine/group_commit.py) over a real DuckDB file: several requests in one
transaction, each answered on its own."""

from __future__ import annotations

import hashlib
import json

import pytest

from opswb.core.errors import Conflict
from opswb.engine.group_commit import GroupCommitter, Pending, store_group
from opswb.engine.readers import read_json_text
from opswb.store import store_for
from tests.helpers import ev

# What staging a malformed row raises (pyarrow's errors are ValueError subclasses).
BROKEN = (ValueError, TypeError, IndexError)


def _pending(events: list, batch_id: str | None = None) -> Pending:
    body = json.dumps(events).encode()
    digest = hashlib.sha256(body).hexdigest() if batch_id else None
    return Pending(read_json_text(body), batch_id, digest, len(body))


@pytest.fixture
def store(store_url):
    s = store_for(store_url, held=True)
    yield s
    s.close()


def test_each_request_of_a_group_gets_its_own_answer(store):
    first = _pending([ev("a")], "x")
    answers = store_group(store, [
        first,
        _pending([ev("b")], "x"),                  # same new id, other body: refused
        _pending([ev("a", {"amount": 5}), ev("c")]),  # conflicts with the first request
        _pending([ev("d")], "y"),
        _pending([ev("d")], "y"),                  # same new id, same body: its retry
    ])
    assert answers[0]["processed"] == 1 and answers[0]["results"][0]["raw_id"] == "1"
    assert isinstance(answers[1], Conflict)
    assert [r["outcome"] for r in answers[2]["results"]] == ["exception_opened", "processed"]
    assert answers[2]["results"][0]["reason_code"] == "IDEMPOTENCY_CONFLICT"
    assert answers[2]["received"] == 2 and answers[2]["exceptions_opened"] == 1
    assert answers[3]["processed"] == 1
    assert answers[4]["received"] == 0 and answers[4]["skipped_files"] == ["batch:y"]
    assert answers[4]["results"] == answers[3]["results"]
    with store.read() as db:
        assert db.key_record("acme", "b") is None  # the refused request stored nothing
        assert db.key_record("acme", "a")["state"] == "quarantined"
        batches = db.batch_records(["x", "y", "nope"])  # both recorded by one statement
        assert sorted(batches) == ["x", "y"] and batches["x"]["arrivals"] == 1
    # Later, both ids answer as stored: x with the first body, y once more.
    again = store_group(store, [_pending([ev("a")], "x"), _pending([ev("b")], "x")])
    assert again[0]["results"] == answers[0]["results"] and again[0]["received"] == 0
    assert isinstance(again[1], Conflict)


def test_a_request_that_breaks_the_group_fails_alone(store):
    committer = GroupCommitter(store)
    try:
        with committer._cond:  # all queued before the writer looks: one group
            futures = [committer.submit(_pending([ev(k)]).rows) for k in "pq"]
            bad = committer.submit([("not a staged row",)])
            futures.append(committer.submit(_pending([ev("r")]).rows))
        assert [f.result(30)["processed"] for f in futures] == [1, 1, 1]
        with pytest.raises(BROKEN):
            bad.result(30)
    finally:
        committer.close()
    with store.read() as db:
        assert all(db.key_record("acme", k) is not None for k in "pqr")


def test_a_group_holds_no_more_than_its_bounds(store):
    committer = GroupCommitter(store, max_events=3)
    try:
        with committer._cond:  # five one-event requests queued before the writer wakes
            futures = [committer.submit(_pending([ev(f"g{i}")]).rows) for i in range(5)]
        assert [f.result(30)["processed"] for f in futures] == [1] * 5
    finally:
        committer.close()
    with store.read() as db:
        stamps = [db.raws_by_id([i])[str(i)]["received_at"] for i in range(1, 6)]
    # received_at is the transaction's time: at most three raws share one.
    assert max(stamps.count(s) for s in stamps) <= 3

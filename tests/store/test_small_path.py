"""The small-chunk path (store/duckdb/small.py) writes what the full classification writes.

Each scenario is stored twice, batch by batch, into two fresh stores: once as shipped and
once with the small path switched off; the two stores must hold the same rows (times
aside), and every batch must answer the same.
"""

from __future__ import annotations

import pytest

import opswb
from opswb.store.duckdb import small
from tests.helpers import dump_store, ev

TIMES = {"received_at", "delivered_at", "created_at", "added_at", "committed_at",
         "applied_at"}

SCENARIOS = {
    "new keys one by one": [[ev("a")], [ev("b")], [ev("c", tenant="t2")]],
    "a group of new keys": [[ev(f"k{i}") for i in range(40)]],
    "more keys than the literal lookup takes": [[ev(f"m{i}") for i in range(small.LISTED_KEYS + 5)]],
    "then a duplicate and a conflict": [[ev("a")], [ev("a")], [ev("a", {"amount": 1})]],
    "a key repeated inside the batch": [[ev("r"), ev("r")]],
    "an unknown type": [[ev("u", event_type="nope.never")]],
    "an invalid arrival beside a new key": [[ev("v"), {"tenant_id": "acme"}]],
    "same key, two tenants": [[ev("s", tenant="t1"), ev("s", tenant="t2")]],
}


def _store(path: str, batches: list[list[dict]]) -> list[dict]:
    wb = opswb.connect(path)
    wb.init()
    return [wb.ingest_batch(b, batch_id=f"b{i}") for i, b in enumerate(batches)]


def _rows(path: str) -> dict:
    return {t: [{k: v for k, v in r.items() if k not in TIMES} for r in rows]
            for t, rows in dump_store(path).items() if t != "ingest_ledger"}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_small_path_stores_what_the_full_path_stores(name, tmp_path, monkeypatch):
    batches = SCENARIOS[name]
    fast = _store(str(tmp_path / "fast.duckdb"), batches)
    monkeypatch.setattr(small, "SMALL_CHUNK", 0)
    full = _store(str(tmp_path / "full.duckdb"), batches)
    assert fast == full
    assert _rows(str(tmp_path / "fast.duckdb")) == _rows(str(tmp_path / "full.duckdb"))


def test_small_path_is_taken_for_new_keys(tmp_path, monkeypatch):
    taken = []
    real = small.store_if_lone

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(small, "store_if_lone", spy)
    _store(str(tmp_path / "s.duckdb"), [[ev("a")], [ev("b"), ev("c")], [ev("a")]])
    assert taken == [True, True, False]

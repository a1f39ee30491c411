"""The queue's sort, search and ``(none)`` tenant filter (``list_exceptions``), on both
stores and over HTTP alike; cursors page through each order without repeats or gaps."""

from __future__ import annotations

import pytest

import opswb
from opswb.core.errors import InvalidRequest
from tests.helpers import ev
from tests.support.server import ServerProcess

SORTS = ("age", "-age", "tenant", "-tenant", "reason", "-reason", "key", "-key")
FIELD = {"tenant": "tenant_id", "reason": "reason_code", "key": "idempotency_key"}


def _load(wb) -> None:
    """Eleven open exceptions over three tenants (ties on purpose), one without a tenant."""
    events = [ev(k, {"amount": 1}, "weird.type", tenant=t, source=s) for k, t, s in [
        ("k-07", "globex", "billing"), ("K-02", "acme", "ERP-Legacy"), ("k-09", "acme", "erp"),
        ("k-01", "initech", "billing"), ("k-05", "globex", "shop"), ("k-03", "acme", None),
        ("zz-abc", "initech", "shop"), ("k-04", "acme", "billing")]]
    events += [ev("c-1", {"amount": 1}), ev("c-1", {"amount": 2})]  # a conflict
    events += [{"idempotency_key": "orphan", "event_type": "payment.captured",
                "payload": {}}, {"tenant_id": "acme", "event_type": "payment.captured"}]
    wb.ingest_batch(events)


def _pages(wb, limit: int, cursor: str | None = None, **kw) -> list[dict]:
    items = []
    while True:
        page = wb.list_exceptions(limit=limit, cursor=cursor, **kw)
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        cursor = page["next_cursor"]


def _expected(items: list[dict], sort: str) -> list[str]:
    field, desc = sort.lstrip("-"), sort.startswith("-")
    if field == "age":
        ordered = sorted(items, key=lambda e: int(e["raw_id"]), reverse=desc)
    else:
        ordered = sorted(items, key=lambda e: ((e[FIELD[field]] or "").encode(),
                                               int(e["raw_id"])), reverse=desc)
    return [e["exception_id"] for e in ordered]


@pytest.fixture
def wb(store_url):
    wb = opswb.connect(store_url)
    _load(wb)
    return wb


def test_every_sort_pages_through_the_whole_queue_in_order(wb):
    everything = wb.list_exceptions(limit=None)["items"]
    assert len(everything) == 11
    for sort in SORTS:
        want = _expected(everything, sort)
        assert [e["exception_id"] for e in wb.list_exceptions(limit=None, sort=sort)["items"]
                ] == want, sort
        assert [e["exception_id"] for e in _pages(wb, 3, sort=sort)] == want, sort


def test_a_keyset_cursor_skips_nothing_when_rows_are_resolved_meanwhile(wb):
    first = wb.list_exceptions(limit=4, sort="tenant")
    done = first["items"][-1]
    wb.resolve(done["exception_id"], action="mark_resolved_no_replay", actor="ann",
               resolution_notes="not ours")
    rest = _pages(wb, 4, sort="tenant", cursor=first["next_cursor"])
    seen = [e["exception_id"] for e in first["items"] + rest]
    assert seen == _expected(wb.list_exceptions(limit=None)["items"] + [done], "tenant")


def test_search_matches_key_or_source_in_any_case(wb):
    def keys(q, **kw):
        return sorted(e["idempotency_key"] or "" for e in
                      wb.list_exceptions(q=q, limit=None, **kw)["items"])
    assert keys("k-0") == ["K-02", "k-01", "k-03", "k-04", "k-05", "k-07", "k-09"]
    assert keys("ERP") == ["K-02", "k-09"]  # by source, any case
    assert keys("abc") == ["zz-abc"]
    assert keys("billing", tenant_id="acme") == ["k-04"]
    assert keys("50%") == [] and keys("_") == []  # no LIKE wildcards
    assert keys("k-0", sort="-key") == keys("k-0")


def test_none_tenant_lists_the_envelopes_that_lacked_one(wb):
    items = wb.list_exceptions(tenant_id="(none)", limit=None)["items"]
    assert [e["reason_code"] for e in items] == ["INVALID_EVENT"]
    assert not items[0]["tenant_id"]
    assert wb.health()["open_by_tenant"]["(none)"] == 1


@pytest.mark.parametrize("sort", ["oldest", "--key", "key-", "age,key", "Key"])
def test_a_bad_sort_is_refused_with_the_choices(wb, sort):
    with pytest.raises(InvalidRequest, match="invalid sort.*-age"):
        wb.list_exceptions(sort=sort)


def test_a_cursor_of_another_sort_is_refused(wb):
    cursor = wb.list_exceptions(limit=2, sort="key")["next_cursor"]
    with pytest.raises(InvalidRequest, match="invalid cursor"):
        wb.list_exceptions(limit=2, sort="tenant", cursor=cursor)
    with pytest.raises(InvalidRequest, match="invalid cursor"):
        wb.list_exceptions(limit=2, sort="key", cursor="not-a-cursor")


def test_remote_answers_the_same_pages_and_422_on_a_bad_sort(store_url, tmp_path):
    local = opswb.connect(store_url)
    _load(local)
    asks = [{"sort": "-key", "limit": 4}, {"sort": "tenant", "q": "K-0"},
            {"tenant_id": "(none)"}, {"sort": "-age", "limit": 3}]
    expected = [local.list_exceptions(**a) for a in asks]
    cursor = local.list_exceptions(limit=3, sort="-tenant")["next_cursor"]
    after = local.list_exceptions(limit=3, sort="-tenant", cursor=cursor)
    server = ServerProcess(store_url, tmp_path / "serve.log")
    try:
        served = server.wait()
        remote = opswb.connect(served.url, token=served.token)
        try:
            assert [remote.list_exceptions(**a) for a in asks] == expected
            assert remote.list_exceptions(limit=3, sort="-tenant", cursor=cursor) == after
            with pytest.raises(InvalidRequest, match="invalid sort"):
                remote.list_exceptions(sort="size")
        finally:
            remote.close()
    finally:
        server.stop()

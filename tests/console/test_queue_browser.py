"""The queue table in a real browser at scale: Chromium driving Voilà over a store of
100,000 arrivals with 20,000 open exceptions of one cause (``opswb.testing.scale``).

One console per module (the store takes seconds to build, a page seconds to load). The
README's console screenshots (1,280 and 1,920 px wide) are taken here.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

import opswb
from opswb.testing.scale import write_scale_events
from tests.support.browser import (
    REPO,
    WIDTHS,
    ConsoleServer,
    build_store,
    open_console,
    open_row,
    rows,
    serving,
    shot,
    view_button,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PAGE = 25  # the console's page size


@pytest.fixture(scope="module")
def console_scale(tmp_path_factory) -> Iterator[ConsoleServer]:
    """The console over a store of 100k arrivals, ≥ 20k exceptions open."""
    root = tmp_path_factory.mktemp("console-scale")
    db = str(root / "opswb.duckdb")
    wb = opswb.connect(db)
    wb.init()
    wb.ingest(str(write_scale_events(root / "events.jsonl", n=100_000, unknown=20_000)))
    with serving(db, root) as server:
        yield server


def ids(items: list[dict]) -> list[str]:
    return [e["exception_id"] for e in items]


def shown_ids(page) -> list[str]:
    return [r["id"] for r in rows(page)]


def wait_for_rows(page, want: list[str]) -> None:
    """Wait until the table lists exactly ``want``, then check it."""
    page.wait_for_function(
        "want => Array.from(document.querySelectorAll('.opswb-row'))"
        ".filter(r => r.offsetParent !== null)"
        ".map(r => r.querySelector('.opswb-row-view').textContent.trim().slice(1))"
        ".join(',') === want.join(',')", arg=want)
    assert shown_ids(page) == want


def test_table_has_headers_rows_and_counts(browser, console_scale):
    wb = console_scale.wb
    open_now = wb.health()["exceptions_open"]
    assert open_now >= 20_000
    page = open_console(browser, console_scale)
    head = page.locator(".opswb-qt-head")
    for title in ("ID", "Age ▲", "Tenant", "Reason", "Key", "Source", "Assignee"):
        expect(head).to_contain_text(title)
    wait_for_rows(page, ids(wb.list_exceptions(limit=PAGE)["items"]))  # oldest first
    expect(page.locator(".opswb-queue-counts")).to_contain_text(f"rows 1–{PAGE} of {open_now:,}")
    page.locator(".opswb-queue-next").click()
    wait_for_rows(page, ids(wb.list_exceptions(
        limit=PAGE, cursor=wb.list_exceptions(limit=PAGE)["next_cursor"])["items"]))
    expect(page.locator(".opswb-queue-counts")).to_contain_text(f"rows {PAGE + 1}–{2 * PAGE}")
    page.close()


def test_headers_sort_by_key_and_tenant_both_ways(browser, console_scale):
    wb = console_scale.wb
    page = open_console(browser, console_scale)
    for clicks, sort in ((("key",), "key"), (("key",), "-key"), (("tenant",), "tenant"),
                         (("tenant",), "-tenant")):
        for field in clicks:
            page.locator(f".opswb-sort-{field}").click()
        want = wb.list_exceptions(limit=PAGE, sort=sort)["items"]
        wait_for_rows(page, ids(want))
        arrow = " ▼" if sort.startswith("-") else " ▲"
        expect(page.locator(f".opswb-sort-{sort.lstrip('-')}")).to_contain_text(arrow)
    tenants = [r["tenant"] for r in rows(page)]
    assert tenants == sorted(tenants, reverse=True) and tenants[0] == max(
        t for t in wb.health()["open_by_tenant"] if t != "(none)")
    page.close()


def test_search_narrows_and_an_empty_result_says_so(browser, console_scale):
    wb = console_scale.wb
    page = open_console(browser, console_scale)
    search = page.locator(".opswb-queue-search input")
    search.fill("PAYOUT-000123")  # any case; keys payout-0001230 … payout-0001239
    search.press("Enter")
    want = wb.list_exceptions(limit=PAGE, q="payout-000123")["items"]
    assert len(want) == 10
    wait_for_rows(page, ids(want))
    assert all("payout-000123" in r["key"] for r in rows(page))
    search.fill("partner-webhook")  # a source
    search.press("Enter")
    wait_for_rows(page, ids(wb.list_exceptions(limit=PAGE, q="partner-webhook")["items"]))
    assert {r["source"] for r in rows(page)} == {"partner-webhook"}
    search.fill("no-such-key-anywhere")
    search.press("Enter")
    expect(page.locator(".opswb-queue-empty")).to_have_text(
        "No open exceptions match these filters")
    assert rows(page) == []
    page.close()


def test_ticking_and_viewing_never_change_each_other(browser, console_scale):
    page = open_console(browser, console_scale)
    first = rows(page)[:3]
    ticks = page.locator(".opswb-row:visible .opswb-row-tick input")
    ticks.nth(0).check()
    ticks.nth(2).check()
    expect(page.locator(".opswb-bulk-resolve")).to_have_text("Resolve 2 ticked exceptions")
    open_row(page, first[1]["id"])  # viewing a row ticks nothing
    expect(page.locator(".opswb-bulk-resolve")).to_have_text("Resolve 2 ticked exceptions")
    now = rows(page)[:3]
    assert [r["ticked"] for r in now] == [True, False, True]
    assert [r["viewed"] for r in now] == [False, True, False]
    ticks.nth(0).uncheck()  # unticking leaves the viewed row alone
    expect(page.locator(".opswb-bulk-resolve")).to_have_text("Resolve 1 ticked exception")
    expect(page.locator(".opswb-detail-title")).to_contain_text(f"Exception #{first[1]['id']} ·")
    page.close()


def test_a_deep_link_opens_the_same_view_in_a_new_page(browser, console_scale):
    wb = console_scale.wb
    (target,) = wb.list_exceptions(limit=1, tenant_id="acme",
                                   reason_code="IDEMPOTENCY_CONFLICT", sort="-key")["items"]
    cid = target["exception_id"]
    page = open_console(browser, console_scale)
    page.select_option(".opswb-filter-tenant select", label="acme")
    page.select_option(".opswb-filter-reason select", label="IDEMPOTENCY_CONFLICT")
    page.locator(".opswb-sort-key").click()
    page.locator(".opswb-sort-key").click()
    expect(view_button(page, cid)).to_be_visible()
    assert shown_ids(page)[0] == cid
    open_row(page, cid)
    title = f"opswb · #{cid} IDEMPOTENCY_CONFLICT"
    expect(page).to_have_title(title)
    page.wait_for_function("id => location.search.includes('exception=' + id)", arg=cid)
    query = parse_qs(urlsplit(page.url).query)
    assert query == {"exception": [cid], "tenant": ["acme"],
                     "reason": ["IDEMPOTENCY_CONFLICT"], "sort": ["-key"]}
    link = page.locator(".opswb-deep-link-a")
    assert link.get_attribute("href") == "?" + urlsplit(page.url).query

    other = browser.new_page(viewport={"width": WIDTHS[0], "height": 1100})
    other.goto(page.url)
    expect(other.locator(".opswb-detail-title")).to_contain_text(f"Exception #{cid} ·",
                                                                 timeout=60_000)
    expect(other).to_have_title(title)
    expect(other.locator(".opswb-filter-tenant select")).to_have_value("acme")
    expect(other.locator(".opswb-filter-reason select")).to_have_value("IDEMPOTENCY_CONFLICT")
    expect(other.locator(".opswb-sort-key")).to_contain_text("▼")
    expect(other.locator(".opswb-row-viewed .opswb-row-view")).to_have_text(f"#{cid}")
    expect(other.locator(".opswb-diff-left .opswb-diff-title")).to_contain_text("FIRST")
    # At 1,280 px the age column, and the last one, are inside the queue's box.
    box = other.locator(".opswb-qt").bounding_box()
    for cell in ("age", "assignee"):
        edge = other.locator(f".opswb-row:visible .opswb-cell-{cell}").first.bounding_box()
        assert edge["x"] + edge["width"] <= box["x"] + box["width"] + 1, cell
    # At 1,280 × 800 the queue's rows are on screen as the page opens, not below the fold.
    other.set_viewport_size({"width": WIDTHS[0], "height": 800})
    other.evaluate("() => window.scrollTo(0, 0)")
    top = other.locator(".opswb-row:visible").first.bounding_box()
    assert top["y"] + top["height"] <= 800, top
    other.set_viewport_size({"width": WIDTHS[0], "height": 1100})
    for width in WIDTHS:  # the README's pictures of the console
        picture = shot(other, f"scale-deep-link-{width}", width=width)
        (REPO / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(picture, REPO / "docs" / "img" / f"console-{width}.png")
    other.close()
    page.close()


def test_a_deep_link_works_with_preheated_kernels(browser, tmp_path):
    """A preheated kernel ran the notebook before the request: it must still read the
    page's query string (it waits for the request, then Voilà hands it the query), and
    show the store as it is at the request, not as it was when it made its widgets."""
    db = build_store(tmp_path / "store")
    wb = opswb.connect(db)
    (target,) = wb.list_exceptions(limit=1, reason_code="IDEMPOTENCY_CONFLICT")["items"]
    cid, tenant = target["exception_id"], target["tenant_id"]
    with serving(db, tmp_path, preheat=True) as server:
        page = browser.new_page()
        page.goto(f"{server.url}?exception={cid}&tenant={tenant}&sort=-key")
        expect(page.locator(".opswb-detail-title")).to_contain_text(f"Exception #{cid} ·",
                                                                    timeout=60_000)
        expect(page).to_have_title(f"opswb · #{cid} IDEMPOTENCY_CONFLICT")
        expect(page.locator(".opswb-filter-tenant select")).to_have_value(tenant)
        expect(page.locator(".opswb-sort-key")).to_contain_text("▼")
        page.close()
        # The next preheated kernel made its widgets before this decision; the page
        # it serves must still show the store as it is at the request.
        page = browser.new_page()
        page.wait_for_timeout(8_000)  # time for the next kernel to start and build
        wb.resolve(cid, action="mark_resolved_no_replay", actor="ann", resolution_notes="x")
        page.goto(server.url)
        expect(page.locator(".opswb-health-open")).to_have_text(
            str(wb.health()["exceptions_open"]), timeout=60_000)
        expect(view_button(page, cid)).to_have_count(0)
        assert cid not in [r["id"] for r in rows(page)]
        page.close()

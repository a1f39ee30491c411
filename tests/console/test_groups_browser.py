"""The failure-groups view in a real browser (issue 17's acceptance): Chromium driving
Voilà over a store of 100,000 arrivals with one failure group of ~20,000 open
``UNKNOWN_EVENT_TYPE`` exceptions (``opswb.testing.scale``).

The store is built once for the module (about half a minute). One test drives the whole
group decision: the group view lists the groups, the dry run shows the group's count,
the progress bar advances as batches commit, and the health bar ends with the group's
count fewer open exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

import opswb
from opswb.console.panels.groups import group_label
from opswb.testing.scale import GROUP_TYPE, write_scale_events
from tests.support.browser import READY as QUEUE_READY
from tests.support.browser import VIEWPORT, ConsoleServer, open_tab, rows, serving, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

READY = ".opswb-groups-pick select"


@pytest.fixture(scope="module")
def scale_console(tmp_path_factory) -> Iterator[ConsoleServer]:
    """The console (Voilà, embedded) over the scale store."""
    root = tmp_path_factory.mktemp("console-scale")
    db = str(root / "opswb.duckdb")
    opswb.connect(db).ingest(str(write_scale_events(root / "scale.jsonl", n=100_000,
                                                    unknown=20_000)))
    with serving(db, root) as server:
        yield server


def test_a_group_decision_on_twenty_thousand(scale_console, browser):
    wb = scale_console.wb
    group = next(g for g in wb.groups()["items"] if g["signature"] == GROUP_TYPE)
    count, before = group["count"], wb.health()["exceptions_open"]
    assert count >= 20_000
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(30_000)
    page.goto(scale_console.url)
    page.wait_for_selector(QUEUE_READY, timeout=90_000)  # the page opens on the queue
    open_tab(page, "Failure groups")
    listing = page.locator(".opswb-groups-list")
    expect(listing).to_contain_text(GROUP_TYPE)
    expect(listing.locator("tbody tr").first).to_contain_text(f"{count:,}")  # largest first
    page.select_option(READY, label=group_label(group))
    # Picking the group filters the queue: shown there, it lists the group's exceptions.
    page.locator(".opswb-groups-show").click()
    expect(page.locator(".opswb-tabs .lm-mod-current")).to_have_text("Queue · one group")
    expect(page.locator(".opswb-chip-group")).to_contain_text(group["group_id"])
    want = [e["exception_id"] for e in wb.list_exceptions(limit=25, group=group["group_id"])[
        "items"]]
    page.wait_for_function("want => Array.from(document.querySelectorAll('.opswb-row'))"
                           ".filter(r => r.offsetParent !== null).map(r => r.querySelector("
                           "'.opswb-row-view').textContent.trim().slice(1)).join() === "
                           "want.join()", arg=want)
    assert {r["reason"] for r in rows(page)} == {"UNKNOWN TYPE"}
    open_tab(page, "Failure groups")
    page.fill(".opswb-group-actor input", "browser-op")
    page.fill(".opswb-group-notes textarea", "payouts are not ours: ignore the group")
    page.click(".opswb-group-dry-run")
    expect(page.locator(".opswb-group-plan-count")).to_have_text(f"{count:,}",
                                                                  timeout=90_000)
    shot(page, "group-dry-run")
    confirm = page.locator(".opswb-group-confirm")
    expect(confirm).to_contain_text(f"decide {count:,} exceptions")
    width = "() => parseFloat(document.querySelector('.opswb-group-progress .progress-bar')" \
            ".style.width || '0')"
    confirm.click()
    page.wait_for_function(f"(({width})() > 0) && (({width})() < 100)", timeout=90_000)
    shot(page, "group-progress")
    page.wait_for_function(f"({width})() >= 100", timeout=300_000)
    expect(page.locator(".opswb-group-counts")).to_contain_text(f"resolved: {count:,}")
    expect(page.locator(".opswb-health-open")).to_have_text(str(before - count),
                                                            timeout=60_000)
    expect(listing).not_to_contain_text(GROUP_TYPE)
    # The decided group is gone, and with it the queue's group filter.
    expect(page.locator(".opswb-tabs .lm-TabBar-tab").first).to_have_text("Queue")
    shot(page, "group-decided")
    assert wb.health()["exceptions_open"] == before - count
    assert wb.verify_audit()["ok"]
    page.close()

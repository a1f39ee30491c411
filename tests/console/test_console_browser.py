"""The Ops Console in a real browser: Chromium driving Voilà over the sample store.

One console server per module (pages take seconds to become interactive); screenshots of
each step land in ``test-artifacts/console/``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.helpers import ev
from tests.support.browser import open_console, open_row, row_gone, rows, shot

pytestmark = pytest.mark.browser

PATCH = {"payload": {"ops_review": "console-check"}}
XSS_IMG = "<img src=x onerror=window.__pwned=1>"
XSS_SCRIPT = "<script>window.__pwned=1</script>"


def pick_targets(wb: Any) -> tuple[str, dict, dict]:
    """A tenant with a replayable conflict (a changed field) and an unknown-type exception."""
    tenants = wb.health()["open_by_tenant"]
    for tenant in sorted(t for t in tenants if t not in ("", "(none)")):
        items = wb.list_exceptions(tenant_id=tenant, limit=50)["items"]
        unknown = [e for e in items if e["reason_code"] == "UNKNOWN_EVENT_TYPE"]
        for e in items:
            if e["reason_code"] != "IDEMPOTENCY_CONFLICT" or not unknown:
                continue
            d = wb.exception(e["exception_id"])
            if d["diff"] and d["diff"]["changed"] and d["last"] and wb.preview(
                    d["exception_id"], d["last"]["raw_id"], PATCH)["valid"]:
                return tenant, d, unknown[0]
    pytest.fail("the store has no tenant with a replayable conflict and an unknown type")


def decide(page: Any, action: str, actor: str, notes: str) -> None:
    """Fill the resolve form, review, confirm."""
    page.select_option(".opswb-resolve-action select", label=action)
    page.fill(".opswb-resolve-actor input", actor)
    page.fill(".opswb-resolve-notes textarea", notes)
    review = page.locator(".opswb-resolve-review")
    expect(review).to_be_enabled()
    review.click()
    expect(page.locator(".opswb-resolve-confirm-text")).to_be_visible()
    page.locator(".opswb-resolve-confirm").click()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["local", "remote", "postgres"])
def test_operator_loop(browser, request, mode):
    console = request.getfixturevalue(f"console_{mode}")
    wb = console.wb
    tenant, conflict, unknown = pick_targets(wb)
    open_before = wb.health()["exceptions_open"]
    page = open_console(browser, console)
    expect(page.locator(".opswb-health-open")).to_have_text(str(open_before))
    shot(page, f"{mode}-1-queue")
    _filter_by_tenant(page, wb, tenant, mode)
    _open_conflict(page, conflict, mode)
    _override_and_replay(page, wb, conflict, open_before - 1, mode)
    _resolve_unknown(page, wb, unknown, open_before - 2, mode)
    page.close()


def _filter_by_tenant(page, wb, tenant: str, mode: str) -> None:
    """Filter by tenant: every row listed is that tenant's."""
    page.select_option(".opswb-filter-tenant select", label=tenant)
    expect(page.locator(".opswb-queue-counts")).to_contain_text(
        f"of {wb.health()['open_by_tenant'][tenant]}")
    page.wait_for_function(
        "t => Array.from(document.querySelectorAll('.opswb-row .opswb-cell-tenant'))"
        ".filter(c => c.offsetParent !== null).every(c => c.textContent === t)", arg=tenant)
    listed = rows(page)
    assert listed and all(r["tenant"] == tenant for r in listed)
    shot(page, f"{mode}-2-filtered")


def _open_conflict(page, conflict: dict, mode: str) -> None:
    """Open a conflict: FIRST and LAST side by side, the changed field marked on both."""
    first_id, last_id = conflict["first"]["raw_id"], conflict["last"]["raw_id"]
    open_row(page, conflict["exception_id"])
    left, right = page.locator(".opswb-diff-left"), page.locator(".opswb-diff-right")
    expect(left.locator(".opswb-diff-title")).to_contain_text(f"FIRST · raw #{first_id}")
    expect(right.locator(".opswb-diff-title")).to_contain_text(f"LAST · raw #{last_id}")
    path = conflict["diff"]["changed"][0]["path"]
    for side in (left, right):
        expect(side.locator(f'.opswb-diff-changed[data-path="{path}"]')).to_be_visible()
    lbox, rbox = left.bounding_box(), right.bounding_box()
    assert lbox["x"] + lbox["width"] <= rbox["x"] + 1 and abs(lbox["y"] - rbox["y"]) < 5
    expect(page.locator(".opswb-diff-summary")).to_contain_text(path)
    shot(page, f"{mode}-3-diff")


def _override_and_replay(page, wb, conflict: dict, open_after: int, mode: str) -> None:
    """Notes are required; then override and replay from LAST with a patch, the preview
    showing the resulting event; the replay is delivered and the queue shrinks."""
    cid, last_id = conflict["exception_id"], conflict["last"]["raw_id"]
    review = page.locator(".opswb-resolve-review")
    page.fill(".opswb-resolve-actor input", "alice")
    page.fill(".opswb-resolve-notes textarea", "   ")
    expect(review).to_be_disabled()  # blank notes: the button stays disabled
    shot(page, f"{mode}-4-notes-required")
    page.select_option(".opswb-resolve-action select", label="Override and replay")
    page.select_option(".opswb-resolve-canonical select", label=f"LAST · raw #{last_id}")
    page.fill(".opswb-resolve-patch textarea", json.dumps(PATCH))
    preview = page.locator(".opswb-resolve-preview")
    expect(preview).to_contain_text("✓ valid")
    expect(preview).to_contain_text('"ops_review": "console-check"')
    page.fill(".opswb-resolve-notes textarea", "customer confirmed the later amount")
    expect(review).to_be_enabled()
    review.click()
    expect(page.locator(".opswb-resolve-confirm-text")).to_contain_text(f"from raw #{last_id}")
    shot(page, f"{mode}-5-confirm")
    page.locator(".opswb-resolve-confirm").click()
    expect(page.locator(".opswb-resolve-status")).to_contain_text(
        f"exception {cid} resolved: override_and_replay by alice")
    expect(page.locator(".opswb-health-open")).to_have_text(str(open_after))
    row_gone(page, cid)
    expect(page.locator(".opswb-detail-title")).to_contain_text("resolved")
    shot(page, f"{mode}-6-replayed")
    ex = wb.exception(cid)
    assert (ex["status"], ex["action"], ex["actor"]) == ("resolved", "override_and_replay",
                                                         "alice")
    assert ex["canonical_raw_id"] == last_id and ex["override_patch"] == PATCH
    replay = ex["deliveries"][-1]
    assert replay["is_replay"] and replay["payload"]["ops_review"] == "console-check"
    assert ex["events_processed"]["state"] == "processed"


def _resolve_unknown(page, wb, unknown: dict, open_after: int, mode: str) -> None:
    """An unknown type, resolved without replay: ignored, nothing replayed."""
    xid = unknown["exception_id"]
    page.select_option(".opswb-filter-reason select", label="UNKNOWN_EVENT_TYPE")
    open_row(page, xid)
    decide(page, "Mark resolved, no replay", "alice", "type not supported yet; backlog")
    expect(page.locator(".opswb-resolve-status")).to_contain_text(
        f"exception {xid} resolved: mark_resolved_no_replay by alice")
    expect(page.locator(".opswb-health-open")).to_have_text(str(open_after))
    row_gone(page, xid)
    shot(page, f"{mode}-7-unknown-resolved")
    ex = wb.exception(xid)
    assert ex["status"] == "resolved" and ex["events_processed"]["state"] == "ignored"
    assert not any(d["is_replay"] for d in ex["deliveries"])


def test_event_text_is_shown_literally_and_never_run(browser, console_local):
    wb = console_local.wb
    wb.ingest([
        {"tenant_id": "acme", "idempotency_key": "xss-1", "event_type": "payment.captured",
         "source": "billing-api", "payload": {"note": XSS_IMG, "amount": 1}},
        {"tenant_id": "acme", "idempotency_key": "xss-1", "event_type": "payment.captured",
         "source": XSS_SCRIPT, "payload": {"note": XSS_SCRIPT, "amount": 1, XSS_IMG: 2}},
        {"tenant_id": "acme", "idempotency_key": "xss-2", "event_type": XSS_IMG,
         "source": XSS_SCRIPT, "payload": {"note": XSS_SCRIPT}},
    ])
    page = open_console(browser, console_local)
    for key in ("xss-1", "xss-2"):
        page.fill(".opswb-queue-search input", key)
        page.press(".opswb-queue-search input", "Enter")
        (item,) = wb.list_exceptions(idempotency_key=key)["items"]
        open_row(page, item["exception_id"])
    # xss-2 is shown now: its unknown type is in the header, as text.
    expect(page.locator(".opswb-detail-header")).to_contain_text(XSS_IMG)
    page.locator(".opswb-detail-sections").get_by_text("Timeline").click()
    expect(page.locator(".opswb-detail-timeline")).to_contain_text(XSS_SCRIPT)
    shot(page, "xss-2-unknown-type")
    # Back to xss-1: both versions in the diff show the markup literally.
    page.fill(".opswb-queue-search input", "xss-1")
    page.press(".opswb-queue-search input", "Enter")
    open_row(page, wb.list_exceptions(idempotency_key="xss-1")["items"][0]["exception_id"])
    expect(page.locator(".opswb-diff-left")).to_contain_text(XSS_IMG)
    expect(page.locator(".opswb-diff-right")).to_contain_text(XSS_SCRIPT)
    shot(page, "xss-1-diff")
    page.wait_for_timeout(500)  # give a broken image's onerror time to fire, if it could
    assert page.evaluate("window.__pwned") is None
    assert page.locator(".opswb-console img").count() == 0
    assert not page.evaluate(
        "Array.from(document.scripts).some(s => s.textContent.includes('__pwned'))")
    page.close()


def test_second_operator_sees_already_resolved(browser, console_local):
    wb = console_local.wb
    target = wb.list_exceptions(limit=1)["items"][0]["exception_id"]
    a, b = open_console(browser, console_local), open_console(browser, console_local)
    for page in (a, b):
        open_row(page, target)
    decide(a, "Mark resolved, no replay", "alice", "handled")
    expect(a.locator(".opswb-resolve-status")).to_contain_text(f"exception {target} resolved")
    decide(b, "Mark resolved, no replay", "bob", "handled too")
    status = b.locator(".opswb-resolve-status .opswb-error")
    expect(status).to_contain_text(f"exception {target} is already resolved by alice at")
    shot(b, "two-pages-second-refused")
    assert "Traceback" not in b.content()
    assert [e["actor"] for e in wb.audit(exception_id=target)] == ["alice"]
    a.close()
    b.close()


@pytest.mark.slow
def test_a_resolution_made_under_load_shows_at_once(browser, console_remote):
    """Eight clients keep posting single events to the served store while an operator
    resolves an exception in the console: the decision shows on the page (status, row
    gone from the queue), the load keeps being answered meanwhile, nothing fails."""
    wb = console_remote.wb
    target = wb.list_exceptions(limit=1)["items"][0]["exception_id"]
    stop, answered, failed = threading.Event(), [], []

    def post(client: int) -> None:
        with httpx.Client(base_url=wb.url, timeout=60,
                          headers={"Authorization": f"Bearer {wb.token}"}) as http:
            i = 0
            while not stop.is_set():
                r = http.post("/v1/events", json=ev(f"load-{client}-{i}"))
                (answered if r.status_code == 200 else failed).append(r.status_code)
                i += 1

    threads = [threading.Thread(target=post, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    try:
        page = open_console(browser, console_remote)
        open_row(page, target)
        before = len(answered)
        decide(page, "Mark resolved, no replay", "alice", "resolved under load")
        expect(page.locator(".opswb-resolve-status")).to_contain_text(
            f"exception {target} resolved")
        row_gone(page, target)
        during = len(answered) - before
        shot(page, "resolved-under-load")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failed
    assert during > 0  # the posts were answered while the decision was made
    assert wb.exception(target)["status"] == "resolved"
    assert [e["actor"] for e in wb.audit(exception_id=target)] == ["alice"]
    page.close()

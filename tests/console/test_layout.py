"""The console's layout (issue 17): the page opens on the queue; failure groups, audit,
four eyes and casework are made when first opened, and the groups still drive the queue.
Headless, over a real DuckDB store."""

from __future__ import annotations

import opswb
from opswb.console.panels import GroupsPanel, build_console
from opswb.console.panels.address import open_link
from opswb.console.panels.app import AUDIT, GROUPS, QUEUE
from opswb.console.panels.audit import AuditPanel


def ev(tenant: str, key: str, event_type: str, **payload) -> dict:
    return {"tenant_id": tenant, "idempotency_key": key, "event_type": event_type,
            "source": "billing-api", "payload": payload}


def _console(db_path):
    wb = opswb.connect(db_path)
    wb.ingest([ev("acme", f"u{i}", "invoice.paid", n=i) for i in range(3)]
              + [ev("globex", f"v{i}", "refund.sent", n=i) for i in range(2)]
              + [ev("acme", "c1", "order.created", total=1),
                 ev("acme", "c1", "order.created", total=2)])
    return wb, build_console(wb)


def test_the_page_opens_on_the_queue_and_makes_the_rest_on_first_opening(db_path):
    wb, console = _console(db_path)
    tabs = console.tabs.box
    assert tabs.titles == ("Queue", "Failure groups", "Audit") and tabs.selected_index == QUEUE
    assert console.queue in tabs.children[QUEUE].children[0].children
    assert len(console.queue.items) == 6
    assert console.tabs.made(GROUPS) is None and console.tabs.made(AUDIT) is None
    assert console.four_eyes.made(0) is None and console.case.made(0) is None
    assert console.four_eyes.box.selected_index is None  # folded
    tabs.selected_index = GROUPS  # as a click on the tab does
    groups = tabs.children[GROUPS]
    assert isinstance(groups, GroupsPanel) and groups is console.groups
    assert [g["count"] for g in groups.groups] == [3, 2, 1]
    tabs.selected_index = AUDIT
    assert isinstance(tabs.children[AUDIT], AuditPanel) and console.tabs.made(GROUPS)
    # A decision refreshes what has been made, and nothing else is made by it.
    ex_id = console.queue.items[0]["exception_id"]
    wb.resolve(ex_id, action="mark_resolved_no_replay", actor="ann", resolution_notes="x")
    console.after_decision()
    assert [e["exception_id"] for e in console.audit.entries] == [ex_id]
    assert console.four_eyes.made(0) is None and console.case.made(0) is None


def test_a_group_picked_filters_the_queue_and_a_linked_group_survives_the_tab(db_path):
    wb, console = _console(db_path)
    small = next(g for g in wb.groups()["items"] if g["signature"] == "refund.sent")
    open_link(console.queue, f"group={small['group_id']}")  # a deep link, before the tab
    assert console.tabs.box.titles[QUEUE] == "Queue · one group"
    assert {e["idempotency_key"] for e in console.queue.items} == {"v0", "v1"}
    console.tabs.show(GROUPS)
    assert console.groups.group_id == small["group_id"] == console.queue.group
    big = console.groups.groups[0]
    console.groups._pick.value = big["group_id"]  # as a pick in the list does
    assert console.queue.group == big["group_id"]
    assert {e["idempotency_key"] for e in console.queue.items} == {"u0", "u1", "u2"}
    console.show_group.click()  # "Show the group in the queue"
    assert console.tabs.box.selected_index == QUEUE
    console.queue.set_filters(group=None)  # cleared in the queue: the group view follows
    assert console.groups.group_id is None and console.tabs.box.titles[QUEUE] == "Queue"

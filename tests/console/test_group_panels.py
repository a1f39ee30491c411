"""Headless tests of the failure-groups panel (issue 17): the groups, a decision for a
whole group with its dry run, progress and per-item outcomes, on a real store (embedded
and served)."""

from __future__ import annotations

from opswb.console.panels import GroupsPanel, build_console
from opswb.console.panels.groups import ALLOW, IGNORE, LAST

XSS = "<img src=x onerror=window.__pwned=1>"
NOTE = {"actor": "ann", "notes": "one cause, one decision"}


def ev(tenant: str, key: str, event_type: str, **payload) -> dict:
    return {"tenant_id": tenant, "idempotency_key": key, "event_type": event_type,
            "source": "billing-api", "payload": payload}


def _store(wb):
    wb.ingest([ev(("acme", "globex")[i % 2], f"u{i}", "invoice.paid", n=i) for i in range(5)]
              + [ev("acme", "x1", XSS, n=1)]
              + [ev("acme", "c1", "order.created", total=1),
                 ev("acme", "c1", "order.created", total=2),
                 ev("acme", "c1", "order.created", total=3)])
    return wb


def _group(panel: GroupsPanel, signature) -> dict:
    return next(g for g in panel.groups if g["signature"] == signature)


def test_groups_largest_first_escaped_and_paged(wb):
    panel = GroupsPanel(_store(wb))
    panel.refresh()
    assert [g["count"] for g in panel.groups] == [5, 1, 1]
    assert panel._table.value.index("invoice.paid") < panel._table.value.index("/payload/total")
    assert XSS not in panel._table.value and "&lt;img src=x" in panel._table.value
    assert "acme, globex" in panel._table.value and "times in" in panel._table.value
    assert panel._pick.options[0][0].startswith("5 · UNKNOWN_EVENT_TYPE · invoice.paid")
    assert panel._more.disabled and panel._prev.disabled


def test_ignore_a_group_after_its_dry_run(wb):
    panel = GroupsPanel(_store(wb))
    panel.refresh()
    gid = _group(panel, "invoice.paid")["group_id"]
    panel.pick(gid)
    assert panel._pick.value == gid and panel._dry.disabled  # no notes yet
    panel.set_form(action=IGNORE, **NOTE)
    assert panel.run() is None and "dry run first" in panel.status.message
    plan = panel.dry_run()
    assert plan["count"] == 5 and not panel._confirm.disabled
    assert "Confirm: decide 5 exceptions" == panel._confirm.description
    assert '<span class="opswb-group-plan-count">5</span>' in panel._plan.value
    out = panel.run()
    assert out["counts"] == {"resolved": 5}
    assert (panel.progress.value, panel.progress.max) == (5, 5)
    assert "resolved: 5" in panel._summary.value
    assert wb.health()["exceptions_open"] == 2
    assert gid not in [g["group_id"] for g in panel.groups]  # the list was refreshed
    assert {e["action"] for e in wb.audit(actor="ann")} == {"mark_resolved_no_replay"}


def test_allow_the_type_for_one_tenant_then_replay(wb):
    panel = GroupsPanel(_store(wb))
    panel.refresh()
    panel.pick(_group(panel, "invoice.paid")["group_id"])
    panel.set_form(action=ALLOW, **NOTE)
    assert [v for _, v in panel._tenant.options] == ["", "acme", "globex"]
    panel.set_form(tenant="acme")
    plan = panel.dry_run()
    assert {s["tenant_id"]: s["would"] for s in plan["sample"]} == {
        "acme": "resolve", "globex": "refuse"}
    assert "First allow <b>invoice.paid</b> for <b>acme</b>" in panel._plan.value
    out = panel.run()
    assert out["counts"] == {"resolved": 3, "invalid": 2}
    assert "allowlist" in panel._summary.value and "opswb-group-failures" in panel._summary.value
    replays = [d for d in wb.deliveries()["items"] if d["replay"]]
    assert sorted(d["idempotency_key"] for d in replays) == ["u0", "u2", "u4"]
    assert any(t["event_type"] == "invoice.paid" and t["tenant_id"] == "acme"
               for t in wb.types())


def test_choose_last_for_a_conflict_group(wb):
    panel = GroupsPanel(_store(wb))
    panel.refresh()
    panel.pick(next(g for g in panel.groups if g["reason_code"] == "IDEMPOTENCY_CONFLICT")[
        "group_id"])
    panel.set_form(action=LAST, **NOTE)
    assert panel.dry_run()["count"] == 1
    assert panel.run()["counts"] == {"resolved": 1}
    replay = next(d for d in wb.deliveries()["items"] if d["replay"])
    assert replay["payload"] == {"total": 3}


def test_a_group_decision_refreshes_the_console(wb):
    console = build_console(_store(wb))
    assert console.health.exceptions_open == 7
    gid = _group(console.groups, "invoice.paid")["group_id"]
    console.groups.pick(gid)
    console.groups.set_form(action=IGNORE, **NOTE)
    console.groups.dry_run()
    console.groups.run()
    assert console.health.exceptions_open == 2
    assert len(console.queue.items) == 2


# ---- panels that fit the reason ----------------------------------------------------------

def _by_key(wb) -> dict:
    return {e["idempotency_key"]: e["exception_id"]
            for e in wb.list_exceptions(limit=None)["items"]}


def test_an_unknown_type_shows_its_reach_not_a_diff(wb):
    console = build_console(_store(wb))
    console.queue.selected_id = _by_key(wb)["u1"]
    reason = console.detail._reason.value
    assert '<b class="opswb-unknown-type">invoice.paid</b>' in reason
    assert "<b>5</b> open key(s) across <b>2</b> tenant(s)" in reason
    assert "(acme, globex)" in reason
    assert console.diff.layout.display == "none"
    assert console.detail._allow.layout.display == ""
    console.detail.ask_allow()  # "Allow this type and replay its group…"
    assert console.groups.group_id == console.detail.detail["group_id"]
    assert console.groups._action.value == ALLOW
    console.queue.selected_id = _by_key(wb)["c1"]  # a conflict: the diff is back
    assert console.diff.layout.display == "" and console.detail._reason.value == ""
    assert console.detail._allow.layout.display == "none"


def test_an_invalid_arrival_shows_its_rule_and_raw_text(db_path):
    import opswb
    from opswb.console.panels import DetailPanel

    wb = opswb.connect(db_path)
    wb.ingest_batch([f"[{XSS}]", {"tenant_id": "acme", "idempotency_key": "m1"}])
    panel = DetailPanel(wb)
    ids = [e["exception_id"] for e in wb.list_exceptions()["items"]]
    panel.show(ids[0])
    reason = panel._reason.value
    assert '<b class="opswb-invalid-rule">not_an_object</b>' in reason
    assert XSS not in reason and "&lt;img src=x onerror=window.__pwned=1&gt;" in reason
    panel.show(ids[1])
    assert '<b class="opswb-invalid-rule">missing_field</b>' in panel._reason.value
    assert "&quot;idempotency_key&quot;:&quot;m1&quot;" in panel._reason.value
    assert panel._allow.layout.display == "none"


def test_times_in_the_operators_zone_and_readable_fields(db_path, monkeypatch):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import opswb
    from opswb.console.panels import DetailPanel

    monkeypatch.setenv("OPSWB_TZ", "Asia/Tokyo")
    wb = opswb.connect(db_path)
    _store(wb)
    panel = DetailPanel(wb)
    panel.show(_by_key(wb)["c1"])
    d = panel.detail
    tokyo = datetime.fromisoformat(d["created_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert f"opened {tokyo:%Y-%m-%d %H:%M:%S}" in panel._header.value
    assert "times in Asia/Tokyo" in panel._header.value
    assert "<td>changed paths</td><td>/payload/total</td>" in panel._header.value
    record = panel._record.value
    assert "<td>state</td><td>quarantined</td>" in record
    assert "<td>arrival count</td><td>3</td>" in record and "{" not in record
    arrival = d["arrivals"][0]["received_at"]
    assert (f"{datetime.fromisoformat(arrival).astimezone(ZoneInfo('Asia/Tokyo')):%H:%M:%S}"
            in panel._timeline.value)


def test_the_preview_is_cleared_after_a_resolution(wb):
    console = build_console(_store(wb))
    console.queue.selected_id = _by_key(wb)["c1"]
    console.resolve.set_form(actor="ann", notes="keep the latest")
    assert "opswb-preview" in console.resolve._preview.value  # the replay's preview
    console.resolve.submit()
    assert console.detail.detail["status"] == "resolved"
    assert console.resolve._preview.value == "" and console.resolve.preview is None

"""Headless panel tests: build each panel over a real store (embedded and served), set
widget values, call the public methods, check what the widgets show and the store rows."""

from __future__ import annotations

import pytest

from opswb.console.panels import (
    AuditPanel,
    BulkPanel,
    DetailPanel,
    DiffPanel,
    HealthBar,
    QueuePanel,
    ResolvePanel,
    build_console,
)
from opswb.console.panels.diff import json_lines
from tests.support.people import decided

XSS_IMG = "<img src=x onerror=window.__pwned=1>"
XSS_SCRIPT = "<script>window.__pwned=1</script>"


def ev(tenant: str, key: str, event_type: str, **payload) -> dict:
    return {"tenant_id": tenant, "idempotency_key": key, "event_type": event_type,
            "source": "billing-api", "payload": payload}


@pytest.fixture
def store(wb):
    """The workbench over a store with two conflicts, an unknown type and an invalid line."""
    wb.ingest([
        ev("acme", "k1", "payment.captured", amount=100, currency="EUR", customer={"id": "c1"}),
        ev("acme", "k1", "payment.captured", amount=120, currency="EUR", customer={"id": "c1"},
           note="late fix"),
        ev("acme", "k2", "payment.chargeback", amount=5),
        ev("globex", "k3", "order.created", total=1),
        ev("globex", "k3", "order.created", total=2),
        "not an event",
    ])
    return wb


def ids_by_key(wb) -> dict:
    return {e["idempotency_key"]: e["exception_id"] for e in wb.list_exceptions()["items"]}


def test_health_bar_shows_the_figures(store):
    bar = HealthBar(store)
    assert bar.exceptions_open == 4
    assert bar.figures["idempotency"] == {"processed": 0, "quarantined": 3, "ignored": 0}
    html = bar._summary.value
    assert ">4</span> exceptions open" in html and "IDEMPOTENCY_CONFLICT <b>2</b>" in html
    assert "quarantined <b>3</b>" in html


def test_queue_lists_oldest_first_filters_and_pages(store):
    q = QueuePanel(store, page_size=2)
    assert [e["idempotency_key"] for e in q.items] == ["k1", "k2"]
    assert "rows 1–2 of 4" in q._counts.value
    q.next_page()
    assert [e["idempotency_key"] for e in q.items] == ["k3", None]
    assert q._next_b.disabled and not q._prev.disabled
    q.previous_page()
    assert [e["idempotency_key"] for e in q.items] == ["k1", "k2"]

    q._tenant.value = "globex"  # as a user picks it in the dropdown
    assert [e["idempotency_key"] for e in q.items] == ["k3"]
    assert "of 1" in q._counts.value
    q.set_filters(reason_code="UNKNOWN_EVENT_TYPE")
    assert [e["idempotency_key"] for e in q.items] == ["k2"]
    q.set_filters(idempotency_key="k1")
    assert [e["reason_code"] for e in q.items] == ["IDEMPOTENCY_CONFLICT"]
    q.set_filters(status="resolved")
    assert q.items == [] and "no rows" in q._counts.value


def test_queue_ticks_and_the_viewed_row_never_change_each_other(store):
    q = QueuePanel(store)
    ids = [e["exception_id"] for e in q.items]
    q.table.rows[0].tick.value = True  # as a user ticks the box
    q.table.rows[2].tick.value = True
    assert q.selected_ids == [ids[0], ids[2]] and q.selected_id is None
    assert "2 ticked" in q._counts.value
    q.table.rows[1].view.click()  # as a user clicks the row's #id
    assert q.selected_id == ids[1] and q.selected_ids == [ids[0], ids[2]]
    assert "opswb-row-viewed" in q.table.rows[1]._dom_classes
    q.table.rows[0].tick.value = False
    assert q.selected_ids == [ids[2]] and q.selected_id == ids[1]
    q.refresh()  # ticks survive a refresh
    assert q.selected_ids == [ids[2]] and q.table.rows[2].tick.value
    q.table._tick_all.value = True
    assert sorted(q.selected_ids) == sorted(ids)
    store.resolve(ids[2], action="mark_resolved_no_replay", actor="ann", resolution_notes="x")
    q.refresh()  # a row no longer listed is no longer ticked
    assert sorted(q.selected_ids) == sorted(ids[:2] + ids[3:]) and q.selected_id == ids[1]
    q.set_filters(tenant_id="acme")  # only acme's rows stay ticked
    assert sorted(q.selected_ids) == sorted(ids[:2]) == sorted(ids_by_key(store)[k]
                                                                for k in ("k1", "k2"))


def test_queue_headers_sort_both_ways_and_search_narrows(store):
    q = QueuePanel(store)
    assert [e["idempotency_key"] for e in q.items] == ["k1", "k2", "k3", None]
    q.table._heads["key"].click()
    assert q.table.sort == "key" and q.table._heads["key"].description == "Key ▲"
    assert [e["idempotency_key"] for e in q.items] == [None, "k1", "k2", "k3"]
    q.table._heads["key"].click()
    assert q.table.sort == "-key" and q.items[0]["idempotency_key"] == "k3"
    q.table._heads["tenant"].click()
    assert [e["tenant_id"] for e in q.items] == [None, "acme", "acme", "globex"]
    q._search.value = "K3"
    assert [e["idempotency_key"] for e in q.items] == ["k3"]
    q._search.value = "nothing-like-this"
    assert q.items == [] and "No open exceptions match these filters" in q.table._empty.value
    q.set_filters(tenant_id="(none)")
    assert [e["reason_code"] for e in q.items] == ["INVALID_EVENT"]
    assert ("(none): no tenant", "(none)") in q._tenant.options


def test_queue_group_filter_shows_and_clears(store):
    q = QueuePanel(store)
    group = store.groups()["items"][0]
    q.group = group["group_id"]
    assert len(q.items) == group["count"] and group["group_id"] in q._chips.value
    assert q._filter_line.layout.display is None
    q._clear.click()
    assert q.group is None and len(q.items) == 4 and q._filter_line.layout.display == "none"


def test_queue_rows_escape_event_text(wb):
    wb.ingest([ev("acme", XSS_IMG, "weird.type", a=1), ev(XSS_SCRIPT, "k", "weird.type")])
    q = QueuePanel(wb)
    cells = "".join(r.cells.value for r in q.table.rows)
    assert "<img" not in cells and "<script" not in cells and "&lt;img src=x" in cells


def test_deep_link_round_trip_and_title(store):
    from opswb.console.deeplink import page_title, query_from_state, state_from_query

    state = {"exception": "12", "tenant_id": "acme & co", "q": "k 1", "sort": "-key",
             "status": "open", "group": None}
    qs = query_from_state(state)
    assert qs == "exception=12&tenant=acme+%26+co&q=k+1&sort=-key"
    assert state_from_query(qs + "&voila-theme=dark&bogus=1") == {
        "exception": "12", "tenant_id": "acme & co", "q": "k 1", "sort": "-key"}
    assert page_title("12", "IDEMPOTENCY_CONFLICT") == "opswb · #12 IDEMPOTENCY_CONFLICT"
    console = build_console(store)
    target = ids_by_key(store)["k3"]
    console.queue.set_filters(tenant_id="globex", sort="-age")
    console.queue.show_exception(target)
    assert console.address.query == f"exception={target}&tenant=globex&sort=-age"
    assert console.address.title == f"opswb · #{target} IDEMPOTENCY_CONFLICT"
    assert "history.replaceState" in str(console.address._script.outputs)


def test_console_opens_what_a_deep_link_asks_for(store, monkeypatch):
    target = ids_by_key(store)["k2"]
    monkeypatch.setenv("QUERY_STRING", f"exception={target}&reason=UNKNOWN_EVENT_TYPE&q=k")
    console = build_console(store)
    assert console.queue.selected_id == target and console.detail.detail["exception_id"] == target
    assert [e["idempotency_key"] for e in console.queue.items] == ["k2"]
    assert console.queue._reason.value == "UNKNOWN_EVENT_TYPE" and console.queue._search.value == "k"
    monkeypatch.setenv("QUERY_STRING", "sort=size")  # a bad value: said, nothing shown wrong
    console = build_console(store)
    assert console.queue.status.is_error and "invalid sort" in console.queue.status.message


def test_detail_shows_reason_payload_record_and_timeline(store):
    d = DetailPanel(store)
    d.show(ids_by_key(store)["k1"])
    assert "IDEMPOTENCY_CONFLICT" in d._header.value and "late fix" in d._payload.value
    assert "<td>state</td><td>quarantined</td>" in d._record.value
    timeline = d._timeline.value
    assert timeline.count("opswb-tl-arrival") == 2 and timeline.count("opswb-tl-delivery") == 1
    assert "FIRST" in timeline and "LAST" in timeline
    d.show("999999")
    assert d.status.is_error and "999999" in d.status.message


def test_diff_marks_changed_and_added_fields_and_compares_any_two(store):
    detail = DetailPanel(store)
    diff = DiffPanel(store)
    detail.observe(lambda c: setattr(diff, "detail", c["new"]), names="detail")
    detail.show(ids_by_key(store)["k1"])
    assert diff.diff["changed"] == [{"path": "/payload/amount", "first": 100, "last": 120}]
    assert [a["path"] for a in diff.diff["added"]] == ["/payload/note"]
    assert 'opswb-diff-changed" data-path="/payload/amount">    &quot;amount&quot;: 100,' \
        in diff._left_view.value
    assert 'opswb-diff-changed" data-path="/payload/amount">    &quot;amount&quot;: 120,' \
        in diff._right_view.value
    assert 'opswb-diff-added" data-path="/payload/note"' in diff._right_view.value
    raws = [c for c in diff.choices if c.startswith("raw:")]
    diff.compare(raws[0], raws[0])
    assert diff.diff == {"changed": [], "added": [], "removed": []}
    assert "same version twice" in diff._summary.value


def test_json_lines_carry_pointer_paths():
    lines = json_lines({"a/b": [1, {"c": None}]})
    assert ("/a~1b/1/c", '      "c": null') in lines


def resolve_panel(wb, key: str) -> ResolvePanel:
    panel = ResolvePanel(wb)
    panel.detail = wb.exception(ids_by_key(wb)[key])
    return panel


def test_resolve_refuses_blank_notes_and_changes_nothing(store):
    panel = resolve_panel(store, "k1")
    trail = store.audit()  # over a server: the people's tokens (tests/support/people.py)
    panel.set_form(actor="alice", notes="   ")
    assert panel._review.disabled and not panel.can_submit
    panel.submit()
    assert panel.status.is_error and "resolution_notes" in panel.status.message
    ex = store.exception(panel.exception_id)
    assert ex["status"] == "open" and ex["decisions"] == [] and store.audit() == trail


def test_resolve_override_and_replay_with_canonical_and_patch(store):
    panel = resolve_panel(store, "k1")
    first, last = panel.detail["first"]["raw_id"], panel.detail["last"]["raw_id"]
    panel.set_form(action="override_and_replay", actor="alice", notes="customer confirmed")
    panel.set_form(canonical_raw_id=first, patch='{"payload": {"amount": 110}}')
    assert panel.preview["valid"] and panel.preview["event"]["payload"]["amount"] == 110
    assert "&quot;amount&quot;: 110" in panel._preview.value and not panel._review.disabled
    panel.set_form(patch='{"tenant_id": "other"}')  # identity may not be patched
    assert not panel.preview["valid"] and panel._review.disabled
    assert "may not change tenant_id" in panel._preview.value
    panel.set_form(patch="{not json")
    assert "not valid JSON" in panel._preview.value and panel._review.disabled
    panel.set_form(patch='{"payload": {"amount": 110}}')
    panel.review()
    assert panel._confirm_box.layout.display == "flex"
    assert f"from raw #{first}" in panel._confirm_text.value
    panel.submit()
    assert not panel.status.is_error and "resolved: override_and_replay by alice" \
        in panel.status.message
    ex = store.exception(panel.exception_id)
    assert ex["status"] == "resolved" and ex["canonical_raw_id"] == first != last
    assert ex["override_patch"] == {"payload": {"amount": 110}}
    replay = ex["deliveries"][-1]
    assert replay["is_replay"] and replay["payload"]["amount"] == 110
    assert ex["events_processed"]["state"] == "processed"
    assert panel.result["exception_id"] == panel.exception_id


def test_second_resolve_shows_who_resolved_it(store):
    a, b = resolve_panel(store, "k2"), resolve_panel(store, "k2")
    for panel, actor in ((a, "alice"), (b, "bob")):
        panel.set_form(action="mark_resolved_no_replay", actor=actor, notes="backlog")
    a.submit()
    b.submit()
    assert b.status.is_error
    assert b.status.message.startswith(f"exception {a.exception_id} is already resolved by alice at")
    assert [e["actor"] for e in decided(store.audit())] == ["alice"]


def test_actor_is_prefilled_from_opswb_actor(store, monkeypatch):
    monkeypatch.setenv("OPSWB_ACTOR", "carol")
    assert ResolvePanel(store)._actor.value == "carol"
    assert BulkPanel(store)._actor.value == "carol"


def test_bulk_resolve_reports_each_item(store):
    ids = ids_by_key(store)
    store.resolve(ids["k3"], action="mark_resolved_no_replay", actor="alice", resolution_notes="x")
    bulk = BulkPanel(store)
    bulk.selected_ids = [ids["k1"], ids["k3"]]
    bulk.set_form(action="mark_resolved_no_replay", actor="bob", notes="")
    assert bulk._go.disabled and bulk._go.description == "Resolve 2 ticked exceptions"
    bulk.set_form(notes="duplicate noise")
    assert not bulk._go.disabled
    out = bulk.resolve_selected()
    assert [r["status"] for r in out["results"]] == ["resolved", "conflict"]
    assert bulk.status.is_error and bulk.status.message == "1 of 2 resolved"
    assert "already resolved by alice" in bulk._results.value
    assert store.exception(ids["k1"])["actor"] == "bob"


def test_audit_filters_by_actor_and_tenant(store):
    ids = ids_by_key(store)
    store.resolve(ids["k1"], action="mark_resolved_no_replay", actor="alice", resolution_notes="a")
    store.resolve(ids["k3"], action="mark_resolved_no_replay", actor="bob", resolution_notes="b")
    audit = AuditPanel(store)
    assert [e["actor"] for e in decided(audit.entries)] == ["bob", "alice"]
    audit._actor.value = "alice"
    assert [e["tenant_id"] for e in audit.entries] == ["acme"]
    audit.set_filters(tenant_id="globex")
    assert [e["actor"] for e in audit.entries] == ["bob"] and "globex" in audit._table.value


def test_console_refreshes_queue_health_and_detail_after_a_decision(store):
    console = build_console(store)
    target = ids_by_key(store)["k2"]
    console.queue.show_exception(target)
    assert console.resolve.exception_id == target and console.diff.diff is not None
    console.resolve.set_form(action="mark_resolved_no_replay", actor="alice", notes="later")
    console.resolve.review()
    console.resolve.submit()
    assert console.health.exceptions_open == 3
    assert target not in [e["exception_id"] for e in console.queue.items]
    assert console.detail.detail["status"] == "resolved"
    assert "resolved" in console.detail._header.value
    assert [e["actor"] for e in decided(console.audit.entries)] == ["alice"]
    assert console.resolve._review.disabled  # nothing left to decide on this one


def test_event_text_is_escaped_everywhere(wb):
    wb.ingest([ev("acme", "x1", "payment.captured", note=XSS_IMG),
               ev("acme", "x1", "payment.captured", note=XSS_SCRIPT, **{XSS_IMG: 1})])
    console = build_console(wb)
    console.queue.show_exception(ids_by_key(wb)["x1"])
    html = [console.detail._header.value, console.detail._payload.value,
            console.detail._timeline.value, console.diff._left_view.value,
            console.diff._right_view.value, console.diff._summary.value,
            console.resolve._preview.value]
    for value in html:
        assert "<img" not in value and "<script" not in value
    assert "&lt;img src=x onerror=window.__pwned=1&gt;" in console.diff._left_view.value
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in console.diff._right_view.value


def test_console_notebook_is_thin_and_clean():
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).parents[2] / "notebooks" / "console.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert code[0]["metadata"]["tags"] == ["parameters"]
    assert 'os.environ.get("OPSWB_DB", "data/opswb.duckdb")' in "".join(code[0]["source"])
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert "build_console(opswb.connect(db))" in "".join(code[-1]["source"])


def test_console_command_serves_loopback_with_culling(tmp_path):
    from opswb.console.launch import console_command, console_env

    cmd = console_command(8899)
    assert cmd[1:3] == ["-m", "voila"] and cmd[3].endswith("notebooks/console.ipynb")
    assert {"--no-browser", "--port=8899", "--Voila.ip=127.0.0.1"} <= set(cmd)
    assert "--Voila.port_retries=0" in cmd  # a busy port fails; no silent move elsewhere
    assert any(a.startswith("--MappingKernelManager.cull_idle_timeout=") for a in cmd)
    assert any(a.startswith("--MappingKernelManager.cull_interval=") for a in cmd)
    # Voilà starts kernels in the notebook's folder: a relative store path must not move.
    assert console_env("rel/opswb.duckdb")["OPSWB_DB"].startswith("/")
    assert console_env("http://127.0.0.1:8765")["OPSWB_DB"] == "http://127.0.0.1:8765"
    pg = "postgresql://ops@db.internal:5432/opswb"
    assert console_env(pg)["OPSWB_DB"] == pg

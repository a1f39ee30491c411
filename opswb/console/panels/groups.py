"""GroupsPanel: failure groups largest first, and one decision for a whole group.

The operator picks a group (``group_id``, which the app links to the queue's filter),
chooses what to do with all of it, sees a dry run — how many, and what would become of
a sample (``workbench.plan.bulk_plan``) — and only then confirms. The decision runs in
batches of ``BATCH`` through ``resolve_many`` (so a local and a remote workbench both
show progress), the progress bar moving as each batch commits, and ends with a count of
outcomes and the failures listed. ``result`` is set when it ends.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import ipywidgets as widgets
import traitlets

from opswb.console.panels._common import (
    StatusLine,
    button,
    classed,
    esc,
    local_time,
    shows_errors,
    table,
    zone_label,
)
from opswb.console.panels.resolve import NO_REPLAY, REPLAY, default_actor
from opswb.core.errors import InvalidRequest
from opswb.workbench.plan import bulk_plan

IGNORE, AS_RECEIVED, ALLOW, LAST = "ignore", "as_received", "allow", "last"
ACTIONS = (("Ignore all (resolve, no replay)", IGNORE),
           ("Replay all as received", AS_RECEIVED),
           ("Allow the type, then replay all", ALLOW),
           ("Choose LAST for all conflicts", LAST))
ALL_TENANTS = ""
PAGE = 20
BATCH = 1000
MAX_FAILURES = 50


def decision_of(choice: str) -> tuple[str, str | None]:
    """(action, canonical_raw_id) of a group decision choice."""
    return {IGNORE: (NO_REPLAY, None), AS_RECEIVED: (REPLAY, None), ALLOW: (REPLAY, None),
            LAST: (REPLAY, "last")}[choice]


class GroupsPanel(widgets.VBox):
    """Groups, the picked one as ``group_id``; ``result`` is a finished group decision."""

    group_id = traitlets.Unicode(None, allow_none=True)
    result = traitlets.Dict(None, allow_none=True)

    def __init__(self, wb: Any) -> None:
        self.wb = wb
        self.groups: list[dict] = []
        self.plan: dict | None = None
        self._cursors: list[str | None] = [None]
        self._next: str | None = None
        self._table = classed(widgets.HTML(), "opswb-groups-table")
        self._pick = classed(widgets.Select(options=[], rows=6, description="Group",
                                            layout=widgets.Layout(width="98%")),
                             "opswb-groups-pick")
        self._prev = button("◀ Prev", "opswb-groups-prev")
        self._more = button("Next ▶", "opswb-groups-next")
        self._action = classed(widgets.Dropdown(options=ACTIONS, value=IGNORE,
                                                description="Action"), "opswb-group-action")
        self._tenant = classed(widgets.Dropdown(options=[("all tenants", ALL_TENANTS)],
                                                description="Allow for"), "opswb-group-tenant")
        self._actor = classed(widgets.Text(value=default_actor(), description="Actor"),
                              "opswb-group-actor")
        self._notes = classed(widgets.Textarea(description="Notes", placeholder="why (required)"),
                              "opswb-group-notes")
        self._dry = button("Dry run", "opswb-group-dry-run", "info")
        self._plan = classed(widgets.HTML(), "opswb-group-plan")
        self._confirm = button("Confirm", "opswb-group-confirm", "danger")
        self.progress = classed(widgets.IntProgress(value=0, min=0, max=1,
                                                    description="Progress"),
                                "opswb-group-progress")
        self._summary = classed(widgets.HTML(), "opswb-group-summary")
        self.status = StatusLine("opswb-groups-status")
        self.nav = widgets.HBox([self._prev, self._more])  # the app adds to it
        self._wire()
        self._form = [self._action, self._actor, self._notes, self._dry, self._confirm]
        super().__init__([
            widgets.HTML("<h3>Failure groups</h3>"), self._table, self._pick,
            self.nav, self._action, self._tenant, self._actor,
            self._notes, widgets.HBox([self._dry, self._confirm]), self._plan, self.progress,
            self._summary, self.status])
        self.add_class("opswb-groups")
        self.update_form()

    def _wire(self) -> None:
        self._pick.observe(self._on_pick_change, names="value")
        for w in (self._action, self._tenant, self._actor, self._notes):
            w.observe(self._on_form_change, names="value")
        self._prev.on_click(self._on_prev_click)
        self._more.on_click(self._on_more_click)
        self._dry.on_click(self._on_dry_click)
        self._confirm.on_click(self._on_confirm_click)

    def _on_pick_change(self, change: dict) -> None:
        self.group_id = change["new"]

    def _on_form_change(self, _change: dict) -> None:
        self.update_form()

    def _on_prev_click(self, _b: widgets.Button) -> None:
        self.page(-1)

    def _on_more_click(self, _b: widgets.Button) -> None:
        self.page(+1)

    def _on_dry_click(self, _b: widgets.Button) -> None:
        self.dry_run()

    def _on_confirm_click(self, _b: widgets.Button) -> None:
        self.run()

    @traitlets.observe("group_id")
    def _on_group_id_change(self, change: dict) -> None:
        if self._pick.value != change["new"] and change["new"] in self._ids():
            self._pick.value = change["new"]
        self.update_form()

    def _ids(self) -> list[str]:
        return [g["group_id"] for g in self.groups]

    @property
    def picked(self) -> dict | None:
        """The picked group's row, if it is on this page."""
        return next((g for g in self.groups if g["group_id"] == self.group_id), None)

    # ---- the list --------------------------------------------------------------------
    @shows_errors
    def refresh(self) -> None:
        """Load the current page of open groups again."""
        page = self.wb.groups(status="open", limit=PAGE, cursor=self._cursors[-1])
        self.groups, self._next = page["items"], page["next_cursor"]
        self._table.value = groups_table(self.groups)
        keep = self.group_id if self.group_id in self._ids() else None
        self._pick.options = [(group_label(g), g["group_id"]) for g in self.groups]
        self._pick.value = keep
        self.group_id = keep
        self._prev.disabled = len(self._cursors) == 1
        self._more.disabled = self._next is None

    def page(self, step: int) -> None:
        """The next (+1) or previous (-1) page."""
        if step > 0 and self._next is not None:
            self._cursors.append(self._next)
        elif step < 0 and len(self._cursors) > 1:
            self._cursors.pop()
        self.refresh()

    def pick(self, group_id: str) -> None:
        """Pick a group (as a click in the list does)."""
        self.group_id = group_id

    def decision_form(self, shown: bool) -> None:
        """Show or hide the decision form (a viewer only reads the groups)."""
        for w in self._form:
            w.layout.display = "" if shown else "none"

    def set_form(self, action: str | None = None, actor: str | None = None,
                 notes: str | None = None, tenant: str | None = None) -> None:
        """Fill the decision form (None leaves a field as it is)."""
        for w, v in ((self._action, action), (self._actor, actor), (self._notes, notes),
                     (self._tenant, tenant)):
            if v is not None:
                w.value = v

    def update_form(self) -> None:
        """Tenants to allow for, which buttons work; any change voids the dry run."""
        g = self.picked
        tenants = [t for t in (g or {}).get("tenants") or [] if t]
        options = [("all tenants", ALL_TENANTS)] + [(t, t) for t in tenants]
        if list(self._tenant.options) != options:
            self._tenant.options = options
        unknown = bool(g) and g["reason_code"] == "UNKNOWN_EVENT_TYPE"
        self._tenant.layout.display = "" if self._action.value == ALLOW else "none"
        ready = bool(g and self._actor.value.strip() and self._notes.value.strip())
        if self._action.value == ALLOW and not unknown:
            ready = False
        self._dry.disabled = not ready
        self.plan = None
        self._plan.value = ""
        self._confirm.disabled = True
        self._confirm.description = "Confirm"

    # ---- the decision ------------------------------------------------------------------
    @shows_errors
    def dry_run(self) -> dict | None:
        """Count and sample what the decision would do; writes nothing."""
        g = self._require_group()
        action, canonical = decision_of(self._action.value)
        if self._action.value == ALLOW and g["reason_code"] != "UNKNOWN_EVENT_TYPE":
            raise InvalidRequest("allowing a type applies to UNKNOWN_EVENT_TYPE groups")
        plan = bulk_plan(self.wb, filter={"group": g["group_id"]}, action=action,
                         canonical_raw_id=canonical)
        if self._action.value == ALLOW:
            plan = _as_if_allowed(plan, self._tenant.value)
        self._plan.value = plan_html(plan, self._action.value, g, self._tenant.value)
        self.plan = plan
        self._confirm.disabled = plan["count"] == 0
        self._confirm.description = f"Confirm: decide {plan['count']:,} exceptions"
        self.status.ok(f"dry run: {plan['count']:,} open exceptions in the group")
        return plan

    @shows_errors
    def run(self) -> dict | None:
        """Commit the dry-run decision for the whole group, batch by batch."""
        if self.plan is None:
            raise InvalidRequest("do a dry run first")
        g = self._require_group()
        action, canonical = decision_of(self._action.value)
        actor, notes = self._actor.value, self._notes.value
        if self._action.value == ALLOW:
            self.wb.add_type(str(g["signature"]), tenant_id=self._tenant.value or None,
                             actor=actor, notes=notes)
        ids = [e["exception_id"] for e in self.wb.list_exceptions(
            status="open", limit=None, group=g["group_id"])["items"]]
        self._confirm.disabled = self._dry.disabled = True
        self.progress.max, self.progress.value = max(len(ids), 1), 0
        results: list[dict] = []
        for i in range(0, len(ids), BATCH):
            out = self.wb.resolve_many(ids=ids[i:i + BATCH], action=action, actor=actor,
                                       resolution_notes=notes, canonical_raw_id=canonical)
            results += out["results"]
            self.progress.value = len(results)
        counts = Counter(r["status"] for r in results)
        self._summary.value = summary_html(counts, results)
        self.status.ok(f"{counts.get('resolved', 0):,} of {len(results):,} resolved")
        self.plan = None
        self.result = {"group_id": g["group_id"], "counts": dict(counts), "results": results}
        self.refresh()
        return self.result

    def _require_group(self) -> dict:
        g = self.picked
        if g is None:
            raise InvalidRequest("pick a group first")
        return g


def _as_if_allowed(plan: dict, tenant: str) -> dict:
    """The replay plan as it will run once the type is allowed for ``tenant`` (or all):
    the sample's allowlist refusals become replays where the allowing covers them."""
    sample = []
    for s in plan["sample"]:
        covered = tenant == ALL_TENANTS or s.get("tenant_id") == tenant
        if s["would"] == "refuse" and "allowlist" in (s.get("error") or "") and covered:
            s = {k: v for k, v in s.items() if k != "error"} | {"would": "resolve"}
        sample.append(s)
    return {**plan, "sample": sample}


def group_label(g: dict) -> str:
    """One line for the picker (plain text: a Select shows no HTML)."""
    return (f"{g['count']:,} · {g['reason_code']} · {signature_text(g['signature'])} · "
            f"{g.get('tenant_count', len(g.get('tenants') or []))} tenant(s)")


def signature_text(signature: Any) -> str:
    if isinstance(signature, list):
        return ", ".join(str(s) for s in signature) or "(no paths)"
    return str(signature)


def _names(values: list | None, total: int | None) -> str:
    shown = ", ".join("(none)" if v is None else str(v) for v in values or [])
    more = (total or 0) - len(values or [])
    return shown + (f" +{more} more" if more > 0 else "")


def groups_table(groups: list[dict]) -> str:
    """The page of groups as an escaped table, largest first."""
    if not groups:
        return '<span class="opswb-muted opswb-groups-empty">No open failure groups.</span>'
    rows = [[f"{g['count']:,}", g["reason_code"], signature_text(g["signature"]),
             _names(g.get("tenants"), g.get("tenant_count")),
             _names(g.get("sources"), g.get("source_count")),
             local_time(g.get("first_seen")), local_time(g.get("last_seen"))]
            for g in groups]
    return table(["count", "reason", "signature", "tenants", "sources", "first seen",
                  "last seen"], rows, "opswb-table opswb-groups-list") + (
        f'<div class="opswb-muted">times in {esc(zone_label())}</div>')


def plan_html(plan: dict, choice: str, g: dict, tenant: str) -> str:
    """The dry run: the count, what happens first, and a sample of what becomes of each."""
    what = {v: k for k, v in ACTIONS}[choice]
    lead = ""
    if choice == ALLOW:
        lead = (f"First allow <b>{esc(signature_text(g['signature']))}</b> for "
                f"<b>{esc(tenant or 'all tenants')}</b> (audited), then: ")
    rows = [[s.get("exception_id"), s.get("tenant_id") or "(none)", s.get("idempotency_key"),
             s["would"], s.get("error") or ""] for s in plan["sample"]]
    return (f'<div class="opswb-confirm opswb-group-plan-box">{lead}<b>{esc(what)}</b>: '
            f'<span class="opswb-group-plan-count">{plan["count"]:,}</span> open exceptions'
            f" · a sample:{table(['exception', 'tenant', 'key', 'would', 'why not'], rows)}"
            "</div>")


def summary_html(counts: Counter, results: list[dict]) -> str:
    """Outcome counts, and the failures (the first ``MAX_FAILURES``)."""
    parts = ", ".join(f"{esc(k)}: {v:,}" for k, v in sorted(counts.items()))
    failed = [r for r in results if r["status"] not in ("resolved", "proposed")]
    listing = table(["exception", "outcome", "message"],
                    [[r["exception_id"], r["status"], r.get("error") or ""]
                     for r in failed[:MAX_FAILURES]],
                    "opswb-table opswb-group-failures") if failed else ""
    more = (f'<div class="opswb-muted">and {len(failed) - MAX_FAILURES:,} more</div>'
            if len(failed) > MAX_FAILURES else "")
    return f'<div class="opswb-group-counts">{parts}</div>{listing}{more}'

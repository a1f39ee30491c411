"""build_console: the Ops Console composed from the panels, wired through traits."""

from __future__ import annotations

import html
import os
from typing import Any

import ipywidgets as widgets
import traitlets

from opswb.console.panels._common import button
from opswb.console.panels.address import AddressBar, open_link
from opswb.console.panels.audit import AuditPanel
from opswb.console.panels.bulk import BulkPanel
from opswb.console.panels.casework import CaseworkPanel
from opswb.console.panels.detail import DetailPanel
from opswb.console.panels.diff import DiffPanel
from opswb.console.panels.groups import ALLOW, GroupsPanel
from opswb.console.panels.health import HealthBar
from opswb.console.panels.lazy import LazySections
from opswb.console.panels.proposals import ProposalsPanel
from opswb.console.panels.queue import QueuePanel
from opswb.console.panels.resolve import ResolvePanel, default_actor

# Static styles only (nothing event-derived goes in here).
CSS = """
<style>
.opswb-console { font-size: 13px; }
.opswb-console h2, .opswb-console h3 { margin: 4px 0; }
.opswb-big { font-size: 22px; font-weight: bold; }
.opswb-chip { background: #eef2f7; border-radius: 8px; padding: 0 6px; margin-right: 3px; }
.opswb-sep { color: #adb5bd; margin: 0 4px; }
.opswb-muted { color: #6c757d; }
.opswb-error { color: #c92a2a; font-weight: bold; }
.opswb-ok { color: #2b8a3e; }
.opswb-queue-list select { font-family: monospace; font-size: 12px; }
.opswb-console .widget-html-content { line-height: 1.35; }
.opswb-json, .opswb-raw-text { font-size: 12px; background: #f8f9fa; padding: 4px; margin: 2px 0;
              line-height: 1.3; white-space: pre-wrap; word-break: break-all;
              max-height: 40em; overflow: auto; }
.opswb-preview-event { max-height: 16em; }
.opswb-diff-side { margin: 2px; }
.opswb-diff-title { font-weight: bold; }
.opswb-line { display: inline-block; width: 100%; }
.opswb-diff-changed { background: #fff3bf; }
.opswb-diff-added { background: #d3f9d8; }
.opswb-diff-removed { background: #ffe3e3; text-decoration: line-through; }
.opswb-table { border-collapse: collapse; font-size: 12px; }
.opswb-table td, .opswb-table th { border-bottom: 1px solid #dee2e6; padding: 2px 6px;
                                   text-align: left; vertical-align: top; }
.opswb-preview-invalid { color: #c92a2a; }
.opswb-preview-ok { color: #2b8a3e; }
.opswb-confirm { background: #fff9db; padding: 6px; border: 1px solid #fab005; }
.opswb-state-resolved { color: #2b8a3e; }
.opswb-state-open { color: #e8590c; }
.opswb-error-row { background: #ffe3e3; }
.opswb-tabs > .widget-tab-contents { padding: 6px 2px !important; }
.opswb-health-summary { flex: 1 1 auto; min-width: 0; }
.opswb-console .opswb-health-refresh { flex: 0 0 auto; min-width: 5.5em; }
</style>
"""


QUEUE, GROUPS, AUDIT = 0, 1, 2  # the console's tabs


class Console(widgets.VBox):
    """Health and deep link above tabs: the queue (queue, bulk, detail, diff, resolve,
    and sections for four eyes and casework), failure groups, audit.

    Only the first view is made with the page; failure groups, audit, proposals and
    casework are made when first opened (``groups``, ``audit``, ``proposals`` and
    ``casework`` make theirs when first used in code too).
    """

    def __init__(self, wb: Any) -> None:
        self.wb = wb
        self.health = HealthBar(wb)
        self.queue = QueuePanel(wb, figures=self.health.figures)
        self.bulk = BulkPanel(wb)
        self.detail = DetailPanel(wb)
        self.diff = DiffPanel(wb)
        self.resolve = ResolvePanel(wb)
        self.who = working_as(wb)
        actor = self.who["name"]  # over a URL the token's (SPEC §15), else OPSWB_ACTOR/login
        self.actor = actor
        self.address = AddressBar(self.queue, self.detail)  # deep link: URL and title
        # Panels talk only through traits: the queue's choice drives the detail, whose
        # loaded dict feeds the diff and the resolve form; decisions trigger refreshes.
        traitlets.dlink((self.health, "figures"), (self.queue, "figures"))
        traitlets.dlink((self.queue, "selected_id"), (self.detail, "exception_id"))
        traitlets.dlink((self.queue, "selected_ids"), (self.bulk, "selected_ids"))
        traitlets.dlink((self.detail, "detail"), (self.diff, "detail"))
        traitlets.dlink((self.detail, "detail"), (self.resolve, "detail"))
        self.resolve.observe(self._on_resolve_result, names="result")
        self.bulk.observe(self._on_bulk_result, names="result")
        self.detail.observe(self._on_detail_allow_group, names="allow_group")
        self.detail.observe(self._on_detail_change, names="detail")
        self.queue.observe(self._on_queue_group_change, names="group")
        if getattr(wb, "remote", False):  # any token, the bootstrap one too: recorded as it
            for form in (self.resolve, self.bulk):
                form.set_form(actor=actor)
        if self.who["role"] == "viewer":  # reads only: no decision forms
            self.resolve.layout.display = self.bulk.layout.display = "none"
        signed = (f"<span class='opswb-muted opswb-who'>working as "
                  f"{html.escape(self.who['name'] or '?')} ({html.escape(self.who['role'])})"
                  "</span>")
        # Under the detail, each folded until opened (or until the viewed exception has
        # a proposal, a claim or comments): four eyes, casework.
        self.four_eyes = LazySections(widgets.Accordion, [
            ("Four eyes: proposals awaiting a second person", self._make_proposals)],
            selected=None, css_class="opswb-aside-proposals")
        self.case = LazySections(widgets.Accordion, [
            ("Casework: claim and comments", self._make_casework)],
            selected=None, css_class="opswb-aside-casework")
        self.tabs = LazySections(widgets.Tab, [
            ("Queue", self._make_queue_tab), ("Failure groups", self._make_groups),
            ("Audit", self._make_audit)], css_class="opswb-tabs")
        super().__init__([widgets.HTML(CSS + "<h2>opswb · Ops Console</h2>" + signed),
                          self.address, self.health, self.tabs.box])
        self.add_class("opswb-console")

    # ---- the sections, made on first opening ------------------------------------------
    def _make_queue_tab(self) -> widgets.Widget:
        left = widgets.VBox([self.queue, self.bulk], layout=widgets.Layout(width="42%"))
        right = widgets.VBox([self.detail, self.diff, self.resolve, self.four_eyes.box,
                              self.case.box],
                             layout=widgets.Layout(width="58%"))
        return widgets.HBox([left, right], layout=widgets.Layout(width="100%"))

    def _make_groups(self) -> widgets.Widget:
        groups = GroupsPanel(self.wb)
        groups.refresh()
        # A group picked in the group view filters the queue, and a queue whose group
        # filter is cleared (or set by a deep link) moves the group view with it.
        traitlets.link((self.queue, "group"), (groups, "group_id"))
        groups.observe(self._on_groups_result, names="result")
        if self.who["role"] == "viewer":
            groups.decision_form(False)
        if getattr(self.wb, "remote", False):  # recorded as the token's name (SPEC §15)
            groups.set_form(actor=self.actor)
        self.show_group = button("Show the group in the queue ▸", "opswb-groups-show")
        self.show_group.on_click(self._on_show_group_click)
        groups.nav.children = (*groups.nav.children, self.show_group)
        self._groups = groups
        self._on_queue_group_change({"new": self.queue.group})
        return groups

    def _make_audit(self) -> widgets.Widget:
        return AuditPanel(self.wb)

    def _make_proposals(self) -> widgets.Widget:
        proposals = ProposalsPanel(self.wb, self.actor, self.who["role"])
        traitlets.dlink((self.detail, "detail"), (proposals, "detail"))
        proposals.observe(self._on_proposal_pick, names="selected_id")
        proposals.observe(self._on_panel_result, names="result")
        return proposals

    def _make_casework(self) -> widgets.Widget:
        casework = CaseworkPanel(self.wb, self.actor, self.who["role"])
        traitlets.dlink((self.detail, "detail"), (casework, "detail"))
        casework.observe(self._on_panel_result, names="result")
        return casework

    @property
    def groups(self) -> GroupsPanel:
        """The failure groups panel (made if it was not)."""
        self.tabs.get(GROUPS)
        return self._groups

    @property
    def audit(self) -> AuditPanel:
        """The audit panel (made if it was not)."""
        return self.tabs.get(AUDIT)

    @property
    def proposals(self) -> ProposalsPanel:
        """The four-eyes panel (made if it was not)."""
        return self.four_eyes.get(0)

    @property
    def casework(self) -> CaseworkPanel:
        """The casework panel (made if it was not)."""
        return self.case.get(0)

    # ---- handlers ----------------------------------------------------------------------
    def _on_resolve_result(self, _change: dict) -> None:
        self.after_decision()

    def _on_bulk_result(self, _change: dict) -> None:
        self.after_decision()

    def _on_panel_result(self, _change: dict) -> None:
        self.after_decision()

    def _on_proposal_pick(self, change: dict) -> None:
        if change["new"]:
            self.detail.exception_id = change["new"]

    def _on_groups_result(self, _change: dict) -> None:
        self.after_decision()

    def _on_detail_allow_group(self, change: dict) -> None:
        self.allow_and_replay(change["new"])

    def _on_detail_change(self, change: dict) -> None:
        d = change["new"] or {}  # unfold what concerns the viewed exception
        if d.get("status") == "open" and d.get("pending"):
            self.four_eyes.show(0)
        if d.get("assignee") or d.get("comments"):
            self.case.show(0)

    def _on_queue_group_change(self, change: dict) -> None:
        self.tabs.box.set_title(QUEUE, "Queue · one group" if change["new"] else "Queue")

    def _on_show_group_click(self, _b: widgets.Button) -> None:
        self.tabs.show(QUEUE)

    def allow_and_replay(self, group_id: str | None) -> None:
        """Open the group decision "allow the type, then replay all" on ``group_id``."""
        if group_id:
            self.tabs.show(GROUPS)
            self.groups.pick(group_id)
            self.groups.set_form(action=ALLOW)

    def after_decision(self) -> None:
        """Show the effect of a decision: health, queue, the open detail, and the groups
        and audit if they have been opened."""
        self.refresh()

    def refresh(self) -> None:
        """Read again everything the console shows (what is not made yet reads when it
        is)."""
        self.health.refresh()
        if self.tabs.made(GROUPS) is not None:
            self.groups.refresh()
        self.queue.refresh()
        self.detail.reload()
        if self.tabs.made(AUDIT) is not None:
            self.audit.refresh()


def working_as(wb: Any) -> dict:
    """Who the console works as (SPEC §15): over a URL, the token's name and role;
    embedded, ``OPSWB_ACTOR`` or the login name, with every right."""
    if getattr(wb, "remote", False):
        who = wb.authenticate(wb.token)
        if who is not None:
            return who
    return {"name": default_actor(), "role": "embedded", "bootstrap": True}


def build_console(wb: Any) -> Console:
    """The Ops Console over a workbench (local or remote).

    In a Voilà pre-heated kernel the widgets are made ahead of the page request, then
    the console waits for the request and reads the store again, so nothing shown is
    stale (``wait_for_page``).
    """
    console = Console(wb)
    if wait_for_page():
        console.refresh()
    open_link(console.queue, os.environ.get("QUERY_STRING"))  # Voilà: the page's query
    return console


def wait_for_page() -> bool:
    """In a Voilà pre-heated kernel, wait for the page request (True once it came).

    Pre-heating starts the kernel, imports and makes the widgets ahead of time (the
    slow part of a page load). Elsewhere (JupyterLab, tests, plain Voilà) this returns
    False at once.
    """
    if os.environ.get("VOILA_PREHEAT") != "True":
        return False
    from voila.utils import wait_for_request

    wait_for_request()
    return True

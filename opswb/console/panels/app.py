"""build_console: the Ops Console composed from the panels, wired through traits."""

from __future__ import annotations

import html
import os
from typing import Any

import ipywidgets as widgets
import traitlets

from opswb.console.panels.address import AddressBar, open_link
from opswb.console.panels.audit import AuditPanel
from opswb.console.panels.bulk import BulkPanel
from opswb.console.panels.casework import CaseworkPanel
from opswb.console.panels.detail import DetailPanel
from opswb.console.panels.diff import DiffPanel
from opswb.console.panels.groups import ALLOW, GroupsPanel
from opswb.console.panels.health import HealthBar
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
</style>
"""


class Console(widgets.VBox):
    """Health, queue, bulk, detail, diff, resolve and audit on one page."""

    def __init__(self, wb: Any) -> None:
        self.wb = wb
        self.health = HealthBar(wb)
        self.queue = QueuePanel(wb, figures=self.health.figures)
        self.bulk = BulkPanel(wb)
        self.detail = DetailPanel(wb)
        self.diff = DiffPanel(wb)
        self.resolve = ResolvePanel(wb)
        self.audit = AuditPanel(wb)
        self.who = working_as(wb)
        actor = self.who["name"]  # over a URL the token's (SPEC §15), else OPSWB_ACTOR/login
        self.proposals = ProposalsPanel(wb, actor, self.who["role"])
        self.casework = CaseworkPanel(wb, actor, self.who["role"])
        self.address = AddressBar(self.queue, self.detail)  # deep link: URL and title
        self.groups = GroupsPanel(wb)
        # Panels talk only through traits: the queue's choice drives the detail, whose
        # loaded dict feeds the diff and the resolve form; decisions trigger refreshes.
        traitlets.dlink((self.health, "figures"), (self.queue, "figures"))
        traitlets.dlink((self.queue, "selected_id"), (self.detail, "exception_id"))
        traitlets.dlink((self.queue, "selected_ids"), (self.bulk, "selected_ids"))
        traitlets.dlink((self.detail, "detail"), (self.diff, "detail"))
        traitlets.dlink((self.detail, "detail"), (self.resolve, "detail"))
        traitlets.dlink((self.detail, "detail"), (self.proposals, "detail"))
        traitlets.dlink((self.detail, "detail"), (self.casework, "detail"))
        # A group picked in the group view filters the queue, and a queue whose group
        # filter is cleared (or set by a deep link) moves the group view with it.
        traitlets.link((self.groups, "group_id"), (self.queue, "group"))
        self.proposals.observe(self._on_proposal_pick, names="selected_id")
        for panel in (self.proposals, self.casework):
            panel.observe(self._on_panel_result, names="result")
        self.resolve.observe(self._on_resolve_result, names="result")
        self.bulk.observe(self._on_bulk_result, names="result")
        self.groups.observe(self._on_groups_result, names="result")
        self.detail.observe(self._on_detail_allow_group, names="allow_group")
        self.groups.refresh()
        audit = widgets.Accordion(children=[self.audit], titles=("Audit: recent decisions",),
                                  selected_index=None)
        left = widgets.VBox([self.queue, self.bulk], layout=widgets.Layout(width="40%"))
        right = widgets.VBox([self.detail, self.diff, self.proposals, self.resolve,
                              self.casework], layout=widgets.Layout(width="60%"))
        if getattr(wb, "remote", False):  # any token, the bootstrap one too: recorded as it
            for form in (self.resolve, self.bulk, self.groups):
                form.set_form(actor=actor)
        if self.who["role"] == "viewer":  # reads only: no decision forms
            self.resolve.layout.display = self.bulk.layout.display = "none"
            self.groups.decision_form(False)
        signed = (f"<span class='opswb-muted opswb-who'>working as "
                  f"{html.escape(self.who['name'] or '?')} ({html.escape(self.who['role'])})"
                  "</span>")
        super().__init__([
            widgets.HTML(CSS + "<h2>opswb · Ops Console</h2>" + signed), self.address,
            self.health, self.groups,
            widgets.HBox([left, right], layout=widgets.Layout(width="100%")), audit])
        self.add_class("opswb-console")

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

    def allow_and_replay(self, group_id: str | None) -> None:
        """Open the group decision "allow the type, then replay all" on ``group_id``."""
        if group_id:
            self.groups.pick(group_id)
            self.groups.set_form(action=ALLOW)

    def after_decision(self) -> None:
        """Show the effect of a decision: health, groups, queue, the open detail, the
        audit."""
        self.health.refresh()
        self.groups.refresh()
        self.queue.refresh()
        self.detail.reload()
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
    """The Ops Console over a workbench (local or remote)."""
    wait_for_page()
    console = Console(wb)
    open_link(console.queue, os.environ.get("QUERY_STRING"))  # Voilà: the page's query
    return console


def wait_for_page() -> None:
    """In a Voilà pre-heated kernel, wait for the page request before reading the store.

    Pre-heating starts the kernel and imports ahead of time (the slow part of a page
    load); waiting here keeps the data read at request time, never stale. Elsewhere
    (JupyterLab, tests, plain Voilà) this returns at once.
    """
    if os.environ.get("VOILA_PREHEAT") == "True":
        from voila.utils import wait_for_request

        wait_for_request()

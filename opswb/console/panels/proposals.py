"""ProposalsPanel: four eyes in the console (SPEC §15). Lists the exceptions with a
pending proposal; for the viewed one shows the proposed action, proposer, canonical raw
(its text), patch and the preview of what approving would deliver; an approver who is
not the proposer gets Approve / Reject."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import traitlets

from opswb.console.panels._common import (
    StatusLine,
    button,
    classed,
    esc,
    pre,
    shows_errors,
)
from opswb.console.panels.casework import may, same_exception
from opswb.console.panels.resolve import preview_html
from opswb.core.errors import InvalidRequest

APPROVERS = ("approver", "admin", "embedded")
LIST_SIZE = 200


class ProposalsPanel(widgets.VBox):
    """Pending proposals; ``selected_id`` is the one picked in the list (the console
    shows it in the detail), ``detail`` the viewed exception, ``result`` the exception
    after an approval or a rejection."""

    detail = traitlets.Dict(None, allow_none=True)
    selected_id = traitlets.Unicode(None, allow_none=True)
    result = traitlets.Dict(None, allow_none=True)

    def __init__(self, wb: Any, actor: str, role: str) -> None:
        self.wb, self.actor, self.role = wb, actor, role
        self.items: list[dict] = []
        self.preview: dict | None = None
        self._quiet = False
        self._list = classed(widgets.Select(options=[], rows=4,
                                            layout=widgets.Layout(width="95%")),
                             "opswb-proposals-list")
        self._count = classed(widgets.HTML(), "opswb-proposals-count")
        self._refresh = button("Refresh", "opswb-proposals-refresh")
        self._view = classed(widgets.HTML(), "opswb-proposal")
        self._notes = classed(widgets.Textarea(
            description="Notes", placeholder="why (required)", continuous_update=True,
            layout=widgets.Layout(width="95%", height="3em")), "opswb-proposal-notes")
        self._approve = button("Approve", "opswb-proposal-approve", "success")
        self._reject = button("Reject", "opswb-proposal-reject", "danger")
        self._decide = classed(widgets.VBox(
            [self._notes, widgets.HBox([self._approve, self._reject])]),
            "opswb-proposal-decide")
        self.status = StatusLine("opswb-proposals-status")
        self._list.observe(self._on_list_change, names="value")
        self._refresh.on_click(self._on_refresh_click)
        self._notes.observe(self._on_notes_change, names="value")
        self._approve.on_click(self._on_approve_click)
        self._reject.on_click(self._on_reject_click)
        super().__init__([widgets.HTML("<h3>Proposals awaiting a second person</h3>"),
                          widgets.HBox([self._count, self._refresh]), self._list,
                          self._view, self._decide, self.status])
        self.add_class("opswb-proposals")
        self.refresh()
        self.draw(None)

    # ---- handlers: one line each ------------------------------------------------------
    def _on_list_change(self, change: dict) -> None:
        self.pick(change["new"])

    def _on_refresh_click(self, _b: widgets.Button) -> None:
        self.refresh()

    def _on_notes_change(self, _change: dict) -> None:
        self.update_buttons()

    def _on_approve_click(self, _b: widgets.Button) -> None:
        self.approve()

    def _on_reject_click(self, _b: widgets.Button) -> None:
        self.reject()

    @traitlets.observe("detail")
    def _on_detail_change(self, change: dict) -> None:
        new = change["new"]
        if not same_exception(change["old"], new):
            self._notes.value = ""
            self.status.clear()
        self.refresh()
        self.draw(new)

    # ---- public ----------------------------------------------------------------------
    @property
    def pending(self) -> dict | None:
        """The viewed exception's proposal, if it is open and has one."""
        d = self.detail
        return d.get("pending") if d and d["status"] == "open" else None

    @property
    def can_decide(self) -> bool:
        """An approver (or admin, or embedded) who did not propose it."""
        p = self.pending
        return bool(p and may(self.role, APPROVERS) and p["proposed_by"] != self.actor)

    @shows_errors
    def refresh(self) -> None:
        """Reload the list of exceptions with a pending proposal."""
        page = self.wb.list_exceptions(status="open", pending=True, limit=LIST_SIZE)
        self.items = page["items"]
        viewed = self.detail["exception_id"] if self.detail else None
        self._quiet = True
        try:
            self._list.options = [(item_label(e), e["exception_id"]) for e in self.items]
            ids = [e["exception_id"] for e in self.items]
            self._list.value = viewed if viewed in ids else None
        finally:
            self._quiet = False
        more = f" (first {LIST_SIZE})" if page["next_cursor"] else ""
        self._count.value = (f'<span class="opswb-muted">{len(self.items)}{esc(more)} pending'
                             "</span>")

    def pick(self, exception_id: str | None) -> None:
        """View one proposal (the console loads it into the detail)."""
        if self._quiet or exception_id is None:
            return
        self.selected_id = exception_id

    @shows_errors
    def draw(self, d: dict | None) -> None:
        """Show the viewed exception's proposal and the buttons that apply."""
        self.preview = None
        p = self.pending
        if p:
            self.preview = self.wb.preview(d["exception_id"], p.get("canonical_raw_id"),
                                           p.get("override_patch"))
        self._view.value = proposal_html(d, p, self.preview, self.actor, self.role)
        self._decide.layout.display = "flex" if self.can_decide else "none"
        self.update_buttons()

    def update_buttons(self) -> None:
        """Approve / Reject need notes."""
        ready = self.can_decide and bool(self._notes.value.strip())
        self._approve.disabled = self._reject.disabled = not ready

    @shows_errors
    def approve(self, notes: str | None = None) -> dict | None:
        """Apply the proposal: the replay happens now, once."""
        ex = self.wb.approve(self._id(), self.actor, self._take_notes(notes))
        self.status.ok(f"approved: exception {ex['exception_id']} resolved by {ex['actor']};"
                       f" delivered from raw #{ex.get('canonical_raw_id')}")
        self.result = ex
        return ex

    @shows_errors
    def reject(self, notes: str | None = None) -> dict | None:
        """Drop the proposal: the exception stays open, its key quarantined."""
        ex = self.wb.reject(self._id(), self.actor, self._take_notes(notes))
        self.status.ok(f"rejected: exception {ex['exception_id']} stays open, its key "
                       "quarantined")
        self.result = ex
        return ex

    def _id(self) -> str:
        if not self.pending:
            raise InvalidRequest("pick a pending proposal first")
        return self.detail["exception_id"]

    def _take_notes(self, notes: str | None) -> str:
        if notes is not None:
            self._notes.value = notes
        return self._notes.value


def item_label(e: dict) -> str:
    """One line of the list: id, tenant/key, reason, proposer."""
    by = (e.get("pending") or {}).get("proposed_by") or "?"
    return (f"#{e['exception_id']} · {e.get('tenant_id') or '–'}/"
            f"{e.get('idempotency_key') or '–'} · {e['reason_code']} · by {by}")


def raw_text(d: dict, raw_id: Any) -> str | None:
    """The received text of raw ``raw_id`` among the detail's arrivals."""
    for r in [d.get("raw"), d.get("first"), d.get("last"), *(d.get("arrivals") or [])]:
        if r and str(r.get("raw_id")) == str(raw_id) and r.get("text") is not None:
            return r["text"]
    return None


def proposal_html(d: dict | None, p: dict | None, preview: dict | None, actor: str,
                  role: str) -> str:
    """The proposal in full, or why there is none; every value escaped."""
    if not d:
        return '<span class="opswb-muted">Pick a proposal above or an exception in the queue.</span>'
    if not p:
        return (f'<span class="opswb-muted">Exception #{esc(d["exception_id"])} has no pending '
                "proposal.</span>")
    text = raw_text(d, p.get("canonical_raw_id"))
    raw = (f'<pre class="opswb-raw-text opswb-proposal-raw">{esc(text)}</pre>' if text
           is not None else '<span class="opswb-muted">(raw text not in this detail)</span>')
    patch = (pre(p["override_patch"], "opswb-json opswb-proposal-patch")
             if p.get("override_patch") else '<span class="opswb-muted">no patch</span>')
    if p["proposed_by"] == actor:
        who = ("awaiting another approver: you proposed this, and four eyes need someone "
               "else to approve or reject it")
    elif not may(role, APPROVERS):
        who = "awaiting an approver (your role cannot approve)"
    else:
        who = "you may approve or reject it (notes required)"
    return (f'<div class="opswb-proposal-head">#{esc(d["exception_id"])}: '
            f'<b>{esc(p["action"])}</b> proposed by <b class="opswb-proposal-by">'
            f'{esc(p["proposed_by"])}</b> at {esc(str(p.get("proposed_at") or "")[:19])} '
            f'with notes “{esc(p.get("resolution_notes"))}”</div>'
            f'<div>canonical raw #{esc(p.get("canonical_raw_id"))}:</div>{raw}'
            f"<div>patch:</div>{patch}<div>what approving delivers:</div>"
            + (preview_html(preview) if preview else "")
            + f'<div class="opswb-proposal-who opswb-muted">{esc(who)}</div>')

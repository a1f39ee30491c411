"""CaseworkPanel: who is on the viewed exception (claim / unclaim) and its comments
(SPEC §15). A viewer sees both read-only."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import traitlets

from opswb.console.panels._common import StatusLine, button, classed, esc, shows_errors, table
from opswb.core.errors import InvalidRequest

# Roles that may claim and comment (operator and up; embedded mode may do everything).
WORKERS = ("operator", "approver", "admin", "embedded")


def may(role: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``role`` (a token's role, or ``embedded``) is among ``allowed``."""
    return role in allowed


def same_exception(old: Any, new: Any) -> bool:
    """Whether a ``detail`` change is a reload of the same exception (input is kept)."""
    ids = [d.get("exception_id") if isinstance(d, dict) else None for d in (old, new)]
    return ids[0] is not None and ids[0] == ids[1]


class CaseworkPanel(widgets.VBox):
    """Claim, unclaim and comment on the exception in ``detail``; ``result`` is the
    workbench's answer after each change (the console then reloads the detail)."""

    detail = traitlets.Dict(None, allow_none=True)
    result = traitlets.Dict(None, allow_none=True)

    def __init__(self, wb: Any, actor: str, role: str) -> None:
        self.wb, self.actor, self.role = wb, actor, role
        self._assignee = classed(widgets.HTML(), "opswb-case-assignee")
        self._claim = button("Claim", "opswb-case-claim")
        self._unclaim = button("Unclaim", "opswb-case-unclaim")
        self._comments = classed(widgets.HTML(), "opswb-case-comments")
        self._text = classed(widgets.Textarea(
            placeholder="a note for the next person (plain text)", continuous_update=True,
            layout=widgets.Layout(width="95%", height="3em")), "opswb-case-text")
        self._add = button("Add comment", "opswb-case-add")
        self.status = StatusLine("opswb-case-status")
        self._claim.on_click(self._on_claim_click)
        self._unclaim.on_click(self._on_unclaim_click)
        self._add.on_click(self._on_add_click)
        self._text.observe(self._on_text_change, names="value")
        self._buttons = widgets.HBox([self._claim, self._unclaim])
        self._writer = widgets.VBox([self._text, self._add])
        if not may(role, WORKERS):  # read-only: no buttons at all
            self._buttons.layout.display = self._writer.layout.display = "none"
        super().__init__([widgets.HTML("<h3>Casework</h3>"),
                          widgets.HBox([self._assignee, self._buttons]), self._comments,
                          self._writer, self.status])
        self.add_class("opswb-casework")
        self.draw(None)

    # ---- handlers: one line each ------------------------------------------------------
    def _on_claim_click(self, _b: widgets.Button) -> None:
        self.claim()

    def _on_unclaim_click(self, _b: widgets.Button) -> None:
        self.unclaim()

    def _on_add_click(self, _b: widgets.Button) -> None:
        self.add_comment()

    def _on_text_change(self, _change: dict) -> None:
        self._add.disabled = not (self.detail and self._text.value.strip())

    @traitlets.observe("detail")
    def _on_detail_change(self, change: dict) -> None:
        new = change["new"]
        if not same_exception(change["old"], new):
            self._text.value = ""
            self.status.clear()
        self.draw(new)

    # ---- public ----------------------------------------------------------------------
    def draw(self, d: dict | None) -> None:
        """Show the assignee and the comments of ``d``; enable what applies."""
        self._assignee.value = assignee_html(d, self.actor)
        self._comments.value = comments_html(d)
        is_open = bool(d and d["status"] == "open")
        mine = bool(d and d.get("assignee") == self.actor)
        self._claim.disabled = not is_open or mine
        self._unclaim.disabled = not (is_open and d and d.get("assignee"))
        self._add.disabled = not (d and self._text.value.strip())

    @shows_errors
    def claim(self) -> dict | None:
        """Claim the exception for the one working."""
        ex = self.wb.claim(self._id(), self.actor)
        self.status.ok(f"exception {ex['exception_id']} claimed by {ex['assignee']}")
        self.result = ex
        return ex

    @shows_errors
    def unclaim(self) -> dict | None:
        """Clear the exception's assignee."""
        ex = self.wb.unclaim(self._id(), self.actor)
        self.status.ok(f"exception {ex['exception_id']} unclaimed")
        self.result = ex
        return ex

    @shows_errors
    def add_comment(self, text: str | None = None) -> dict | None:
        """Add the box's text (or ``text``) as a comment."""
        if text is not None:
            self._text.value = text
        out = self.wb.comment(self._id(), self._text.value, self.actor)
        self._text.value = ""
        self.status.ok(f"comment added to exception {out['exception_id']}")
        self.result = out
        return out

    def _id(self) -> str:
        if not self.detail:
            raise InvalidRequest("pick an exception in the queue first")
        return self.detail["exception_id"]


def assignee_html(d: dict | None, actor: str) -> str:
    """Who is on it: nobody, you, or someone else."""
    if not d:
        return '<span class="opswb-muted">Pick an exception in the queue.</span>'
    who = d.get("assignee")
    if not who:
        return '<span class="opswb-muted">unclaimed</span>'
    you = " (claimed by you)" if who == actor else ""
    return f"<span>claimed by <b>{esc(who)}</b>{esc(you)}</span>"


def comments_html(d: dict | None) -> str:
    """The comments, oldest first: author, time, text (every cell escaped)."""
    comments = (d or {}).get("comments") or []
    if not comments:
        return '<span class="opswb-muted">no comments</span>' if d else ""
    return table(["author", "at", "comment"],
                 [[c.get("author"), str(c.get("at") or "")[:19], c.get("text")]
                  for c in comments], "opswb-table opswb-case-comment-table")

"""BulkPanel: one decision for every ticked exception, with a result per item."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import traitlets

from opswb.console.panels._common import StatusLine, button, classed, shows_errors, table
from opswb.console.panels.resolve import NO_REPLAY, REPLAY, default_actor
from opswb.core.errors import InvalidRequest

ACTIONS = (("Mark resolved, no replay", NO_REPLAY), ("Replay each as received", REPLAY))
DONE = ("resolved", "proposed")  # a proposal (four eyes, SPEC §15) is no failure


class BulkPanel(widgets.VBox):
    """Resolve ``selected_ids`` at once; ``result`` holds the last ``resolve_many`` answer."""

    selected_ids = traitlets.List(traitlets.Unicode())
    result = traitlets.Dict(None, allow_none=True)

    def __init__(self, wb: Any) -> None:
        self.wb = wb
        self._action = classed(widgets.Dropdown(options=ACTIONS, value=NO_REPLAY,
                                                description="Action"), "opswb-bulk-action")
        self._actor = classed(widgets.Text(value=default_actor(), description="Actor"),
                              "opswb-bulk-actor")
        self._notes = classed(widgets.Textarea(description="Notes", placeholder="why (required)",
                                               continuous_update=True), "opswb-bulk-notes")
        self._go = button("Resolve ticked", "opswb-bulk-resolve", "warning")
        self._results = classed(widgets.HTML(), "opswb-bulk-results")
        self.status = StatusLine("opswb-bulk-status")
        self._notes.observe(self._on_notes_change, names="value")
        self._actor.observe(self._on_actor_change, names="value")
        self._go.on_click(self._on_go_click)
        super().__init__([widgets.HTML("<h3>Bulk decision</h3>"), self._action, self._actor,
                          self._notes, self._go, self._results, self.status])
        self.add_class("opswb-bulk")
        self.update_button()

    def _on_notes_change(self, _change: dict) -> None:
        self.update_button()

    def _on_actor_change(self, _change: dict) -> None:
        self.update_button()

    def _on_go_click(self, _b: widgets.Button) -> None:
        self.resolve_selected()

    @traitlets.observe("selected_ids")
    def _on_selected_ids_change(self, _change: dict) -> None:
        self.update_button()

    def set_form(self, action: str | None = None, actor: str | None = None,
                 notes: str | None = None) -> None:
        """Fill the form (None leaves a field as it is)."""
        if action is not None:
            self._action.value = action
        if actor is not None:
            self._actor.value = actor
        if notes is not None:
            self._notes.value = notes

    def update_button(self) -> None:
        """Label the button with the count; enable it only for a complete form."""
        n = len(self.selected_ids)
        self._go.description = f"Resolve {n} ticked exception{'s' if n != 1 else ''}"
        self._go.disabled = not (n and self._actor.value.strip() and self._notes.value.strip())

    @shows_errors
    def resolve_selected(self) -> dict | None:
        """Apply the decision to every ticked exception; shows each item's outcome."""
        if not self.selected_ids:
            raise InvalidRequest("tick exceptions in the queue first")
        out = self.wb.resolve_many(ids=list(self.selected_ids), action=self._action.value,
                                   actor=self._actor.value, resolution_notes=self._notes.value)
        results = out["results"]
        ok = sum(1 for r in results if r["status"] in DONE)
        self._results.value = table(
            ["exception", "outcome", "message"],
            [[r["exception_id"], r["status"], r.get("error") or ""] for r in results],
            "opswb-table opswb-bulk-table",
            ["opswb-ok-row" if r["status"] in DONE else "opswb-error-row"
             for r in results])
        proposed = sum(1 for r in results if r["status"] == "proposed")
        message = f"{ok} of {len(results)} resolved"
        if proposed:
            message = (f"{ok} of {len(results)} decided ({proposed} proposed for another "
                       "approver)")
        (self.status.ok if ok == len(results) else self.status.error)(message)
        self.result = out
        return out

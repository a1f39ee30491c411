"""HealthBar: open exceptions by reason and tenant, key states, oldest open age."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import traitlets

from opswb.console.panels._common import StatusLine, age, button, classed, esc, shows_errors


class HealthBar(widgets.VBox):
    """The store's health at a glance; ``figures`` holds the last ``wb.health()``."""

    figures = traitlets.Dict()

    def __init__(self, wb: Any) -> None:
        self.wb = wb
        self._summary = classed(widgets.HTML(), "opswb-health-summary")
        self._refresh = button("Refresh", "opswb-health-refresh", tooltip="Reload health")
        self.status = StatusLine("opswb-health-status")
        self._refresh.on_click(self._on_refresh_click)
        super().__init__([widgets.HBox([self._summary, self._refresh]), self.status])
        self.add_class("opswb-health")
        self.refresh()

    def _on_refresh_click(self, _b: widgets.Button) -> None:
        self.refresh()

    @property
    def exceptions_open(self) -> int | None:
        """Open exceptions as last shown."""
        return self.figures.get("exceptions_open")

    @shows_errors
    def refresh(self) -> None:
        """Reload the figures from the workbench and redraw."""
        self.figures = self.wb.health()
        self._summary.value = render_health(self.figures)
        self.status.clear()


def render_health(h: dict) -> str:
    """The health figures as one escaped HTML strip."""
    idem = h.get("idempotency", {})
    by_reason = h.get("open_by_reason") or {}
    by_tenant = h.get("open_by_tenant") or {}

    def chips(d: dict, css: str) -> str:
        if not d:
            return '<span class="opswb-muted">none</span>'
        return " ".join(f'<span class="opswb-chip {css}">{esc(k or "(blank)")} <b>{esc(v)}</b>'
                        "</span>" for k, v in d.items())

    return (
        '<div class="opswb-health-strip">'
        f'<span class="opswb-big opswb-health-open">{esc(h.get("exceptions_open", 0))}</span>'
        ' exceptions open'
        f' <span class="opswb-sep">|</span> by reason: {chips(by_reason, "opswb-reason")}'
        f' <span class="opswb-sep">|</span> by tenant: {chips(by_tenant, "opswb-tenant")}'
        f'<br><span class="opswb-health-keys">keys: processed <b>{esc(idem.get("processed", 0))}'
        f'</b> · quarantined <b>{esc(idem.get("quarantined", 0))}</b> · ignored'
        f' <b>{esc(idem.get("ignored", 0))}</b></span>'
        f' <span class="opswb-sep">|</span> oldest open:'
        f' <b class="opswb-health-oldest">{esc(age(h.get("oldest_open_age_seconds")))}</b>'
        f' <span class="opswb-sep">|</span> raw events {esc(h.get("raw_events", 0))}'
        f' (today {esc(h.get("arrivals_today", "–"))},'
        f' duplicates {esc(h.get("duplicates_today", "–"))})'
        "</div>"
    )

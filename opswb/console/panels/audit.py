"""AuditPanel: recent decisions, filterable by actor and tenant."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from opswb.console.panels._common import StatusLine, button, classed, compact, shows_errors, table


class AuditPanel(widgets.VBox):
    """The newest audit entries (resolutions, reopens, allowlist changes)."""

    def __init__(self, wb: Any, limit: int = 50) -> None:
        self.wb = wb
        self.limit = limit
        self.entries: list[dict] = []
        self._actor = classed(widgets.Text(description="Actor", placeholder="any",
                                           continuous_update=False), "opswb-audit-actor")
        self._tenant = classed(widgets.Text(description="Tenant", placeholder="any",
                                            continuous_update=False), "opswb-audit-tenant")
        self._refresh = button("Refresh", "opswb-audit-refresh")
        self._table = classed(widgets.HTML(), "opswb-audit-table")
        self.status = StatusLine("opswb-audit-status")
        self._actor.observe(self._on_actor_change, names="value")
        self._tenant.observe(self._on_tenant_change, names="value")
        self._refresh.on_click(self._on_refresh_click)
        super().__init__([widgets.HBox([self._actor, self._tenant, self._refresh]),
                          self._table, self.status])
        self.add_class("opswb-audit")
        self.refresh()

    def _on_actor_change(self, _change: dict) -> None:
        self.refresh()

    def _on_tenant_change(self, _change: dict) -> None:
        self.refresh()

    def _on_refresh_click(self, _b: widgets.Button) -> None:
        self.refresh()

    def set_filters(self, actor: str | None = None, tenant_id: str | None = None) -> None:
        """Filter by actor and tenant (None or blank: any)."""
        self._actor.value = actor or ""
        self._tenant.value = tenant_id or ""
        self.refresh()

    @shows_errors
    def refresh(self) -> None:
        """Reload the newest entries matching the filters."""
        self.entries = self.wb.audit(actor=self._actor.value.strip() or None,
                                     tenant_id=self._tenant.value.strip() or None,
                                     limit=self.limit)
        rows = [[e["at"][:19], e.get("actor"), e.get("action"),
                 f"#{e['exception_id']}" if e.get("exception_id") else "",
                 e.get("tenant_id") or "", e.get("idempotency_key") or "",
                 f"{e.get('state_before') or '–'} → {e.get('state_after') or '–'}",
                 e.get("notes") or "",
                 compact(e["override_patch"], 60) if e.get("override_patch") else ""]
                for e in self.entries]
        self._table.value = (
            table(["when", "actor", "action", "exception", "tenant", "key", "key state",
                   "notes", "patch"], rows, "opswb-table opswb-audit-entries") if rows
            else '<span class="opswb-muted">no decisions yet</span>')
        self.status.clear()

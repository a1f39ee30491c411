"""QueuePanel: exceptions oldest first, filters, paging, counts and multi-select."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import ipywidgets as widgets
import traitlets

from opswb.console.panels._common import StatusLine, age, button, classed, esc, shows_errors

ALL = ""
REASONS = ("IDEMPOTENCY_CONFLICT", "UNKNOWN_EVENT_TYPE", "INVALID_EVENT")
STATUSES = (("open", "open"), ("resolved", "resolved"), ("all", "all"))
_SHORT = {"IDEMPOTENCY_CONFLICT": "CONFLICT", "UNKNOWN_EVENT_TYPE": "UNKNOWN_TYPE",
          "INVALID_EVENT": "INVALID"}


class QueuePanel(widgets.VBox):
    """The exception queue; ``selected_id`` is the row to show, ``selected_ids`` the
    rows ticked for a bulk decision."""

    selected_id = traitlets.Unicode(None, allow_none=True)
    selected_ids = traitlets.List(traitlets.Unicode())
    figures = traitlets.Dict()

    def __init__(self, wb: Any, figures: dict | None = None, page_size: int = 50) -> None:
        self.wb = wb
        self.page_size = page_size
        self.items: list[dict] = []
        self._cursors: list[str | None] = [None]  # cursor of each page seen so far
        self._next: str | None = None
        self._quiet = False  # set while we change widgets ourselves
        self._tenant = classed(widgets.Dropdown(options=[("All tenants", ALL)], value=ALL,
                                                description="Tenant"), "opswb-filter-tenant")
        self._reason = classed(widgets.Dropdown(
            options=[("All reasons", ALL)] + [(r, r) for r in REASONS], value=ALL,
            description="Reason"), "opswb-filter-reason")
        self._status = classed(widgets.Dropdown(options=STATUSES, value="open",
                                                description="Status"), "opswb-filter-status")
        self._key = classed(widgets.Text(placeholder="idempotency key (exact)",
                                         description="Key", continuous_update=False),
                            "opswb-filter-key")
        self._list = classed(widgets.SelectMultiple(options=[], rows=14,
                                                    layout=widgets.Layout(width="100%")),
                             "opswb-queue-list")
        self._counts = classed(widgets.HTML(), "opswb-queue-counts")
        self._prev = button("◀ Previous page", "opswb-queue-prev")
        self._next_b = button("Next page ▶", "opswb-queue-next")
        self._refresh = button("Refresh", "opswb-queue-refresh")
        self.status = StatusLine("opswb-queue-status")
        for w in (self._tenant, self._reason, self._status, self._key):
            w.observe(self._on_filter_change, names="value")
        self._list.observe(self._on_list_change, names="value")
        self._prev.on_click(self._on_prev_click)
        self._next_b.on_click(self._on_next_click)
        self._refresh.on_click(self._on_refresh_click)
        super().__init__([
            widgets.HTML("<h3>Queue</h3>"),
            widgets.HBox([self._tenant, self._reason]),
            widgets.HBox([self._status, self._key]),
            self._list,
            widgets.HBox([self._prev, self._next_b, self._refresh, self._counts]),
            self.status,
        ])
        self.add_class("opswb-queue")
        self.figures = figures if figures is not None else wb.health()
        self.refresh()

    # ---- handlers: one line each ------------------------------------------------------
    def _on_filter_change(self, _change: dict) -> None:
        self._unless_quiet(self.first_page)

    def _on_list_change(self, change: dict) -> None:
        self._unless_quiet(self.select, list(change["new"]))

    def _on_prev_click(self, _b: widgets.Button) -> None:
        self.previous_page()

    def _on_next_click(self, _b: widgets.Button) -> None:
        self.next_page()

    def _on_refresh_click(self, _b: widgets.Button) -> None:
        self.refresh()

    def _unless_quiet(self, method: Any, *args: Any) -> None:
        """Run ``method`` unless the change came from the panel redrawing itself."""
        if not self._quiet:
            method(*args)

    @traitlets.observe("figures")
    def _on_figures_change(self, _change: dict) -> None:
        self._update_tenants()

    # ---- public ----------------------------------------------------------------------
    @property
    def filters(self) -> dict:
        """The filters as ``list_exceptions`` arguments."""
        return {"status": self._status.value, "tenant_id": self._tenant.value or None,
                "reason_code": self._reason.value or None,
                "idempotency_key": self._key.value.strip() or None}

    def set_filters(self, tenant_id: str | None = None, reason_code: str | None = None,
                    status: str = "open", idempotency_key: str | None = None) -> None:
        """Set every filter at once and show the first page."""
        self._quiet = True
        try:
            if tenant_id and tenant_id not in dict(self._tenant.options).values():
                self._tenant.options = list(self._tenant.options) + [(tenant_id, tenant_id)]
            self._tenant.value = tenant_id or ALL
            self._reason.value = reason_code or ALL
            self._status.value = status
            self._key.value = idempotency_key or ""
        finally:
            self._quiet = False
        self.first_page()

    def first_page(self) -> None:
        """Forget paging and show the first page for the current filters."""
        self._cursors = [None]
        self.refresh()

    def next_page(self) -> None:
        """Show the next page, if there is one."""
        if self._next is None:
            self.status.ok("this is the last page")
            return
        self._cursors.append(self._next)
        self.refresh()

    def previous_page(self) -> None:
        """Show the previous page, if there is one."""
        if len(self._cursors) > 1:
            self._cursors.pop()
        self.refresh()

    @shows_errors
    def refresh(self) -> None:
        """Reload the current page, keeping the ticked rows that are still listed."""
        page = self.wb.list_exceptions(limit=self.page_size, cursor=self._cursors[-1],
                                       **self.filters)
        self.items, self._next = page["items"], page["next_cursor"]
        keep = [i for i in self.selected_ids if any(e["exception_id"] == i for e in self.items)]
        self._quiet = True
        try:
            self._list.options = [(row_label(e), e["exception_id"]) for e in self.items]
            self._list.value = tuple(keep)
        finally:
            self._quiet = False
        self.selected_ids = keep
        self._prev.disabled = len(self._cursors) == 1
        self._next_b.disabled = self._next is None
        self._counts.value = self._counts_html()
        self.status.clear()

    def select(self, ids: list[str]) -> None:
        """Tick ``ids``; the row newly ticked (else the first still ticked) is shown."""
        added = [i for i in ids if i not in self.selected_ids]
        self.selected_ids = list(ids)
        if added:
            self.selected_id = added[-1]
        elif ids and self.selected_id not in ids:
            self.selected_id = ids[0]
        if list(self._list.value) != list(ids):
            self._quiet = True
            try:
                self._list.value = tuple(i for i in ids if i in dict(self._list.options).values())
            finally:
                self._quiet = False

    def show_exception(self, exception_id: str) -> None:
        """Show one exception (ticking only it)."""
        self.select([str(exception_id)])

    # ---- drawing ---------------------------------------------------------------------
    def _counts_html(self) -> str:
        first = (len(self._cursors) - 1) * self.page_size
        shown = f"rows {first + 1}–{first + len(self.items)}" if self.items else "no rows"
        total = self._known_total()
        of = f" of {total}" if total is not None else (" (more on next page)" if self._next
                                                       else "")
        ticked = f" · {len(self.selected_ids)} ticked" if self.selected_ids else ""
        return (f'<span class="opswb-muted">{esc(shown)}{esc(of)} · page {len(self._cursors)}'
                f"{esc(ticked)}</span>")

    def _known_total(self) -> int | None:
        """The total matching the filters when health figures say it exactly."""
        f, h = self.filters, self.figures
        if f["status"] != "open" or f["idempotency_key"] or not h:
            return None
        if f["tenant_id"] and f["reason_code"]:
            return None
        if f["tenant_id"]:
            return int((h.get("open_by_tenant") or {}).get(f["tenant_id"], 0))
        if f["reason_code"]:
            return int((h.get("open_by_reason") or {}).get(f["reason_code"], 0))
        return h.get("exceptions_open")

    def _update_tenants(self) -> None:
        tenants = {t for t in (self.figures.get("open_by_tenant") or {}) if t and t != "(none)"}
        tenants |= {v for _, v in self._tenant.options if v}
        self._quiet = True
        try:
            value = self._tenant.value
            self._tenant.options = [("All tenants", ALL)] + [(t, t) for t in sorted(tenants)]
            self._tenant.value = value
        finally:
            self._quiet = False


def row_label(e: dict) -> str:
    """One queue row as plain text (a Select renders it as text, never as HTML)."""
    created = e.get("created_at")
    try:
        seconds = (datetime.now(UTC) - datetime.fromisoformat(created)).total_seconds()
    except (TypeError, ValueError):
        seconds = None
    tenant = e.get("tenant_id") or "–"
    key = e.get("idempotency_key") or "–"
    reason = _SHORT.get(e.get("reason_code") or "", e.get("reason_code") or "")
    mark = "" if e.get("status") == "open" else f"  [{e.get('status')}]"
    return (f"#{e['exception_id']:<6} {reason:<12}  {tenant[:12]:<12}  {key[:28]:<28}"
            f"  {age(seconds):>7}{mark}")

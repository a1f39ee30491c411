"""QueuePanel: the exception queue as a table — filters, search, sort, pages, tick boxes.

``selected_id`` is the row viewed (its ``#id`` button), ``selected_ids`` the rows ticked
for a bulk decision; one never changes the other. ``group`` filters by failure group
(the group view sets it; the panel shows it with a button that clears it). ``query`` is
the current filters, sort and search (what a deep link carries).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import traitlets

from opswb.console.panels._common import StatusLine, button, classed, esc, shows_errors
from opswb.console.panels.queue_table import QueueTable
from opswb.store.listing import NO_TENANT

ALL = ""
REASONS = ("IDEMPOTENCY_CONFLICT", "UNKNOWN_EVENT_TYPE", "INVALID_EVENT")
STATUSES = (("open", "open"), ("resolved", "resolved"), ("all", "all"))
FILTERS = ("status", "tenant_id", "reason_code", "assignee", "q", "sort", "group",
           "idempotency_key")


class QueuePanel(widgets.VBox):
    """The exception queue; ``selected_id`` is the row to show, ``selected_ids`` the
    rows ticked for a bulk decision."""

    selected_id = traitlets.Unicode(None, allow_none=True)
    selected_ids = traitlets.List(traitlets.Unicode())
    figures = traitlets.Dict()
    group = traitlets.Unicode(None, allow_none=True)
    query = traitlets.Dict()

    def __init__(self, wb: Any, figures: dict | None = None, page_size: int = 25) -> None:
        self.wb = wb
        self.page_size = page_size
        self.items: list[dict] = []
        self._cursors: list[str | None] = [None]  # cursor of each page seen so far
        self._next: str | None = None
        self._key: str | None = None  # an exact-key filter (set_filters, deep links)
        self._quiet = False  # set while we change widgets ourselves
        self._tenant = classed(widgets.Dropdown(options=[("All tenants", ALL)], value=ALL,
                                                description="Tenant"), "opswb-filter-tenant")
        self._reason = classed(widgets.Dropdown(
            options=[("All reasons", ALL)] + [(r, r) for r in REASONS], value=ALL,
            description="Reason"), "opswb-filter-reason")
        self._status = classed(widgets.Dropdown(options=STATUSES, value="open",
                                                description="Status"), "opswb-filter-status")
        self._assignee = classed(widgets.Text(placeholder="who claimed it", description="Assignee",
                                              continuous_update=False), "opswb-filter-assignee")
        self._search = classed(widgets.Text(placeholder="search key or source",
                                            description="Search", continuous_update=False),
                               "opswb-queue-search")
        self.table = QueueTable(page_size)
        self._chips = classed(widgets.HTML(), "opswb-queue-chips")
        self._clear = button("Clear group/key filter", "opswb-queue-clear-group")
        self._counts = classed(widgets.HTML(), "opswb-queue-counts")
        self._prev = button("◀ Prev", "opswb-queue-prev", tooltip="previous page")
        self._next_b = button("Next ▶", "opswb-queue-next", tooltip="next page")
        self._refresh = button("Refresh", "opswb-queue-refresh")
        self.status = StatusLine("opswb-queue-status")
        for w in (self._tenant, self._reason, self._status, self._assignee, self._search):
            w.observe(self._on_filter_change, names="value")
        self.table.observe(self._on_table_sort, names="sort")
        self.table.observe(self._on_table_viewed, names="viewed")
        self.table.observe(self._on_table_ticked, names="ticked")
        self._clear.on_click(self._on_clear_click)
        self._prev.on_click(self._on_prev_click)
        self._next_b.on_click(self._on_next_click)
        self._refresh.on_click(self._on_refresh_click)
        small = widgets.Layout(width="48%")
        for w in (self._tenant, self._reason, self._status, self._assignee):
            w.layout = small
        self._search.layout = widgets.Layout(width="97%")
        self._filter_line = widgets.HBox([self._chips, self._clear])
        super().__init__([
            widgets.HTML("<h3>Queue</h3>"),
            widgets.HBox([self._tenant, self._reason]),
            widgets.HBox([self._status, self._assignee]),
            self._search, self._filter_line, self.table,
            widgets.HBox([self._prev, self._next_b, self._refresh, self._counts]),
            self.status,
        ])
        self.add_class("opswb-queue")
        self.figures = figures if figures is not None else wb.health()
        self.refresh()

    # ---- handlers: one line each ------------------------------------------------------
    def _on_filter_change(self, _change: dict) -> None:
        self._unless_quiet(self.first_page)

    def _on_table_sort(self, _change: dict) -> None:
        self._unless_quiet(self.first_page)

    def _on_table_viewed(self, change: dict) -> None:
        self.selected_id = change["new"]

    def _on_table_ticked(self, change: dict) -> None:
        self.selected_ids = list(change["new"])

    def _on_clear_click(self, _b: widgets.Button) -> None:
        self.clear_group()

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

    @traitlets.observe("group")
    def _on_group_change(self, _change: dict) -> None:
        self._unless_quiet(self.first_page)

    @traitlets.observe("selected_id")
    def _on_selected_id_change(self, change: dict) -> None:
        self.table.viewed = change["new"]

    @traitlets.observe("selected_ids")
    def _on_selected_ids_change(self, change: dict) -> None:
        if list(self.table.ticked) != list(change["new"]):
            self.table.ticked = list(change["new"])
            self.table.redraw_ticks()
        self._counts.value = self._counts_html()

    # ---- public ----------------------------------------------------------------------
    @property
    def filters(self) -> dict:
        """The filters, sort and search as ``list_exceptions`` arguments."""
        return {"status": self._status.value, "tenant_id": self._tenant.value or None,
                "reason_code": self._reason.value or None,
                "assignee": self._assignee.value.strip() or None,
                "q": self._search.value.strip() or None, "sort": self.table.sort,
                "group": self.group or None, "idempotency_key": self._key}

    def set_filters(self, tenant_id: str | None = None, reason_code: str | None = None,
                    status: str = "open", idempotency_key: str | None = None,
                    assignee: str | None = None, q: str | None = None, sort: str = "age",
                    group: str | None = None) -> None:
        """Set every filter at once and show the first page."""
        self._quiet = True
        try:
            if tenant_id and tenant_id not in dict(self._tenant.options).values():
                self._tenant.options = list(self._tenant.options) + [(tenant_id, tenant_id)]
            if reason_code and reason_code not in REASONS:
                self._reason.options = list(self._reason.options) + [(reason_code,) * 2]
            self._tenant.value = tenant_id or ALL
            self._reason.value = reason_code or ALL
            self._status.value = status if status in dict(STATUSES) else "open"
            self._assignee.value = assignee or ""
            self._search.value = q or ""
            self.table.sort = sort or "age"
            self.group = group or None
            self._key = idempotency_key or None
        finally:
            self._quiet = False
        self.first_page()

    def clear_group(self) -> None:
        """Drop the group and exact-key filters."""
        self._quiet = True
        try:
            self.group, self._key = None, None
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
        """Reload the current page, keeping the ticks of rows still listed (a row resolved,
        filtered out or on another page is no longer ticked: a bulk decision acts on what
        the operator sees)."""
        self._draw_filter_line()
        filters = self.filters
        page = self.wb.list_exceptions(limit=self.page_size, cursor=self._cursors[-1],
                                       **filters)
        self.items, self._next = page["items"], page["next_cursor"]
        listed = {e["exception_id"] for e in self.items}
        self.selected_ids = [i for i in self.selected_ids if i in listed]
        self.table.show(self.items, self._empty_message())
        self._prev.disabled = len(self._cursors) == 1
        self._next_b.disabled = self._next is None
        self._counts.value = self._counts_html()
        self.query = {k: v for k, v in filters.items() if v is not None}
        self.status.clear()

    def select(self, ids: list[str]) -> None:
        """Tick exactly ``ids`` (the viewed row unchanged)."""
        self.selected_ids = [str(i) for i in ids]

    def show_exception(self, exception_id: str | None) -> None:
        """View one exception (ticks unchanged)."""
        self.selected_id = None if exception_id is None else str(exception_id)

    # ---- drawing ---------------------------------------------------------------------
    def _empty_message(self) -> str:
        status = self._status.value
        what = "exceptions" if status == "all" else f"{status} exceptions"
        return f"No {what} match these filters"

    def _draw_filter_line(self) -> None:
        chips = []
        if self.group:
            chips.append(f'<span class="opswb-chip opswb-chip-group">group {esc(self.group)}</span>')
        if self._key:
            chips.append(f'<span class="opswb-chip opswb-chip-key">key {esc(self._key)}</span>')
        self._chips.value = "".join(chips)
        self._filter_line.layout.display = None if chips else "none"

    def _counts_html(self) -> str:
        first = (len(self._cursors) - 1) * self.page_size
        shown = f"rows {first + 1}–{first + len(self.items)}" if self.items else "no rows"
        total = self._known_total()
        of = (f" of {total:,}" if total is not None
              else (" (more on next page)" if self._next else ""))
        ticked = f" · {len(self.selected_ids)} ticked" if self.selected_ids else ""
        return (f'<span class="opswb-muted">{esc(shown)}{esc(of)} · page {len(self._cursors)}'
                f"{esc(ticked)}</span>")

    def _known_total(self) -> int | None:
        """The total matching the filters when health figures say it exactly."""
        f, h = self.filters, self.figures
        if f["status"] != "open" or not h or any(
                f[k] for k in ("idempotency_key", "q", "assignee", "group")):
            return None
        if f["tenant_id"] and f["reason_code"]:
            return None
        if f["tenant_id"]:
            return int((h.get("open_by_tenant") or {}).get(f["tenant_id"], 0))
        if f["reason_code"]:
            return int((h.get("open_by_reason") or {}).get(f["reason_code"], 0))
        return h.get("exceptions_open")

    def _update_tenants(self) -> None:
        known = set(self.figures.get("open_by_tenant") or {})
        tenants = {t for t in known if t and t != NO_TENANT}
        tenants |= {v for _, v in self._tenant.options if v and v != NO_TENANT}
        self._quiet = True
        try:
            value = self._tenant.value
            self._tenant.options = ([("All tenants", ALL)] + [(t, t) for t in sorted(tenants)]
                                    + [("(none): no tenant", NO_TENANT)])
            self._tenant.value = value
        finally:
            self._quiet = False

"""QueueTable: the queue's rows under column headers, a tick box per row, a view button.

Row widgets are made once and refilled page after page (making widgets is the slow part
of a page in the browser). Viewing a row (its ``#id`` button) sets ``viewed``; ticking a
row sets ``ticked``; neither touches the other. Every cell is escaped: keys, tenants and
sources come from events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import ipywidgets as widgets
import traitlets
from ipywidgets.widgets.widget_bool import CheckboxStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from opswb.console.panels._common import age, classed, esc

# (field, header, sort name or None, width in px); the widths fit the queue's column of
# the console at 1,280 px (ages before the long text, so age never scrolls away).
COLUMNS = (("id", "ID", None, 52), ("age", "Age", "age", 48), ("tenant", "Tenant", "tenant", 68),
           ("reason", "Reason", "reason", 88), ("key", "Key", "key", 96),
           ("source", "Source", None, 60), ("assignee", "Assignee", None, 56))
CELLS_WIDTH = sum(c[3] for c in COLUMNS[1:])
SHORT_REASON = {"IDEMPOTENCY_CONFLICT": "CONFLICT", "UNKNOWN_EVENT_TYPE": "UNKNOWN TYPE",
                "INVALID_EVENT": "INVALID"}
CSS = """
<style>
.opswb-qt { overflow-x: auto; font-size: 12px; }
.opswb-qt-head, .opswb-row { align-items: center; height: 26px; flex-wrap: nowrap; }
.opswb-qt .widget-html, .opswb-qt .widget-checkbox { margin: 0; }
.opswb-qt-head { border-bottom: 1px solid #adb5bd; font-weight: bold; }
.opswb-row { border-bottom: 1px solid #eef0f2; }
.opswb-row-viewed { background: #e7f5ff; }
.opswb-qt .opswb-row-blank { display: none !important; }
.opswb-qt .widget-checkbox { width: 22px; }
.opswb-qt .widget-button { height: 22px; margin: 0; padding: 0 4px; text-align: left;
                           font-size: 12px; line-height: 22px; }
.opswb-qt-head .widget-button { background: none; font-weight: bold; }
.opswb-qt .widget-html-content { line-height: 22px; height: 22px; white-space: nowrap; }
.opswb-cell { display: inline-block; overflow: hidden; text-overflow: ellipsis;
              white-space: nowrap; vertical-align: middle; padding-right: 2px;
              box-sizing: border-box; }
.opswb-queue-empty { color: #6c757d; font-style: italic; padding: 8px 4px; }
</style>
"""


def _px(width: int) -> widgets.Layout:
    return widgets.Layout(width=f"{width}px", min_width=f"{width}px")


def sort_after_click(current: str, field: str) -> str:
    """The sort after a click on ``field``'s header: ascending first, then flipped."""
    return f"-{field}" if current == field else field


def header_label(header: str, sort_name: str | None, current: str) -> str:
    """A header's text, with an arrow on the column the queue is sorted by."""
    if sort_name is None or current.lstrip("-") != sort_name:
        return header
    return header + (" ▼" if current.startswith("-") else " ▲")


def row_cells(e: dict, now: datetime | None = None) -> dict[str, str]:
    """One exception's cells as plain text (escaped when drawn)."""
    now = now or datetime.now(UTC)
    try:
        seconds = (now - datetime.fromisoformat(e.get("created_at"))).total_seconds()
    except (TypeError, ValueError):
        seconds = None
    status = "" if e.get("status") in (None, "open") else f" [{e['status']}]"
    reason = e.get("reason_code") or ""
    return {"age": age(seconds), "tenant": e.get("tenant_id") or "(none)",
            "reason": SHORT_REASON.get(reason, reason) + status,
            "key": e.get("idempotency_key") or "–", "source": e.get("source") or "–",
            "assignee": e.get("assignee") or "–"}


def cells_html(cells: dict[str, str]) -> str:
    """The cells after the id, each escaped, in fixed-width spans (full text on hover)."""
    return "".join(f'<span class="opswb-cell opswb-cell-{f}" style="width:{w}px"'
                   f' title="{esc(cells[f])}">{esc(cells[f])}</span>'
                   for f, _, _, w in COLUMNS[1:])


def row_looks() -> dict[str, dict[str, widgets.Widget]]:
    """Layouts and styles that all rows share (one model each, not one per row: every
    model is a message to the browser and an object it makes before the page is ready)."""
    return {"row": {"layout": widgets.Layout()},
            "tick": {"layout": _px(22), "style": CheckboxStyle()},
            "view": {"layout": _px(COLUMNS[0][3]), "style": widgets.ButtonStyle()},
            "cells": {"layout": _px(CELLS_WIDTH), "style": HTMLStyle()}}


class QueueRow(widgets.HBox):
    """One row: tick box, ``#id`` button that views it, the other cells (their layouts
    and styles shared with the other rows: ``row_looks``); a row without an exception
    is hidden by its class ``opswb-row-blank``."""

    def __init__(self, looks: dict[str, dict[str, widgets.Widget]]) -> None:
        self.exception_id: str | None = None
        self.tick = classed(widgets.Checkbox(indent=False, **looks["tick"]), "opswb-row-tick")
        self.view = classed(widgets.Button(**looks["view"]), "opswb-row-view")
        self.cells = classed(widgets.HTML(**looks["cells"]), "opswb-row-cells")
        super().__init__([self.tick, self.view, self.cells], **looks["row"])
        self.add_class("opswb-row")
        self.add_class("opswb-row-blank")

    def fill(self, e: dict | None, ticked: bool, viewed: bool) -> None:
        self.exception_id = None if e is None else e["exception_id"]
        (self.add_class if e is None else self.remove_class)("opswb-row-blank")
        if e is None:
            return
        self.view.description = f"#{e['exception_id']}"
        self.view.tooltip = f"view exception #{e['exception_id']}"
        self.cells.value = cells_html(row_cells(e))
        self.tick.value = ticked
        self.mark(viewed)

    def mark(self, viewed: bool) -> None:
        (self.add_class if viewed else self.remove_class)("opswb-row-viewed")


class QueueTable(widgets.VBox):
    """Header and rows; ``sort`` the order asked for, ``viewed`` the row shown,
    ``ticked`` the rows ticked for a bulk decision."""

    sort = traitlets.Unicode("age")
    viewed = traitlets.Unicode(None, allow_none=True)
    ticked = traitlets.List(traitlets.Unicode())

    def __init__(self, page_size: int) -> None:
        self._quiet = False
        self._tick_all = classed(widgets.Checkbox(indent=False, layout=_px(22),
                                                  description_allow_html=False),
                                 "opswb-tick-page")
        self._heads: dict[str, widgets.Widget] = {}
        for field, header, sort_name, width in COLUMNS:
            if sort_name is None:
                head = classed(widgets.HTML(f'<span class="opswb-cell">{esc(header)}</span>',
                                            layout=_px(width)), f"opswb-head-{field}")
            else:
                head = classed(widgets.Button(description=header, layout=_px(width),
                                              tooltip=f"sort by {header.lower()}"),
                               f"opswb-sort-{field}")
                head.on_click(self._on_head_click(sort_name))
            self._heads[field] = head
        looks = row_looks()
        self.rows = [QueueRow(looks) for _ in range(page_size)]
        for row in self.rows:
            row.tick.observe(self._on_tick_change(row), names="value")
            row.view.on_click(self._on_view_click(row))
        self._tick_all.observe(self._on_tick_all_change, names="value")
        self._empty = classed(widgets.HTML(), "opswb-queue-empty")
        head = classed(widgets.HBox([self._tick_all, *self._heads.values()]), "opswb-qt-head")
        super().__init__([widgets.HTML(CSS), head, *self.rows, self._empty])
        self.add_class("opswb-qt")
        self._draw_heads()

    # ---- handlers ----------------------------------------------------------------------
    def _on_head_click(self, sort_name: str) -> Any:
        return lambda _b: self.sort_by(sort_name)

    def _on_tick_change(self, row: QueueRow) -> Any:
        return lambda change: self._unless_quiet(self.tick, row.exception_id, change["new"])

    def _on_view_click(self, row: QueueRow) -> Any:
        return lambda _b: self.view_row(row.exception_id)

    def _on_tick_all_change(self, change: dict) -> None:
        self._unless_quiet(self.tick_page, change["new"])

    def _unless_quiet(self, method: Any, *args: Any) -> None:
        if not self._quiet:
            method(*args)

    @traitlets.observe("sort")
    def _on_sort_change(self, _change: dict) -> None:
        self._draw_heads()

    @traitlets.observe("viewed")
    def _on_viewed_change(self, change: dict) -> None:
        for row in self.rows:
            row.mark(row.exception_id is not None and row.exception_id == change["new"])

    # ---- public ------------------------------------------------------------------------
    def sort_by(self, field: str) -> None:
        """Sort by ``field`` ascending, or flip it when it is already the sort."""
        self.sort = sort_after_click(self.sort, field)

    def view_row(self, exception_id: str | None) -> None:
        """Show a row (ticks unchanged)."""
        if exception_id is not None:
            self.viewed = exception_id

    def tick(self, exception_id: str | None, on: bool) -> None:
        """Tick or untick one row (the viewed row unchanged)."""
        if exception_id is None:
            return
        rest = [i for i in self.ticked if i != exception_id]
        self.ticked = rest + [exception_id] if on else rest

    def tick_page(self, on: bool) -> None:
        """Tick or untick every row of this page."""
        page = [r.exception_id for r in self.rows if r.exception_id is not None]
        rest = [i for i in self.ticked if i not in page]
        self.ticked = rest + page if on else rest
        self.redraw_ticks()

    def show(self, items: list[dict], empty_message: str) -> None:
        """Fill the rows with ``items`` (at most one page); say ``empty_message`` if none."""
        self._quiet = True
        try:
            for i, row in enumerate(self.rows):
                e = items[i] if i < len(items) else None
                row.fill(e, e is not None and e["exception_id"] in self.ticked,
                         e is not None and e["exception_id"] == self.viewed)
            self._tick_all.value = False
        finally:
            self._quiet = False
        self._empty.value = "" if items else esc(empty_message)
        self._empty.layout.display = "none" if items else None

    def redraw_ticks(self) -> None:
        """Make the tick boxes agree with ``ticked``."""
        self._quiet = True
        try:
            for row in self.rows:
                row.tick.value = row.exception_id is not None and row.exception_id in self.ticked
        finally:
            self._quiet = False

    def _draw_heads(self) -> None:
        for field, header, sort_name, _ in COLUMNS:
            if sort_name is not None:
                self._heads[field].description = header_label(header, sort_name, self.sort)

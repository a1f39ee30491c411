"""Shared pieces of the panels: escaping, pretty JSON, the status line, error capture.

Every string that comes from an event goes through ``esc`` before it reaches an ``HTML``
widget; panels report failures in their own ``StatusLine`` because ipywidgets swallows
exceptions raised in ``on_click`` handlers and Voilà hides tracebacks.
"""

from __future__ import annotations

import functools
import html
import json
import os
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import ipywidgets as widgets

from opswb.core.errors import OpswbError

F = TypeVar("F", bound=Callable[..., Any])


def esc(value: Any) -> str:
    """``value`` as text safe to put inside HTML (quotes escaped too)."""
    return html.escape("" if value is None else str(value), quote=True)


def pretty(value: Any) -> str:
    """Indented JSON text for people (non-ASCII kept readable)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def compact(value: Any, limit: int = 120) -> str:
    """One-line JSON, cut at ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pre(value: Any, css: str = "opswb-json") -> str:
    """An escaped ``<pre>`` block of pretty JSON."""
    return f'<pre class="{css}">{esc(pretty(value))}</pre>'


def table(headers: list[str], rows: list[list[Any]], css: str = "opswb-table",
          row_css: list[str] | None = None) -> str:
    """An HTML table; every cell is escaped here, so callers pass raw values."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_css[i]}"' if row_css and row_css[i] else ""
        cells = "".join(f"<td>{esc(c)}</td>" for c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def age(seconds: float | None) -> str:
    """A short human age: ``45s``, ``12m``, ``3h 5m``, ``2d 4h``."""
    if seconds is None:
        return "–"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def operator_zone() -> tuple[tzinfo, str]:
    """The zone times are shown in, and its label: ``OPSWB_TZ`` (an IANA name) if set,
    else the server's local zone. (The browser's zone never reaches the kernel.)"""
    name = os.environ.get("OPSWB_TZ", "").strip()
    if name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    local = datetime.now().astimezone().tzinfo
    label = f"{local.tzname(None) if local else 'UTC'} (the server's zone; set OPSWB_TZ)"
    return local or ZoneInfo("UTC"), label


def zone_label() -> str:
    """What ``local_time`` converts to, for a caption."""
    return operator_zone()[1]


def local_time(value: Any) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS`` in the operator's zone (``operator_zone``);
    anything else as it is, None as a dash."""
    if value in (None, ""):
        return "–"
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if when.tzinfo is None:
        return when.strftime("%Y-%m-%d %H:%M:%S")
    return when.astimezone(operator_zone()[0]).strftime("%Y-%m-%d %H:%M:%S")


class StatusLine(widgets.HTML):
    """One line under a panel saying what just happened or what went wrong."""

    def __init__(self, css: str) -> None:
        super().__init__(value="")
        self.add_class("opswb-status")
        self.add_class(css)
        self.message = ""
        self.is_error = False

    def ok(self, message: str) -> None:
        """Show a success or progress message."""
        self._show(message, False)

    def error(self, message: str) -> None:
        """Show a failure, in red."""
        self._show(message, True)

    def clear(self) -> None:
        """Show nothing."""
        self.message, self.is_error, self.value = "", False, ""

    def _show(self, message: str, is_error: bool) -> None:
        self.message, self.is_error = message, is_error
        cls = "opswb-error" if is_error else "opswb-ok"
        self.value = f'<span class="{cls}">{esc(message)}</span>'


def shows_errors(method: F) -> F:
    """Show an ``OpswbError`` in the panel's status line instead of raising it.

    Anything else is shown as unexpected and re-raised, so tests still see bugs while an
    operator in Voilà sees a message instead of nothing.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except OpswbError as e:
            self.status.error(str(e))
            return None
        except Exception as e:
            self.status.error(f"unexpected error: {type(e).__name__}: {e}")
            raise

    return wrapper  # type: ignore[return-value]


def button(description: str, css: str, style: str = "", tooltip: str = "") -> widgets.Button:
    """A button with a text label (never icon-only: Voilà offline loses the icon font)."""
    b = widgets.Button(description=description, button_style=style, tooltip=tooltip or description,
                       layout=widgets.Layout(width="auto"))
    b.add_class(css)
    return b


def classed(widget: widgets.Widget, *css: str) -> widgets.Widget:
    """``widget`` with the given CSS classes added (stable hooks for browser tests)."""
    for c in css:
        widget.add_class(c)
    return widget

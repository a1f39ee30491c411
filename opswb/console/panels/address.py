"""AddressBar: the console's deep link — the page URL and title follow what is shown.

Why JavaScript from the kernel: Voilà gives the kernel the query string of the page that
started it (``QUERY_STRING``) but has no channel back to the address bar. An output of
type ``application/javascript`` in an ``Output`` widget is run by Voilà's page (widget
outputs are trusted), so each change of view replaces the URL's query
(``history.replaceState``: no reload, no new history entry) and the tab's title. A
visible "Link to this view" anchor carries the same URL for copying, and keeps working
where scripts don't run (a notebook opened in JupyterLab).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from opswb.console.deeplink import address_script, page_title, query_from_state, state_from_query
from opswb.console.panels._common import classed, esc


class AddressBar(widgets.HBox):
    """A copyable link to the current view; keeps the browser's URL and title in step
    with the queue's filters and the viewed exception."""

    def __init__(self, queue: Any, detail: Any) -> None:
        self.queue, self.detail = queue, detail
        self.query = ""
        self.title = page_title()
        self._link = classed(widgets.HTML(), "opswb-deep-link")
        self._script = classed(widgets.Output(layout=widgets.Layout(display="none")),
                               "opswb-address-script")
        super().__init__([self._link, self._script])
        queue.observe(self._on_view_change, names=["query", "selected_id"])
        detail.observe(self._on_view_change, names="detail")
        self.update()

    def _on_view_change(self, _change: dict) -> None:
        self.update()

    def update(self) -> None:
        """Rewrite the link, the address bar and the title for the current view."""
        viewed = self.queue.selected_id
        shown = self.detail.detail or {}
        reason = shown.get("reason_code") if shown.get("exception_id") == viewed else None
        query = query_from_state({**self.queue.query, "exception": viewed})
        title = page_title(viewed, reason)
        if (query, title) == (self.query, self.title) and self._script.outputs:
            return
        self.query, self.title = query, title
        self._link.value = (f'<a class="opswb-deep-link-a" href="?{esc(query)}" target="_blank"'
                            f' title="open this view in a new tab">Link to this view</a>'
                            f' <span class="opswb-muted">{esc(title)}</span>')
        self._script.outputs = ({"output_type": "display_data", "metadata": {},
                                 "data": {"application/javascript": address_script(query, title),
                                          "text/plain": ""}},)


def open_link(queue: Any, query_string: str | None) -> dict:
    """Show what a deep link's query string asks for (filters, sort, search, the viewed
    exception); returns the state it read."""
    state = state_from_query(query_string)
    filters = {k: v for k, v in state.items() if k != "exception"}
    if filters:
        queue.set_filters(**filters)
    if state.get("exception"):
        queue.show_exception(state["exception"])
    return state

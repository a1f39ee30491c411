"""LazySections: a Tab or an Accordion whose sections are made when first opened.

A page load then makes only what its first view shows: every widget is a model the
kernel sends and the browser builds before the page is ready. A section is made the
first time it is selected, or asked for in code (``get``/``show``); until then it holds
an empty box.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

Maker = Callable[[], widgets.Widget]


class LazySections:
    """``box`` (a Tab or an Accordion) over ``(title, maker)`` sections; a maker is
    called once, on the section's first opening."""

    def __init__(self, kind: type[widgets.Tab | widgets.Accordion],
                 sections: list[tuple[str, Maker]], selected: int | None = 0,
                 css_class: str = "") -> None:
        self._makers = [maker for _, maker in sections]
        self._made: list[widgets.Widget | None] = [None] * len(sections)
        placeholder = widgets.Box()  # one model for every section not made yet
        self.box = kind(children=[placeholder] * len(sections),
                        titles=[title for title, _ in sections], selected_index=None)
        if css_class:
            self.box.add_class(css_class)
        self.box.observe(self._on_selected_index_change, names="selected_index")
        self.box.selected_index = selected
        if selected is not None:
            self.get(selected)

    def _on_selected_index_change(self, change: dict) -> None:
        if change["new"] is not None:
            self.get(change["new"])

    def made(self, index: int) -> widgets.Widget | None:
        """Section ``index`` if it has been made, else None (nothing is made)."""
        return self._made[index]

    def get(self, index: int) -> widgets.Widget:
        """Section ``index``, made now if it was not (it is not opened)."""
        if self._made[index] is None:
            self._made[index] = self._makers[index]()
            children = list(self.box.children)
            children[index] = self._made[index]
            self.box.children = children
        return self._made[index]

    def show(self, index: int) -> widgets.Widget:
        """Open section ``index`` (made first if need be) and return it."""
        section = self.get(index)
        self.box.selected_index = index
        return section

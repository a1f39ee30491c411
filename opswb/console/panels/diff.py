"""DiffPanel: two versions of a key's event side by side, differences highlighted."""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as widgets
import traitlets

from opswb.console.panels._common import StatusLine, classed, compact, esc, shows_errors, table
from opswb.core.jsondiff import json_diff

FIRST, LAST = "first", "last"


class DiffPanel(widgets.VBox):
    """Compares FIRST and LAST of a conflict, or any two arrivals of the key."""

    detail = traitlets.Dict(None, allow_none=True)

    def __init__(self, wb: Any = None) -> None:
        self.wb = wb  # unused: everything comes with the detail, kept for a uniform API
        self.diff: dict | None = None
        self._versions: dict[str, tuple[str, dict]] = {}
        self._quiet = False
        self._left = classed(widgets.Dropdown(description="Left", options=[],
                                              layout=widgets.Layout(width="48%")),
                             "opswb-diff-left-choice")
        self._right = classed(widgets.Dropdown(description="Right", options=[],
                                               layout=widgets.Layout(width="48%")),
                              "opswb-diff-right-choice")
        self._left_view = classed(widgets.HTML(layout=widgets.Layout(width="50%")),
                                  "opswb-diff-left")
        self._right_view = classed(widgets.HTML(layout=widgets.Layout(width="50%")),
                                   "opswb-diff-right")
        self._summary = classed(widgets.HTML(), "opswb-diff-summary")
        self.status = StatusLine("opswb-diff-status")
        self._left.observe(self._on_left_change, names="value")
        self._right.observe(self._on_right_change, names="value")
        super().__init__([
            widgets.HTML("<h3>Diff</h3>"), widgets.HBox([self._left, self._right]),
            widgets.HBox([self._left_view, self._right_view],
                         layout=widgets.Layout(width="100%")),
            self._summary, self.status])
        self.add_class("opswb-diff")

    def _on_left_change(self, _change: dict) -> None:
        self.render()

    def _on_right_change(self, _change: dict) -> None:
        self.render()

    @traitlets.observe("detail")
    def _on_detail_change(self, change: dict) -> None:
        self.load(change["new"])

    @property
    def choices(self) -> list[str]:
        """The values that ``compare`` accepts: ``first``, ``last``, ``raw:<id>``."""
        return list(self._versions)

    @shows_errors
    def load(self, detail: dict | None) -> None:
        """Offer the versions of ``detail``'s key and show the default comparison; only a
        conflict has two versions to set side by side (an unknown type or an invalid
        arrival shows what fits it in the detail instead), so for those it hides."""
        conflict = bool(detail) and detail["reason_code"] == "IDEMPOTENCY_CONFLICT"
        self.layout.display = "" if conflict or not detail else "none"
        self._versions = versions_of(detail) if detail else {}
        options = [(label, value) for value, (label, _doc) in self._versions.items()]
        left, right = default_pair(self._versions)
        self._quiet = True
        try:
            self._left.options = options
            self._right.options = options
            self._left.value, self._right.value = left, right
        finally:
            self._quiet = False
        self.render()

    def compare(self, left: str, right: str) -> None:
        """Compare two versions (see ``choices``)."""
        self._quiet = True
        try:
            self._left.value, self._right.value = left, right
        finally:
            self._quiet = False
        self.render()

    @shows_errors
    def render(self) -> None:
        """Draw the two chosen versions and their differences."""
        if self._quiet:
            return
        left, right = self._left.value, self._right.value
        if left is None or right is None:
            self.diff = None
            self._left_view.value = self._right_view.value = ""
            self._summary.value = '<span class="opswb-muted">nothing to compare</span>'
            return
        (l_label, l_doc), (r_label, r_doc) = self._versions[left], self._versions[right]
        self.diff = json_diff(l_doc, r_doc)
        l_marks = {**_marks(self.diff["changed"], "changed"),
                   **_marks(self.diff["removed"], "removed")}
        r_marks = {**_marks(self.diff["changed"], "changed"),
                   **_marks(self.diff["added"], "added")}
        self._left_view.value = render_side(l_label, l_doc, l_marks)
        self._right_view.value = render_side(r_label, r_doc, r_marks)
        self._summary.value = render_summary(self.diff, left == right)
        self.status.clear()


def versions_of(d: dict) -> dict[str, tuple[str, dict]]:
    """Label and ``{event_type, payload}`` of FIRST, LAST and every arrival of the key."""
    out: dict[str, tuple[str, dict]] = {}
    first, last = d.get("first"), d.get("last")
    if first:
        patched = " + patch" if first.get("override_patch") else ""
        out[FIRST] = (f"FIRST · raw #{first['raw_id']} (delivered{patched})", _doc(first))
    if last:
        out[LAST] = (f"LAST · raw #{last['raw_id']}", _doc(last))
    for a in d.get("arrivals") or []:
        out[f"raw:{a['raw_id']}"] = (
            f"arrival raw #{a['raw_id']} · {a.get('received_at', '')[:19]}", _doc(a))
    return out


def default_pair(versions: dict) -> tuple[str | None, str | None]:
    """FIRST vs LAST for a conflict, else the key's first and latest arrivals."""
    if FIRST in versions and LAST in versions:
        return FIRST, LAST
    raws = [v for v in versions if v.startswith("raw:")]
    if not raws:
        return None, None
    return raws[0], raws[-1]


def _doc(raw: dict) -> dict:
    return {"event_type": raw.get("event_type"), "payload": raw.get("payload")}


def _marks(items: list[dict], kind: str) -> dict[str, str]:
    return {i["path"]: f"opswb-diff-{kind}" for i in items}


def _escape_token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_lines(value: Any, path: str = "", indent: int = 0, prefix: str = "",
               comma: str = "") -> list[tuple[str, str]]:
    """Pretty JSON as ``(json_pointer, line)`` pairs, so each line can be highlighted."""
    pad = "  " * indent
    if isinstance(value, dict) and value:
        out = [(path, f"{pad}{prefix}{{")]
        keys = list(value)
        for i, k in enumerate(keys):
            out += json_lines(value[k], f"{path}/{_escape_token(k)}", indent + 1,
                              json.dumps(k, ensure_ascii=False) + ": ",
                              "," if i < len(keys) - 1 else "")
        return out + [(path, f"{pad}}}{comma}")]
    if isinstance(value, list) and value:
        out = [(path, f"{pad}{prefix}[")]
        for i, v in enumerate(value):
            out += json_lines(v, f"{path}/{i}", indent + 1, "",
                              "," if i < len(value) - 1 else "")
        return out + [(path, f"{pad}]{comma}")]
    return [(path, f"{pad}{prefix}{json.dumps(value, ensure_ascii=False, default=str)}{comma}")]


def _mark_of(path: str, marks: dict[str, str]) -> str:
    for p, css in marks.items():
        if path == p or path.startswith(p + "/"):
            return css
    return ""


def render_side(label: str, doc: dict, marks: dict[str, str]) -> str:
    """One side of the diff: escaped lines, marked lines wrapped with their class."""
    lines = []
    for path, text in json_lines(doc):
        css = _mark_of(path, marks)
        cls = f"opswb-line {css}".strip()
        lines.append(f'<span class="{cls}" data-path="{esc(path)}">{esc(text)}</span>')
    return (f'<div class="opswb-diff-side"><div class="opswb-diff-title">{esc(label)}</div>'
            f'<pre class="opswb-json">{chr(10).join(lines)}</pre></div>')


def render_summary(diff: dict, same: bool) -> str:
    """The differences as a table: kind, path, left value, right value."""
    rows, css = [], []
    for kind in ("changed", "added", "removed"):
        for item in diff[kind]:
            rows.append([kind, item["path"],
                         compact(item["first"]) if "first" in item else "",
                         compact(item["last"]) if "last" in item else ""])
            css.append(f"opswb-diff-{kind}")
    if not rows:
        note = "the same version twice" if same else "no differences in event_type or payload"
        return f'<span class="opswb-muted opswb-diff-none">{esc(note)}</span>'
    return table(["", "path", "left", "right"], rows, "opswb-table opswb-diff-table", css)

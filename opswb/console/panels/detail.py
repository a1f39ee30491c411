"""DetailPanel: one exception's reason, payload, key record and per-key timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ipywidgets as widgets
import traitlets

from opswb.console.panels._common import (
    StatusLine,
    button,
    classed,
    compact,
    esc,
    pre,
    shows_errors,
    table,
)


class DetailPanel(widgets.VBox):
    """Shows ``exception_id``; publishes the loaded detail dict as ``detail``."""

    exception_id = traitlets.Unicode(None, allow_none=True)
    detail = traitlets.Dict(None, allow_none=True)

    def __init__(self, wb: Any) -> None:
        self.wb = wb
        self._header = classed(widgets.HTML('<span class="opswb-muted">Pick an exception in '
                                            "the queue.</span>"), "opswb-detail-header")
        self._payload = classed(widgets.HTML(), "opswb-detail-payload")
        self._record = classed(widgets.HTML(), "opswb-detail-record")
        self._timeline = classed(widgets.HTML(), "opswb-detail-timeline")
        self._sections = classed(widgets.Accordion(
            children=[self._payload, self._record, self._timeline],
            titles=("Raw payload", "events_processed", "Timeline"), selected_index=None),
            "opswb-detail-sections")
        self._reload = button("Reload", "opswb-detail-reload")
        self.status = StatusLine("opswb-detail-status")
        self._reload.on_click(self._on_reload_click)
        super().__init__([self._header, self._sections,
                          widgets.HBox([self._reload, self.status])])
        self.add_class("opswb-detail")

    def _on_reload_click(self, _b: widgets.Button) -> None:
        self.reload()

    @traitlets.observe("exception_id")
    def _on_exception_id_change(self, change: dict) -> None:
        self.show(change["new"])

    @shows_errors
    def show(self, exception_id: str | None) -> None:
        """Load and draw one exception (None clears the panel)."""
        if exception_id is None:
            self.detail = None
            self._header.value = ""
            return
        if self.exception_id != exception_id:
            self.exception_id = exception_id  # the observer calls us back
            return
        d = self.wb.exception(exception_id)
        self._draw(d)
        self.detail = d
        self.status.clear()

    def reload(self) -> None:
        """Load the shown exception again (after a decision, for instance)."""
        self.show(self.exception_id)

    def _draw(self, d: dict) -> None:
        self._header.value = render_header(d)
        raw = d.get("raw") or {}
        body = pre(raw.get("payload"), "opswb-json opswb-payload-json")
        if raw.get("payload") is None:
            body = '<span class="opswb-muted">no JSON payload parsed</span>'
        self._payload.value = (
            f"{body}<div class=\"opswb-muted\">raw #{esc(raw.get('raw_id'))} as received:</div>"
            f'<pre class="opswb-raw-text">{esc(raw.get("text"))}</pre>')
        rec = d.get("events_processed")
        self._record.value = (pre(rec, "opswb-json opswb-record-json") if rec else
                              '<span class="opswb-muted">no key record (invalid event)</span>')
        self._timeline.value = render_timeline(d)
        # A conflict's payloads are side by side in the diff; otherwise show the payload.
        conflict = d["reason_code"] == "IDEMPOTENCY_CONFLICT"
        self._sections.selected_index = None if conflict else 0


def render_header(d: dict) -> str:
    """Reason, identity, state and (after a decision) who decided what — escaped."""
    title = (f'<h3 class="opswb-detail-title">Exception #{esc(d["exception_id"])} · '
             f'<span class="opswb-reason-code">{esc(d["reason_code"])}</span> · '
             f'<span class="opswb-detail-state opswb-state-{esc(d["status"])}">'
             f'{esc(d["status"])}</span></h3>')
    ident = (f'<div>tenant <b>{esc(d.get("tenant_id") or "–")}</b> · key '
             f'<b class="opswb-detail-key">{esc(d.get("idempotency_key") or "–")}</b> · source '
             f'{esc(d.get("source") or "–")} · opened {esc(d.get("created_at"))} by raw '
             f'#{esc(d.get("raw_id"))} · replays {esc(d.get("replay_attempts"))}</div>')
    lines = [title, ident]
    details = d.get("details") or {}
    message = details.get("message") if isinstance(details, dict) else None
    if message:
        lines.append(f'<div class="opswb-detail-message">{esc(message)}</div>')
    lines.append(f'<details><summary>details</summary>{pre(details)}</details>')
    if d.get("status") != "open" and d.get("action"):
        lines.append(
            f'<div class="opswb-detail-resolution">resolved: <b>{esc(d["action"])}</b> by '
            f'<b>{esc(d.get("actor"))}</b> at {esc(d.get("resolved_at"))} — '
            f'{esc(d.get("resolution_notes"))}</div>')
    return "".join(lines)


def _when(value: Any) -> datetime | str:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)


def timeline_rows(d: dict) -> list[tuple[str, str, str, str]]:
    """(time, kind, reference, what) for the key's arrivals, deliveries and decisions."""
    first = (d.get("first") or {}).get("raw_id")
    last = (d.get("last") or {}).get("raw_id")
    rows: list[tuple[Any, int, int, tuple[str, str, str, str]]] = []
    for a in d.get("arrivals") or []:
        marks = [m for m, rid in (("FIRST", first), ("LAST", last),
                                  ("opened this exception", d.get("raw_id")))
                 if rid == a["raw_id"]]
        what = f"{a.get('event_type') or '(invalid)'} from {a.get('source') or '–'}"
        what += f" [{', '.join(marks)}]" if marks else ""
        rows.append((_when(a["received_at"]), 0, int(a["raw_id"]),
                     (a["received_at"], "arrival", f"raw #{a['raw_id']}", what)))
    for v in d.get("deliveries") or []:
        kind = "replay delivery" if v.get("is_replay") else "delivery"
        rows.append((_when(v["delivered_at"]), 1, int(v["delivery_id"]), (
            v["delivered_at"], kind, f"delivery #{v['delivery_id']} of raw #{v['raw_id']}",
            f"{v.get('event_type')} {compact(v.get('payload'), 80)}")))
    for e in d.get("decisions") or []:
        change = f"{e.get('state_before') or '–'} → {e.get('state_after') or '–'}"
        rows.append((_when(e["at"]), 2, int(e["audit_id"]), (
            e["at"], str(e["action"]), f"by {e.get('actor')}",
            f"{change}; notes: {e.get('notes')}")))
    rows.sort(key=lambda r: (str(r[0]), r[1], r[2]))
    return [r[3] for r in rows]


def render_timeline(d: dict) -> str:
    """The timeline as an escaped table."""
    rows = timeline_rows(d)
    kinds = [f"opswb-tl-{r[1].split()[0]}" for r in rows]
    return table(["when", "what", "ref", "details"], [list(r) for r in rows],
                 "opswb-table opswb-timeline", kinds)

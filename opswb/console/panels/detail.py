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
    local_time,
    pre,
    shows_errors,
    table,
    zone_label,
)


class DetailPanel(widgets.VBox):
    """Shows ``exception_id``; publishes the loaded detail dict as ``detail``, and, when
    the operator asks to allow an unknown type and replay its group, that group as
    ``allow_group`` (the app hands it to the groups panel)."""

    exception_id = traitlets.Unicode(None, allow_none=True)
    detail = traitlets.Dict(None, allow_none=True)
    allow_group = traitlets.Unicode(None, allow_none=True)

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
        self._reason = classed(widgets.HTML(), "opswb-detail-reason")
        self._allow = button("Allow this type and replay its group…", "opswb-detail-allow",
                             "warning")
        self._allow.layout.display = "none"
        self._reload = button("Reload", "opswb-detail-reload")
        self.status = StatusLine("opswb-detail-status")
        self._reload.on_click(self._on_reload_click)
        self._allow.on_click(self._on_allow_click)
        super().__init__([self._header, self._reason, self._allow, self._sections,
                          widgets.HBox([self._reload, self.status])])
        self.add_class("opswb-detail")

    def _on_reload_click(self, _b: widgets.Button) -> None:
        self.reload()

    def _on_allow_click(self, _b: widgets.Button) -> None:
        self.ask_allow()

    def ask_allow(self) -> None:
        """Hand this unknown type's group to the group decision (allow, then replay)."""
        self.allow_group = None
        self.allow_group = (self.detail or {}).get("group_id")

    @traitlets.observe("exception_id")
    def _on_exception_id_change(self, change: dict) -> None:
        self.show(change["new"])

    @shows_errors
    def show(self, exception_id: str | None) -> None:
        """Load and draw one exception (None clears the panel)."""
        if exception_id is None:
            self.detail = None
            self._header.value = self._reason.value = ""
            self._allow.layout.display = "none"
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
        group = self._group_of(d) if d["reason_code"] == "UNKNOWN_EVENT_TYPE" else None
        self._reason.value = render_reason(d, group)
        self._allow.layout.display = ("" if group and d["status"] == "open" else "none")
        raw = d.get("raw") or {}
        body = pre(raw.get("payload"), "opswb-json opswb-payload-json")
        if raw.get("payload") is None:
            body = '<span class="opswb-muted">no JSON payload parsed</span>'
        self._payload.value = (
            f"{body}<div class=\"opswb-muted\">raw #{esc(raw.get('raw_id'))} as received:</div>"
            f'<pre class="opswb-raw-text">{esc(raw.get("text"))}</pre>')
        rec = d.get("events_processed")
        self._record.value = (render_record(rec) if rec else
                              '<span class="opswb-muted">no key record (invalid event)</span>')
        self._timeline.value = render_timeline(d)
        # A conflict's payloads are side by side in the diff; otherwise show the payload.
        conflict = d["reason_code"] == "IDEMPOTENCY_CONFLICT"
        self._sections.selected_index = None if conflict else 0

    def _group_of(self, d: dict) -> dict | None:
        """The open failure group of an unknown type (how many keys, which tenants)."""
        page = self.wb.groups(status="open", reason_code="UNKNOWN_EVENT_TYPE", limit=1000)
        return next((g for g in page["items"] if g["group_id"] == d.get("group_id")), None)


def render_header(d: dict) -> str:
    """Reason, identity, state and (after a decision) who decided what — escaped."""
    title = (f'<h3 class="opswb-detail-title">Exception #{esc(d["exception_id"])} · '
             f'<span class="opswb-reason-code">{esc(d["reason_code"])}</span> · '
             f'<span class="opswb-detail-state opswb-state-{esc(d["status"])}">'
             f'{esc(d["status"])}</span></h3>')
    ident = (f'<div>tenant <b>{esc(d.get("tenant_id") or "–")}</b> · key '
             f'<b class="opswb-detail-key">{esc(d.get("idempotency_key") or "–")}</b> · source '
             f'{esc(d.get("source") or "–")} · opened {esc(local_time(d.get("created_at")))}'
             f' by raw #{esc(d.get("raw_id"))} · replays {esc(d.get("replay_attempts"))}'
             f' · <span class="opswb-muted">times in {esc(zone_label())}</span></div>')
    lines = [title, ident]
    details = d.get("details") or {}
    message = details.get("message") if isinstance(details, dict) else None
    if message:
        lines.append(f'<div class="opswb-detail-message">{esc(message)}</div>')
    if isinstance(details, dict):
        rest = {k: v for k, v in details.items() if k != "message"}
        if rest:
            lines.append(fields_table(rest, "opswb-detail-details"))
    else:
        lines.append(pre(details))
    if d.get("status") != "open" and d.get("action"):
        lines.append(
            f'<div class="opswb-detail-resolution">resolved: <b>{esc(d["action"])}</b> by '
            f'<b>{esc(d.get("actor"))}</b> at {esc(local_time(d.get("resolved_at")))} — '
            f'{esc(d.get("resolution_notes"))}</div>')
    return "".join(lines)


def readable(value: Any) -> str:
    """A field's value for people: lists one per line, objects as compact JSON, no
    value as a dash."""
    if value is None or value == [] or value == "":
        return "–"
    if isinstance(value, list):
        return "\n".join(str(v) if not isinstance(v, (dict, list)) else compact(v)
                         for v in value)
    if isinstance(value, dict):
        return compact(value, 200)
    return str(value)


def fields_table(fields: dict, css: str) -> str:
    """``name: value`` rows, escaped (``table`` escapes every cell)."""
    return table(["field", "value"], [[k.replace("_", " "), readable(v)]
                                      for k, v in fields.items()],
                 f"opswb-table opswb-fields {css}")


def render_record(rec: dict) -> str:
    """The key's ``events_processed`` record as readable fields."""
    shown = {k: v for k, v in rec.items() if k != "adjudicated_fingerprints"}
    fps = rec.get("adjudicated_fingerprints") or []
    shown["adjudicated fingerprints"] = f"{len(fps)}: " + ", ".join(fps) if fps else None
    return fields_table(shown, "opswb-record-fields")


def render_reason(d: dict, group: dict | None) -> str:
    """What fits the reason: an unknown type and how far it reaches (no FIRST/LAST); an
    invalid arrival's broken rule and its raw text as received."""
    details = d.get("details") if isinstance(d.get("details"), dict) else {}
    if d["reason_code"] == "UNKNOWN_EVENT_TYPE":
        etype = details.get("event_type") or (d.get("raw") or {}).get("event_type")
        reach = ""
        if group:
            tenants = ", ".join(t or "(none)" for t in group.get("tenants") or [])
            reach = (f' · <span class="opswb-unknown-reach"><b>{group["count"]:,}</b> open '
                     f'key(s) across <b>{group.get("tenant_count", 0):,}</b> tenant(s) carry '
                     f"it ({esc(tenants)})</span>")
        return (f'<div class="opswb-unknown">Unknown event type <b class="opswb-unknown-type">'
                f"{esc(etype)}</b>{reach}. Once it is supported: allow it (for this tenant or "
                "all) and replay the group.</div>")
    if d["reason_code"] == "INVALID_EVENT":
        error = str(details.get("error") or "")
        rule = error.split(":", 1)[0].strip() or "unknown"
        text = (d.get("raw") or {}).get("text")
        return (f'<div class="opswb-invalid">Broken rule: <b class="opswb-invalid-rule">'
                f"{esc(rule)}</b> — {esc(error)}</div><div class=\"opswb-muted\">raw "
                f'as received:</div><pre class="opswb-raw-text opswb-invalid-text">'
                f"{esc(text)}</pre>")
    return ""


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
                     (local_time(a["received_at"]), "arrival", f"raw #{a['raw_id']}", what)))
    for v in d.get("deliveries") or []:
        kind = "replay delivery" if v.get("is_replay") else "delivery"
        rows.append((_when(v["delivered_at"]), 1, int(v["delivery_id"]), (
            local_time(v["delivered_at"]), kind,
            f"delivery #{v['delivery_id']} of raw #{v['raw_id']}",
            f"{v.get('event_type')} {compact(v.get('payload'), 80)}")))
    for e in d.get("decisions") or []:
        change = f"{e.get('state_before') or '–'} → {e.get('state_after') or '–'}"
        rows.append((_when(e["at"]), 2, int(e["audit_id"]), (
            local_time(e["at"]), str(e["action"]), f"by {e.get('actor')}",
            f"{change}; notes: {e.get('notes')}")))
    rows.sort(key=lambda r: (str(r[0]), r[1], r[2]))
    return [r[3] for r in rows]


def render_timeline(d: dict) -> str:
    """The timeline as an escaped table."""
    rows = timeline_rows(d)
    kinds = [f"opswb-tl-{r[1].split()[0]}" for r in rows]
    return table(["when", "what", "ref", "details"], [list(r) for r in rows],
                 "opswb-table opswb-timeline", kinds)

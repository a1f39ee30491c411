"""ResolvePanel: decide one exception — action, notes, canonical raw, patch, preview,
confirmation, result."""

from __future__ import annotations

import getpass
import json
import os
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
)
from opswb.core.errors import InvalidRequest

REPLAY, NO_REPLAY = "override_and_replay", "mark_resolved_no_replay"
ACTIONS = (("Override and replay", REPLAY), ("Mark resolved, no replay", NO_REPLAY))
DEFAULT_RAW = ""


def default_actor() -> str:
    """``OPSWB_ACTOR``, else the login name."""
    actor = os.environ.get("OPSWB_ACTOR", "").strip()
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return ""


def parse_patch(text: str) -> dict | None:
    """The patch editor's text as a merge patch (blank means none)."""
    if not text.strip():
        return None
    try:
        patch = json.loads(text)
    except ValueError as e:
        raise InvalidRequest(f"the patch is not valid JSON: {e}") from None
    if not isinstance(patch, dict):
        raise InvalidRequest("the patch must be a JSON object (RFC 7396 merge patch)")
    return patch


class ResolvePanel(widgets.VBox):
    """Resolve the exception in ``detail``; ``result`` is the exception after a decision."""

    detail = traitlets.Dict(None, allow_none=True)
    result = traitlets.Dict(None, allow_none=True)

    def __init__(self, wb: Any) -> None:
        self.wb = wb
        self.preview: dict | None = None
        self._quiet = False
        self._title = classed(widgets.HTML(), "opswb-resolve-title")
        self._action = classed(widgets.Dropdown(options=ACTIONS, value=REPLAY,
                                                description="Action"), "opswb-resolve-action")
        self._actor = classed(widgets.Text(value=default_actor(), description="Actor"),
                              "opswb-resolve-actor")
        self._notes = classed(widgets.Textarea(
            description="Notes", placeholder="why (required)", continuous_update=True,
            layout=widgets.Layout(width="95%", height="4em")), "opswb-resolve-notes")
        self._canonical = classed(widgets.Dropdown(description="Canonical", options=[],
                                                   layout=widgets.Layout(width="95%")),
                                  "opswb-resolve-canonical")
        self._patch = classed(widgets.Textarea(
            description="Patch", placeholder='merge patch, e.g. {"payload": {"amount": 1200}}',
            continuous_update=True, layout=widgets.Layout(width="95%", height="5em")),
            "opswb-resolve-patch")
        self._preview = classed(widgets.HTML(), "opswb-resolve-preview")
        self._review = button("Review resolution…", "opswb-resolve-review", "primary")
        self._confirm_text = classed(widgets.HTML(), "opswb-resolve-confirm-text")
        self._confirm = button("Confirm and resolve", "opswb-resolve-confirm", "danger")
        self._cancel = button("Cancel", "opswb-resolve-cancel")
        self._confirm_box = classed(widgets.VBox(
            [self._confirm_text, widgets.HBox([self._confirm, self._cancel])],
            layout=widgets.Layout(display="none")), "opswb-resolve-confirm-box")
        self.status = StatusLine("opswb-resolve-status")
        self._notes.observe(self._on_notes_change, names="value")
        self._actor.observe(self._on_actor_change, names="value")
        self._action.observe(self._on_action_change, names="value")
        self._canonical.observe(self._on_canonical_change, names="value")
        self._patch.observe(self._on_patch_change, names="value")
        self._review.on_click(self._on_review_click)
        self._confirm.on_click(self._on_confirm_click)
        self._cancel.on_click(self._on_cancel_click)
        super().__init__([
            widgets.HTML("<h3>Resolve</h3>"), self._title, self._action, self._actor,
            self._notes, self._canonical, self._patch, self._preview, self._review,
            self._confirm_box, self.status])
        self.add_class("opswb-resolve")
        self.load(None)

    # ---- handlers: one line each ------------------------------------------------------
    def _on_notes_change(self, _change: dict) -> None:
        self.update_buttons()

    def _on_actor_change(self, _change: dict) -> None:
        self.update_buttons()

    def _on_action_change(self, _change: dict) -> None:
        self.update_preview()

    def _on_canonical_change(self, _change: dict) -> None:
        self.update_preview()

    def _on_patch_change(self, _change: dict) -> None:
        self.update_preview()

    def _on_review_click(self, _b: widgets.Button) -> None:
        self.review()

    def _on_confirm_click(self, _b: widgets.Button) -> None:
        self.submit()

    def _on_cancel_click(self, _b: widgets.Button) -> None:
        self.cancel()

    @traitlets.observe("detail")
    def _on_detail_change(self, change: dict) -> None:
        self.load(change["new"], change["old"])

    # ---- public ----------------------------------------------------------------------
    @property
    def exception_id(self) -> str | None:
        """The exception the form decides on."""
        return self.detail["exception_id"] if self.detail else None

    @property
    def can_submit(self) -> bool:
        """Whether the form is complete: an open exception, an actor and notes (non-blank)."""
        return bool(self.detail and self.detail["status"] == "open"
                    and self._actor.value.strip() and self._notes.value.strip())

    def set_form(self, action: str | None = None, actor: str | None = None,
                 notes: str | None = None, canonical_raw_id: str | None = None,
                 patch: str | dict | None = None) -> None:
        """Fill the form (None leaves a field as it is); the preview follows."""
        if action is not None:
            self._action.value = action
        if actor is not None:
            self._actor.value = actor
        if notes is not None:
            self._notes.value = notes
        if canonical_raw_id is not None:
            self._canonical.value = canonical_raw_id
        if patch is not None:
            self._patch.value = patch if isinstance(patch, str) else json.dumps(patch)

    def load(self, detail: dict | None, previous: dict | None = None) -> None:
        """Prepare the form for ``detail`` (a reload of the same exception keeps input)."""
        same = bool(detail and previous and previous["exception_id"] == detail["exception_id"])
        self._quiet = True
        try:
            if not same:
                self._notes.value = ""
                self._patch.value = ""
                self._action.value = (REPLAY if detail and detail["reason_code"]
                                      == "IDEMPOTENCY_CONFLICT" else NO_REPLAY)
                self.status.clear()
            value = self._canonical.value if same else DEFAULT_RAW
            self._canonical.options = canonical_options(detail) if detail else []
            self._canonical.value = value if detail else None
        finally:
            self._quiet = False
        self._title.value = title_html(detail)
        self._confirm_box.layout.display = "none"
        self.update_preview()

    @shows_errors
    def update_preview(self) -> None:
        """Show what the decision would do, validated by the workbench (no write)."""
        if self._quiet:
            return
        self.preview = None
        replay = self._action.value == REPLAY
        self._canonical.disabled = self._patch.disabled = not replay
        if not self.detail or self.detail["status"] != "open":
            self._preview.value = ""  # decided (or nothing picked): nothing to preview
        elif not replay:
            self._preview.value = ('<div class="opswb-preview-ok">No replay: the exception is '
                                   "closed and its key becomes <b>ignored</b>; copies of these "
                                   "payloads sent later count as duplicates.</div>")
        else:
            try:
                patch = parse_patch(self._patch.value)
            except InvalidRequest as e:
                self.preview = {"valid": False, "error": str(e), "event": None}
            else:
                self.preview = self.wb.preview(self.exception_id,
                                               self._canonical.value or None, patch)
            self._preview.value = preview_html(self.preview)
        self.update_buttons()

    def update_buttons(self) -> None:
        """Enable review only for a complete form (and a valid replay preview)."""
        valid = self._action.value != REPLAY or bool(self.preview and self.preview["valid"])
        self._review.disabled = not (self.can_submit and valid)
        self._confirm.disabled = not self.can_submit
        if not self.can_submit:
            self._confirm_box.layout.display = "none"

    @shows_errors
    def review(self) -> None:
        """Show the confirmation: what exactly will happen on confirm."""
        if not self.can_submit:
            raise InvalidRequest("fill in actor and notes first")
        self._confirm_text.value = confirmation_html(
            self.detail, self._action.value, self._actor.value, self._notes.value,
            self._canonical.value, self._patch.value, self.preview)
        self._confirm_box.layout.display = "flex"
        self.status.ok("check the decision below, then confirm")

    def cancel(self) -> None:
        """Hide the confirmation without deciding."""
        self._confirm_box.layout.display = "none"
        self.status.clear()

    @shows_errors
    def submit(self) -> dict | None:
        """Resolve the exception with the form's decision; the result is shown."""
        if not self.detail:
            raise InvalidRequest("pick an exception in the queue first")
        self._confirm_box.layout.display = "none"
        replay = self._action.value == REPLAY
        ex = self.wb.resolve(
            self.exception_id, action=self._action.value, actor=self._actor.value,
            resolution_notes=self._notes.value,
            canonical_raw_id=(self._canonical.value or None) if replay else None,
            override_patch=parse_patch(self._patch.value) if replay else None)
        self.status.ok(result_message(ex))
        self.result = ex
        return ex


def canonical_options(d: dict) -> list[tuple[str, str]]:
    """FIRST, LAST and every arrival of the key; default is the exception's raw."""
    opts = [(f"exception's raw #{d['raw_id']} (default)", DEFAULT_RAW)]
    if d.get("first"):
        opts.append((f"FIRST · raw #{d['first']['raw_id']}", d["first"]["raw_id"]))
    if d.get("last"):
        opts.append((f"LAST · raw #{d['last']['raw_id']}", d["last"]["raw_id"]))
    for a in d.get("arrivals") or []:
        opts.append((f"arrival raw #{a['raw_id']} · {a.get('event_type') or '(invalid)'}",
                     a["raw_id"]))
    seen: set[str] = set()
    return [o for o in opts if not (o[1] in seen or seen.add(o[1]))]


def title_html(d: dict | None) -> str:
    """Which exception the form decides on."""
    if not d:
        return '<span class="opswb-muted">Pick an exception in the queue.</span>'
    return (f'<div>#{esc(d["exception_id"])} · {esc(d["reason_code"])} · tenant '
            f'<b>{esc(d.get("tenant_id") or "–")}</b> · key '
            f'<b>{esc(d.get("idempotency_key") or "–")}</b> · {esc(d["status"])}</div>')


def preview_html(p: dict) -> str:
    """The preview: the event a replay would deliver, or why it would be refused."""
    if not p["valid"]:
        return f'<div class="opswb-preview-invalid">✗ refused: {esc(p["error"])}</div>'
    return (f'<div class="opswb-preview-ok">✓ valid: the replay will deliver this event '
            f'(from raw #{esc(p.get("canonical_raw_id"))}, fingerprint '
            f'{esc((p.get("fingerprint") or "")[:12])})</div>'
            + pre(p["event"], "opswb-json opswb-preview-event"))


def confirmation_html(d: dict, action: str, actor: str, notes: str, canonical: str,
                      patch_text: str, preview: dict | None) -> str:
    """What confirming will do, in words."""
    who = f"as <b>{esc(actor.strip())}</b> with notes “{esc(notes.strip())}”"
    if action == NO_REPLAY:
        what = (f"Close exception #{esc(d['exception_id'])} <b>without replay</b>; key "
                f"<b>{esc(d.get('idempotency_key') or '–')}</b> becomes ignored")
    else:
        event = (preview or {}).get("event") or {}
        raw = canonical or d["raw_id"]
        patch = f" with patch {esc(compact(parse_patch(patch_text)))}" if patch_text.strip() \
            else ""
        what = (f"<b>Replay</b> exception #{esc(d['exception_id'])} from raw #{esc(raw)}"
                f"{patch}: one delivery of {esc(event.get('event_type'))} for "
                f"{esc(d.get('tenant_id'))}/{esc(d.get('idempotency_key'))}; key becomes "
                "processed")
    return f'<div class="opswb-confirm">{what}, {who}.</div>'


def result_message(ex: dict) -> str:
    """One line saying what the decision did (under a four-eyes policy, a proposal)."""
    pending = ex.get("pending")
    if ex["status"] == "open" and pending:
        return (f"exception {ex['exception_id']} proposed: {pending['action']} by "
                f"{pending['proposed_by']}, awaiting approval by someone else (four eyes)")
    msg = f"exception {ex['exception_id']} resolved: {ex['action']} by {ex['actor']}"
    out = ex.get("replay_outcome")
    if ex["action"] == REPLAY and isinstance(out, dict):
        msg += f"; replayed as raw #{out.get('raw_id')} → {out.get('outcome')}"
    elif ex["action"] == REPLAY:
        msg += f"; delivered from raw #{ex.get('canonical_raw_id')}"
    return msg

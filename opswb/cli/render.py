"""Rendering CLI answers for people: aligned rich tables, colour where the terminal has it."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Piped output is read by people in logs and by grep: don't fold it to 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)


def _table(*columns: str, title: str | None = None) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    return t


def _s(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    return escape("" if value is None else str(value))


def health(h: dict, db: Any = None) -> None:
    idem = h["idempotency"]
    colour = "red" if h["exceptions_open"] else "green"
    out.print(f"[bold]store[/] {_s(db)}")
    out.print(f"[bold {colour}]{h['exceptions_open']}[/] exceptions open   "
              f"{h['raw_events']} arrivals stored   "
              f"keys: {idem['processed']} processed, {idem['quarantined']} quarantined, "
              f"{idem['ignored']} ignored   "
              f"{h.get('deliveries', 0)} deliveries")
    if h.get("open_by_reason"):
        t = _table("reason", "open")
        for k, v in h["open_by_reason"].items():
            t.add_row(_s(k), str(v))
        out.print(t)
    if h.get("open_by_tenant"):
        t = _table("tenant", "open")
        for k, v in h["open_by_tenant"].items():
            t.add_row(_s(k), str(v))
        out.print(t)
    if h.get("oldest_open_age_seconds") is not None:
        out.print(f"oldest open: {_age(h['oldest_open_age_seconds'])}")


def _age(seconds: float) -> str:
    """An age as an operator reads it: seconds, minutes, hours or days."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def summary(s: dict) -> None:
    t = _table("received", "processed", "duplicates", "exceptions opened", "attached")
    t.add_row(*(str(s[k]) for k in ("received", "processed", "duplicates",
                                     "exceptions_opened", "attached")))
    out.print(t)
    for f in s.get("skipped_files", []):
        out.print(f"[yellow]skipped[/] {_s(f)} (already ingested)")


def exception_list(page: dict) -> None:
    t = _table("id", "reason", "tenant", "key", "source", "status", "opened", "assignee")
    for e in page["items"]:
        status = e["status"] + (" (proposal)" if e.get("pending") else "")
        t.add_row(_s(e["exception_id"]), _s(e["reason_code"]), _s(e["tenant_id"]),
                  _s(e["idempotency_key"]), _s(e["source"]), _s(status),
                  _s((e["created_at"] or "")[:19]), _s(e.get("assignee")))
    out.print(t)
    if page.get("next_cursor"):
        out.print(f"more: --cursor {page['next_cursor']}")


def exception_detail(d: dict) -> None:
    out.print(f"[bold]exception {_s(d['exception_id'])}[/] {_s(d['reason_code'])} "
              f"[{'red' if d['status'] == 'open' else 'green'}]{_s(d['status'])}[/]  "
              f"tenant {_s(d['tenant_id'])}  key {_s(d['idempotency_key'])}  "
              f"source {_s(d['source'])}")
    out.print(f"details: {_s(d['details'])}")
    if d.get("action"):
        out.print(f"resolved: {_s(d['action'])} by {_s(d['actor'])} at "
                  f"{_s(d['resolved_at'])}: {_s(d['resolution_notes'])}")
    if d.get("assignee"):
        out.print(f"claimed by {_s(d['assignee'])}")
    if d.get("pending"):
        p = d["pending"]
        out.print(f"proposal: {_s(p['action'])} by {_s(p['proposed_by'])} at "
                  f"{_s(p['proposed_at'])}: {_s(p['resolution_notes'])}; canonical raw "
                  f"{_s(p['canonical_raw_id'])}, patch {_s(p['override_patch'])}")
    for c in d.get("comments") or []:
        out.print(f"comment by {_s(c['author'])} at {_s((c['at'] or '')[:19])}: {_s(c['text'])}")
    if d.get("diff"):
        t = _table("path", "FIRST", "LAST", title="FIRST vs LAST")
        for c in d["diff"]["changed"]:
            t.add_row(_s(c["path"]), _s(c["first"]), _s(c["last"]))
        for c in d["diff"]["added"]:
            t.add_row(_s(c["path"]), "", _s(c["last"]))
        for c in d["diff"]["removed"]:
            t.add_row(_s(c["path"]), _s(c["first"]), "")
        out.print(t)
    t = _table("raw_id", "received", "event_type", "source", "payload", title="arrivals")
    for r in d.get("arrivals", []):
        t.add_row(_s(r["raw_id"]), _s((r["received_at"] or "")[:19]), _s(r["event_type"]),
                  _s(r["source"]), _s(r["payload"] if r["payload"] is not None else r["text"]))
    out.print(t)
    if d.get("deliveries"):
        t = _table("delivery", "raw_id", "replay", "payload", title="deliveries")
        for r in d["deliveries"]:
            t.add_row(_s(r["delivery_id"]), _s(r["raw_id"]), "yes" if r["is_replay"] else "",
                      _s(r["payload"]))
        out.print(t)


def resolved(ex: dict) -> None:
    out.print(f"exception {_s(ex['exception_id'])}: [bold]{_s(ex['status'])}[/]"
              + (f" ({_s(ex['action'])} by {_s(ex['actor'])})" if ex.get("action") else ""))
    if ex.get("replay_outcome"):
        out.print(f"replay: {_s(ex['replay_outcome'])}")
    if ex.get("pending"):
        p = ex["pending"]
        out.print(f"proposal: {_s(p['action'])} by {_s(p['proposed_by'])}, awaiting a "
                  "different approver (opswb approve / reject)")


def bulk(result: dict) -> None:
    t = _table("exception", "status", "error")
    for r in result["results"]:
        colour = "green" if not r.get("error") else "red"
        t.add_row(_s(r["exception_id"]), f"[{colour}]{_s(r['status'])}[/]", _s(r.get("error")))
    out.print(t)


def types(items: list[dict]) -> None:
    t = _table("event_type", "tenant", "added by", "added at")
    for r in items:
        t.add_row(_s(r["event_type"]), _s(r["tenant_id"] or "(global)"), _s(r["added_by"]),
                  _s((r["added_at"] or "")[:19]))
    out.print(t)


def _pairs(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={_s(v)}" for k, v in value.items() if v is not None)
    return _s(value)


def audit(items: list[dict]) -> None:
    if not items:
        out.print("no audit entries match")
        return
    t = _table("#", "at", "actor", "action", "exception", "tenant", "key", "key state",
               "notes", "details", title="audit, newest first")
    for r in items:
        states = (f"{_s(r['state_before'])} → {_s(r['state_after'])}"
                  if r["state_before"] or r["state_after"] else "")
        extra = {"canonical_raw_id": r["canonical_raw_id"], "patch": r["override_patch"],
                 **(r["details"] if isinstance(r["details"], dict) else {"": r["details"]})}
        t.add_row(_s(r["audit_id"]), _s((r["at"] or "")[:19]), _s(r["actor"]),
                  _s(r["action"]), _s(r["exception_id"]), _s(r["tenant_id"]),
                  _s(r["idempotency_key"]), states, _s(r["notes"]), _pairs(extra))
    out.print(t)


@contextmanager
def progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rows-and-rate progress line on a terminal; nothing otherwise."""
    if not enabled:
        yield None
        return
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    start = time.monotonic()
    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task("ingesting", total=None)

        def update(rows: int, _nbytes: int) -> None:
            rate = rows / max(time.monotonic() - start, 1e-6)
            bar.update(task, description=f"ingesting: {rows:,} rows, {rate:,.0f} rows/s")

        yield update

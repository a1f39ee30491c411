"""`opswb groups` and the guard of a bulk resolution by filter or group (issue 17).

``groups`` lists failure groups (``wb.groups()``, as ``GET /v1/exceptions/groups``).
``guard_bulk`` runs before ``opswb resolve`` applies one decision to every open
exception matching a filter or a group: it prints the plan (how many, and a sample of
what would become of them — ``workbench.plan``) and asks for confirmation, unless
``--yes``; with ``--dry-run`` it prints the plan and nothing is written. Without a
terminal to ask on, a bulk by filter needs ``--yes``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Annotated, Any

import typer

from opswb.cli.render import _s, _table, out

Db = Annotated[str | None, typer.Option(
    "--db", help="Store path or `opswb serve` URL (default OPSWB_DB, then data/opswb.duckdb).")]
Json = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]


def groups(db: Db = None,
           status: Annotated[str, typer.Option("--status", help="open, resolved or all.")] = "open",
           tenant: Annotated[str | None, typer.Option("--tenant")] = None,
           reason: Annotated[str | None, typer.Option("--reason")] = None,
           limit: Annotated[int, typer.Option("--limit")] = 50,
           cursor: Annotated[str | None, typer.Option("--cursor")] = None,
           json_: Json = False) -> None:
    """Failure groups: exceptions by reason and what they share, largest first. A group
    id is a filter: `opswb exceptions --group ID`, `opswb resolve --group ID`."""
    import opswb

    page = opswb.connect(db).groups(status, tenant, reason, limit, cursor)
    if json_:
        typer.echo(json.dumps(page, indent=2, ensure_ascii=False))
    else:
        render_groups(page)


def render_groups(page: dict) -> None:
    if not page["items"]:
        out.print("no failure groups match")
        return
    t = _table("group", "reason", "signature", "count", "tenants", "sources", "first seen",
               "last seen", "sample")
    for g in page["items"]:
        t.add_row(_s(g["group_id"]), _s(g["reason_code"]), _signature(g["signature"]),
                  str(g["count"]), _names(g["tenants"], g["tenant_count"]),
                  _names(g["sources"], g["source_count"]), _s(g["first_seen"][:19]),
                  _s(g["last_seen"][:19]), _s(g["sample_exception_id"]))
    out.print(t)
    if page.get("next_cursor"):
        out.print(f"more: --cursor {_s(page['next_cursor'])}")


def _signature(sig: Any) -> str:
    if isinstance(sig, list):
        return _s(", ".join(sig) if sig else "(no differing path)")
    return _s(sig or "(none)")


def _names(names: list, total: int, shown: int = 3) -> str:
    text = ", ".join("(none)" if n is None else n for n in names[:shown])
    return _s(text + (f" +{total - shown} more" if total > shown else ""))


def guard_bulk(wb: Any, ids: list[str] | None, filters: dict, action: str,
               canonical: str | None, patch: Any, yes: bool, dry_run: bool,
               json_: bool) -> bool:
    """Show what a resolution of ``ids``, or a bulk by ``filters``, would do and ask;
    True to go ahead. With ``dry_run``, show it and return False; without a terminal
    and without ``yes``, refuse (typer.Exit 1) having written nothing."""
    if yes and not dry_run:
        return True
    from opswb.workbench.plan import bulk_plan

    plan = bulk_plan(wb, ids=ids, filter=None if ids else filters, action=action,
                     canonical_raw_id=canonical, override_patch=patch)
    if json_ and dry_run:
        typer.echo(json.dumps(plan, indent=2, ensure_ascii=False))
    else:
        render_plan(plan, {} if ids else filters)
    if dry_run:
        return False
    if plan["count"] == 0:
        return False
    if not sys.stdin.isatty():
        typer.echo("opswb: error: a bulk resolution by filter or group needs --yes when "
                   "there is no terminal to confirm on (see --dry-run); nothing was changed",
                   err=True)
        raise typer.Exit(1)
    return typer.confirm(f"{action} for {plan['count']} exceptions?", default=False)


def render_plan(plan: dict, filters: dict) -> None:
    where = ", ".join(f"{k}={v}" for k, v in filters.items())
    out.print(f"[bold]{plan['count']}[/] "
              + (f"open exceptions match {_s(where)}" if where else "exceptions given")
              + f": {_s(plan['action'])} would apply to each")
    if not plan["sample"]:
        return
    t = _table("exception", "reason", "tenant", "key", "would", "event / error",
               title=f"a sample of {len(plan['sample'])}")
    for s in plan["sample"]:
        colour = "green" if s["would"] == "resolve" else "red"
        t.add_row(_s(s["exception_id"]), _s(s.get("reason_code")), _s(s.get("tenant_id")),
                  _s(s.get("idempotency_key")), f"[{colour}]{_s(s['would'])}[/]",
                  _s(s.get("error") or s.get("event")))
    out.print(t)


def render_outcome(result: dict) -> None:
    """A bulk's outcome for people: counts by status, then each item that failed."""
    results = result["results"]
    counts = Counter(r["status"] for r in results)
    out.print(", ".join(f"{n} {_s(status)}" for status, n in counts.most_common())
              or "nothing matched")
    failed = [r for r in results if r.get("error")]
    if failed:
        t = _table("exception", "status", "error", title=f"{len(failed)} not resolved")
        for r in failed[:50]:
            t.add_row(_s(r["exception_id"]), f"[red]{_s(r['status'])}[/]", _s(r["error"]))
        out.print(t)
        if len(failed) > 50:
            out.print(f"... and {len(failed) - 50} more (--json lists every item)")

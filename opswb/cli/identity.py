"""The §15 commands (who may do what): ``opswb tokens``, ``opswb policy``, ``opswb audit
verify``, and ``approve``, ``reject``, ``claim``, ``unclaim``, ``comment``. Each parses
its arguments and makes one workbench call, on a store path or a serve URL."""

from __future__ import annotations

from typing import Annotated

import typer

from opswb.cli import render as clirender
from opswb.cli.commands import (
    Actor,
    Db,
    Json,
    Notes,
    Tenant,
    _fail,
    _print_json,
    _wb,
    acting,
    app,
    audit_app,
    command,
)

tokens_app = typer.Typer(no_args_is_help=True, help="Named API tokens and their roles.")
policy_app = typer.Typer(no_args_is_help=True, help="Four-eyes policies.")
app.add_typer(tokens_app, name="tokens")
app.add_typer(policy_app, name="policy")

Role = Annotated[str, typer.Option("--role", help="viewer, operator, approver or admin.")]
Approve = Annotated[str, typer.Option("--approve", help="The action that needs a second "
                                                         "person: override_and_replay.")]


@tokens_app.command("add")
@command
def tokens_add(name: str, role: Role, db: Db = None, actor: Actor = None,
               json_: Json = False) -> None:
    """Create a token; it is printed once (the store keeps only its sha256)."""
    wb = _wb(db, create=True)
    r = wb.add_token(name, role, actor=acting(actor, wb))
    if json_:
        _print_json(r)
        return
    typer.echo(r["token"])
    typer.echo(f"token {r['name']!r} ({r['role']}) created; it is shown only now: "
               "give it to its owner as OPSWB_API_TOKEN", err=True)


@tokens_app.command("list")
@command
def tokens_list(db: Db = None, json_: Json = False) -> None:
    """Names, roles, created, last used (to the minute) and revoked; never a token."""
    items = _wb(db).tokens()
    if json_:
        _print_json({"items": items, "next_cursor": None})
        return
    t = clirender._table("name", "role", "created", "by", "last used", "revoked")
    for r in items:
        t.add_row(*(clirender._s(v) for v in (
            r["name"], r["role"], (r["created_at"] or "")[:19], r["created_by"],
            (r["last_used_at"] or "never")[:19], (r["revoked_at"] or "")[:19])))
    clirender.out.print(t if items else "no tokens")


@tokens_app.command("revoke")
@command
def tokens_revoke(name: str, db: Db = None, actor: Actor = None, json_: Json = False) -> None:
    """Revoke a token: refused from its next request on."""
    wb = _wb(db)
    r = wb.revoke_token(name, actor=acting(actor, wb))
    _print_json(r) if json_ else typer.echo(f"revoked {name}")


@policy_app.command("set")
@command
def policy_set(approve: Approve = "override_and_replay", tenant: Tenant = None,
               db: Db = None, actor: Actor = None, json_: Json = False) -> None:
    """Make ACTION a proposal that a different approver must approve (globally, or for
    --tenant)."""
    wb = _wb(db)
    r = wb.set_policy(approve, tenant_id=tenant, actor=acting(actor, wb))
    _print_json(r) if json_ else typer.echo(
        f"{approve} now needs approval " + (f"for tenant {tenant}" if tenant else "globally"))


@policy_app.command("clear")
@command
def policy_clear(approve: Approve = "override_and_replay", tenant: Tenant = None,
                 db: Db = None, actor: Actor = None, json_: Json = False) -> None:
    """Remove a four-eyes policy."""
    wb = _wb(db)
    r = wb.clear_policy(approve, tenant_id=tenant, actor=acting(actor, wb))
    _print_json(r) if json_ else typer.echo(
        f"{approve} no longer needs approval " + (f"for tenant {tenant}" if tenant
                                                  else "globally"))


@policy_app.command("list")
@command
def policy_list(db: Db = None, json_: Json = False) -> None:
    """The four-eyes policies."""
    items = _wb(db).policies()
    if json_:
        _print_json({"items": items, "next_cursor": None})
        return
    for p in items:
        typer.echo(f"{p['approve']} needs approval "
                   + (f"for tenant {p['tenant_id']}" if p["tenant_id"] else "globally")
                   + f" (set by {p['set_by']} at {p['set_at'][:19]})")
    if not items:
        typer.echo("no policies: every resolution applies at once")


@audit_app.command("verify")
@command
def audit_verify(db: Db = None, json_: Json = False) -> None:
    """Walk the audit hash chain; exit 1 naming the first entry that does not match."""
    r = _wb(db).verify_audit()
    if json_:
        _print_json(r)
    elif r["ok"]:
        before = (f"; {r['unchained']} entries written before the chain existed (schema 7) "
                  "are not covered" if r["unchained"] else "")
        typer.echo(f"audit chain intact: {r['checked']} entries verified{before}")
    if not r["ok"]:
        _fail(f"audit chain broken at entry {r['first_bad']}: {r['problem']}")


@app.command()
@command
def approve(exception_id: str, actor: Actor = None, notes: Notes = None, db: Db = None,
            json_: Json = False) -> None:
    """Approve the pending proposal of an exception (four eyes: not your own)."""
    wb = _wb(db)
    ex = wb.approve(exception_id, actor=acting(actor, wb), resolution_notes=notes or "")
    _print_json(ex) if json_ else clirender.resolved(ex)


@app.command()
@command
def reject(exception_id: str, actor: Actor = None, notes: Notes = None, db: Db = None,
           json_: Json = False) -> None:
    """Reject the pending proposal of an exception; it stays open."""
    wb = _wb(db)
    ex = wb.reject(exception_id, actor=acting(actor, wb), resolution_notes=notes or "")
    _print_json(ex) if json_ else clirender.resolved(ex)


@app.command()
@command
def claim(exception_id: str, release: Annotated[bool, typer.Option(
              "--release", help="Clear the assignee instead.")] = False,
          actor: Actor = None, db: Db = None, json_: Json = False) -> None:
    """Say you are working on an open exception (its assignee)."""
    wb = _wb(db)
    who = acting(actor, wb)
    ex = wb.unclaim(exception_id, actor=who) if release else wb.claim(exception_id, actor=who)
    _print_json(ex) if json_ else typer.echo(
        f"exception {ex['exception_id']}: assignee {ex.get('assignee') or 'none'}")


@app.command()
@command
def comment(exception_id: str, text: str, actor: Actor = None, db: Db = None,
            json_: Json = False) -> None:
    """Add a comment to an exception."""
    wb = _wb(db)
    r = wb.comment(exception_id, text, actor=acting(actor, wb))
    _print_json(r) if json_ else typer.echo(
        f"exception {r['exception_id']}: {len(r['comments'])} comment(s)")

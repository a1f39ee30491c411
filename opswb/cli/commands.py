"""The `opswb` command: each subcommand parses its arguments and makes one workbench call.

Output for people goes through ``clirender``; ``--json`` prints exactly what the HTTP API
answers for the same question. Errors: one line on stderr, a non-zero exit, nothing changed.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from opswb.cli import groups as groups_cli
from opswb.cli import render as clirender
from opswb.core.errors import OpswbError, one_line
from opswb.store.config import default_db

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="opswb: ingest events exactly once, work the exception queue.")
types_app = typer.Typer(no_args_is_help=True, help="Manage the event-type allowlist.")
app.add_typer(types_app, name="types")

Db = Annotated[str | None, typer.Option(
    "--db", help="Store path or `opswb serve` URL (default OPSWB_DB, then data/opswb.duckdb).")]
Json = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]
Actor = Annotated[str | None, typer.Option("--actor",
                                            help="Who decides (default OPSWB_ACTOR, else "
                                                 "the OS user; over a URL, the token's "
                                                 "name, and another name is refused).")]
Notes = Annotated[str | None, typer.Option("--notes", help="Why (required).")]
TypeNotes = Annotated[str | None, typer.Option("--notes", help="Why (optional; audited).")]


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"opswb: error: {message}", err=True)
    raise typer.Exit(code)


def _existing(db: str | None) -> str:
    """The store ``db`` names (default ``OPSWB_DB``, then data/opswb.duckdb), refused when
    it is a path to nothing: opening it would create an empty store, and a typo would
    show "0 exceptions open". Only ``init``, ``ingest`` and ``serve`` create a store.
    A URL (an opswb serve, a PostgreSQL database) is not a path: its store answers."""
    target = str(db or default_db())
    if "://" not in target and not Path(target).exists():
        q = shlex.quote(target)
        _fail(f"no store at {target}; `opswb init --db {q}` or "
              f"`opswb ingest FILE --db {q}` creates one")
    return target


def _wb(db: str | None, create: bool = False):
    """The workbench over ``db``; unless ``create``, the store must already exist."""
    import opswb

    return opswb.connect(db if create else _existing(db))


def acting(actor: str | None, wb: Any) -> str:
    """Who a decision is recorded under (SPEC §15). Embedded: ``--actor``, else
    ``OPSWB_ACTOR``, else the OS user. Over a URL the token's name: only an explicit
    ``--actor`` is sent (the server refuses one that is not the token's name), never a
    default, which would name someone the token is not."""
    if actor and actor.strip():
        return actor
    if getattr(wb, "remote", False):
        return ""
    return os.environ.get("OPSWB_ACTOR", "").strip() or getpass.getuser()


def command(fn):
    """Turn the engine's refusals into one line on stderr and exit status 1."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OpswbError as e:
            _fail(one_line(str(e)) or type(e).__name__)
        except (OSError, ValueError) as e:
            _fail(one_line(str(e)))
    return wrapper


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _patch_arg(patch: str | None) -> Any:
    if patch is None:
        return None
    text = Path(patch[1:]).read_text() if patch.startswith("@") else patch
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValueError(f"--patch is not JSON: {e}") from None


@app.command()
@command
def init(db: Db = None, json_: Json = False) -> None:
    """Create the store (schema + seeded allowlist) if it does not exist."""
    wb = _wb(db, create=True)
    h = wb.init()
    _print_json(h) if json_ else clirender.health(h, getattr(wb, "db", db))


@app.command()
@command
def ingest(files: Annotated[list[Path], typer.Argument(help="JSONL, JSON, CSV or Parquet files.")],
           db: Db = None, json_: Json = False) -> None:
    """Ingest files (creating the store if needed); re-ingesting a file already ingested
    is a no-op."""
    wb = _wb(db, create=True)
    with clirender.progress(enabled=sys.stderr.isatty() and not json_) as on_progress:
        summary = wb.ingest([str(f) for f in files] if len(files) > 1 else str(files[0]),
                            on_progress=on_progress)
    _print_json(summary) if json_ else clirender.summary(summary)


@app.command()
@command
def health(db: Db = None, json_: Json = False) -> None:
    """Exceptions open, arrivals stored and key states."""
    wb = _wb(db)
    h = wb.health()
    _print_json(h) if json_ else clirender.health(h, getattr(wb, "db", db))


def _filters(status, tenant, reason, source, key) -> dict:
    return {"status": status, "tenant_id": tenant, "reason_code": reason, "source": source,
            "idempotency_key": key}


Status = Annotated[str, typer.Option("--status", help="open, resolved or all.")]
Tenant = Annotated[str | None, typer.Option("--tenant")]
Reason = Annotated[str | None, typer.Option("--reason")]
Source = Annotated[str | None, typer.Option("--source")]
Key = Annotated[str | None, typer.Option("--key")]
Group = Annotated[str | None, typer.Option("--group", help="A failure group (opswb groups).")]


@app.command()
@command
def exceptions(db: Db = None, status: Status = "open", tenant: Tenant = None,
               reason: Reason = None, source: Source = None, key: Key = None,
               limit: Annotated[int, typer.Option("--limit")] = 50,
               cursor: Annotated[str | None, typer.Option("--cursor")] = None,
               group: Group = None,
               assignee: Annotated[str | None, typer.Option(
                   "--assignee", help="Only those claimed by this name.")] = None,
               json_: Json = False) -> None:
    """List exceptions, oldest first."""
    page = _wb(db).list_exceptions(limit=limit, cursor=cursor, group=group, assignee=assignee,
                                   **_filters(status, tenant, reason, source, key))
    _print_json(page) if json_ else clirender.exception_list(page)


@app.command()
@command
def show(exception_id: str, db: Db = None, json_: Json = False) -> None:
    """One exception: details, FIRST vs LAST, arrivals and deliveries."""
    d = _wb(db).exception(exception_id)
    _print_json(d) if json_ else clirender.exception_detail(d)


@app.command()
@command
def resolve(ids: Annotated[list[str] | None, typer.Argument(help="Exception ids.")] = None,
            action: Annotated[str, typer.Option("--action", help=(
                "mark_resolved_no_replay or override_and_replay"))] = "",
            actor: Actor = None, notes: Notes = None,
            canonical: Annotated[str | None, typer.Option("--canonical",
                                                             help="Canonical raw_id.")] = None,
            patch: Annotated[str | None, typer.Option(
                "--patch", help="RFC 7396 merge patch: JSON text or @FILE.")] = None,
            db: Db = None, status: Status = "open", tenant: Tenant = None,
            reason: Reason = None, source: Source = None, key: Key = None,
            group: Group = None,
            yes: Annotated[bool, typer.Option("--yes", help="Bulk by filter or group: "
                                              "do not ask for confirmation.")] = False,
            dry_run: Annotated[bool, typer.Option("--dry-run", help="Print how many and a "
                                                  "sample of what would happen; write "
                                                  "nothing.")] = False,
            json_: Json = False) -> None:
    """Resolve exceptions by id, or every open one matching the filters or a group (bulk:
    asks for confirmation unless --yes)."""
    wb = _wb(db)
    actor = acting(actor, wb)
    override = _patch_arg(patch)
    filters = {k: v for k, v in _filters(None, tenant, reason, source, key).items() if v}
    if group:
        filters["group"] = group
    if (dry_run or (filters and not ids)) and not groups_cli.guard_bulk(
            wb, ids or None, filters, action, canonical, override, yes, dry_run, json_):
        return
    if ids and len(ids) == 1 and not filters:
        ex = wb.resolve(ids[0], action=action, actor=actor or "", resolution_notes=notes or "",
                        canonical_raw_id=canonical, override_patch=override)
        _print_json(ex) if json_ else clirender.resolved(ex)
        return
    if not ids and not filters:
        _fail("give exception ids, or filters (--tenant/--reason/--source/--key/--group) "
              "for bulk")
    result = wb.resolve_many(ids=ids or None, filter=None if ids else filters, action=action,
                             actor=actor or "", resolution_notes=notes or "",
                             canonical_raw_id=canonical, override_patch=override)
    if json_:
        _print_json(result)
    else:
        clirender.bulk(result) if ids else groups_cli.render_outcome(result)
    if any(r.get("error") for r in result["results"]):
        raise typer.Exit(1)


app.command("groups")(command(groups_cli.groups))


@app.command()
@command
def reopen(exception_id: str, actor: Actor = None, notes: Notes = None, db: Db = None,
           json_: Json = False) -> None:
    """Reopen a resolved exception (its key goes back to quarantined)."""
    wb = _wb(db)
    ex = wb.reopen(exception_id, actor=acting(actor, wb), resolution_notes=notes or "")
    _print_json(ex) if json_ else clirender.resolved(ex)


audit_app = typer.Typer(help="The audit trail: list entries, or verify its hash chain.")
app.add_typer(audit_app, name="audit")


@audit_app.callback(invoke_without_command=True)
@command
def audit(ctx: typer.Context, db: Db = None,
          exception: Annotated[str | None, typer.Option(
              "--exception", help="Only entries about this exception id.")] = None,
          actor: Annotated[str | None, typer.Option(
              "--actor", help="Only entries by this actor.")] = None,
          tenant: Tenant = None,
          limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 200,
          json_: Json = False) -> None:
    """Audit entries, newest first: every decision and allowlist change, by whom and why."""
    if ctx.invoked_subcommand is not None:
        return
    items = _wb(db).audit(exception_id=exception, actor=actor, tenant_id=tenant, limit=limit)
    _print_json({"items": items, "next_cursor": None}) if json_ else clirender.audit(items)


@types_app.command("list")
@command
def types_list(db: Db = None, tenant: Tenant = None, json_: Json = False) -> None:
    """Show the allowlist (global entries and per-tenant additions)."""
    items = _wb(db).types(tenant_id=tenant)
    _print_json({"items": items, "next_cursor": None}) if json_ else clirender.types(items)


@types_app.command("add")
@command
def types_add(event_type: str, db: Db = None, tenant: Tenant = None, actor: Actor = None,
              notes: TypeNotes = None, json_: Json = False) -> None:
    """Allow an event type, globally or for one tenant."""
    wb = _wb(db)
    r = wb.add_type(event_type, tenant_id=tenant, actor=acting(actor, wb), notes=notes)
    _print_json(r) if json_ else typer.echo(f"allowed {event_type}"
                                            + (f" for {tenant}" if tenant else " globally"))


@types_app.command("remove")
@command
def types_remove(event_type: str, db: Db = None, tenant: Tenant = None, actor: Actor = None,
                 notes: TypeNotes = None, json_: Json = False) -> None:
    """Remove an allowlist entry (a global type cannot be removed for one tenant)."""
    wb = _wb(db)
    r = wb.remove_type(event_type, tenant_id=tenant, actor=acting(actor, wb), notes=notes)
    _print_json(r) if json_ else typer.echo(f"removed {event_type}"
                                            + (f" for {tenant}" if tenant else " globally"))


@app.command()
@command
def serve(db: Db = None, host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
          port: Annotated[int, typer.Option("--port")] = 8765,
          snapshot_every: Annotated[float | None, typer.Option(
              "--snapshot-every", help="Record a health snapshot every N seconds "
              "(default OPSWB_SNAPSHOT_EVERY; 0 = off).")] = None) -> None:
    """Serve the HTTP API; the server owns the store file while it runs."""
    from opswb.api.server import serve as run

    run(db or default_db(), host=host, port=port, snapshot_every=snapshot_every)


@app.command()
@command
def console(db: Db = None, port: Annotated[int, typer.Option("--port")] = 8866) -> None:
    """Serve the Ops Console (Voilà) on 127.0.0.1 until Ctrl-C or SIGTERM, which stop
    Voilà and its kernels; a port already in use is refused."""
    from opswb.console.launch import serve_console

    raise typer.Exit(serve_console(_existing(db), port))


@app.command(context_settings={"allow_extra_args": True,
                                "ignore_unknown_options": True})
@command
def report(ctx: typer.Context, db: Db = None,
           out: Annotated[str, typer.Option("--out", help="Folder for the report files.")
                          ] = "reports",
           as_of: Annotated[str | None, typer.Option(
               "--as-of", help="Report clock, ISO 8601 (default now).")] = None) -> None:
    """Run the papermill health report into --out (.ipynb, .html, .json).

    Exit 0 when every threshold is met, 2 when one is breached, 1 when the notebook failed.

    Notebook parameters, each as -p NAME VALUE (repeatable):

    -p max_open N, -p max_oldest_open_hours H, -p max_invalid N: thresholds.

    -p tenant_id T: one tenant. -p since TIME: window start (default --as-of - 30 days).

    -p record_snapshot false: don't record this run's snapshot. -p out_json FILE."""
    from opswb.report.run import run_report

    target = _existing(db)
    params, extra = {}, list(ctx.args)
    while extra:
        flag = extra.pop(0)
        if flag not in ("-p", "--parameter") or len(extra) < 2:
            _fail(f"unexpected argument {flag!r}: parameters are given as -p NAME VALUE")
        name, value = extra.pop(0), extra.pop(0)  # `d[pop()] = pop()` pops the value first
        params[name] = value
    raise typer.Exit(run_report(target, out, as_of, params))


from opswb.cli.copy import copy as _copy
from opswb.cli.deliveries import deliveries as _deliveries

app.command(name="deliveries")(command(_deliveries))
app.command(name="copy")(command(_copy))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

"""Read-only analytical views over the store, for analysts' SQL (SPEC §12: local-only).

``run_sql(db, "SELECT …")`` opens the DuckDB file **read-only** for one query, defines the
views below as TEMP views on that connection, runs one ``SELECT`` and returns a pandas
DataFrame. Anything else (``UPDATE``, ``INSERT``, ``DELETE``, ``CREATE``, ``COPY``,
``ATTACH``, ``SET`` …) is refused with ``InvalidRequest`` before it runs: state only changes
through the audited resolution calls. The file is opened per call and closed again because
even a read-only holder locks writers out (SPEC §13).

Views (ids are integers here; pass them as they are, or as strings, to ``wb.exception``):

    arrivals    every raw arrival, append-only (SPEC §3) plus its fingerprint, validity,
                §10 outcome bucket and the exception it opened or joined
    keys        one row per (tenant_id, idempotency_key): the SPEC's events_processed
    exceptions  the exception queue, open and resolved (SPEC §6); JSON columns typed JSON
    deliveries  the outbox: one row per delivery, replays marked ``is_replay``
    audit       the append-only decision trail (resolutions, reopens, allowlist changes)
    types       the allowlist; ``tenant_id`` NULL for a global entry
    decisions   one row per resolution in the audit trail, classified as ``FIRST kept``,
                ``LAST chosen``, ``ignored``, ``patched`` or ``replayed``, with the FIRST
                and LAST raw ids of the conflict and ``is_latest`` (false once a later
                reopen or resolution of the same exception superseded it)

Fingerprints are computed where they decide something: ``fingerprint`` (arrivals,
deliveries) and ``canonical_fingerprint`` (keys) are NULL for a key's only arrival so far;
``opswb.core.fingerprint.fingerprint(event_type, payload)`` gives the value, and the detail view
(``wb.exception``) shows it computed.

The views are TEMP (defined per connection, never stored in the file), so they need no
migration, work on any store version, and shadow the internal tables of the same name.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb

from opswb.core.errors import InvalidRequest, LocalOnly, StoreBusy, StoreError
from opswb.store.config import busy_timeout
from opswb.store.duckdb.connection import connect_raw
from opswb.store.duckdb.queries import RAW_PAYLOAD

READ_ONLY_MESSAGE = ("analyst SQL is read-only: use the audited resolution calls "
                     "(wb.resolve, wb.resolve_many, wb.reopen, wb.add_type) to change state")
_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}

VIEW_DOCS: dict[str, str] = {
    "arrivals": "every raw arrival (append-only), with fingerprint (NULL: not computed, "
                "the key's only arrival), outcome and exception",
    "keys": "one row per (tenant_id, idempotency_key): state, canonical raw, counts",
    "exceptions": "the exception queue, open and resolved, with resolution fields",
    "deliveries": "the outbox: every delivery, replays marked is_replay",
    "audit": "the append-only audit trail of decisions and allowlist changes",
    "types": "the event-type allowlist (tenant_id NULL = global)",
    "decisions": "each resolution classified: FIRST kept, LAST chosen, ignored, patched, "
                 "replayed",
}

_VIEWS: dict[str, str] = {
    "arrivals": """
        SELECT raw_id, received_at, tenant_id, idempotency_key, event_type, source,
               occurred_at, try((""" + RAW_PAYLOAD + """)::JSON) AS payload, text, valid, error,
               outcome, exception_id, origin, replay_of, fingerprint
        FROM {db}.main.raw_events""",
    "keys": """
        SELECT tenant_id, idempotency_key, state, first_raw_id, last_raw_id,
               canonical_raw_id, canonical_fingerprint, try(override_patch::JSON) AS override_patch,
               arrival_count, delivery_count, adjudicated_fingerprints, open_exception_id
        FROM {db}.main.key_records""",
    "exceptions": """
        SELECT exception_id, tenant_id, idempotency_key, source, reason_code,
               try(details::JSON) AS details, raw_id, status, created_at, replay_attempts, action,
               actor, resolution_notes, canonical_raw_id,
               try(override_patch::JSON) AS override_patch, resolved_at,
               try(replay_outcome::JSON) AS replay_outcome
        FROM {db}.main.exceptions""",
    # The store's own outbox view names the deliveries table unqualified, which this
    # temp view's name would shadow (infinite recursion): the same query, qualified.
    "deliveries": """
        SELECT d.delivery_id, d.tenant_id, d.idempotency_key, d.raw_id,
               coalesce(d.event_type, r.event_type) AS event_type,
               try(coalesce(d.payload, r.payload, CASE WHEN r.valid THEN
                   try(json_extract(r.text, '$.payload'))::VARCHAR END)::JSON) AS payload,
               coalesce(d.fingerprint, r.fingerprint) AS fingerprint,
               d.is_replay, d.exception_id, d.delivered_at
        FROM {db}.main.deliveries d JOIN {db}.main.raw_events r ON r.raw_id = d.raw_id""",
    "audit": """
        SELECT audit_id, created_at AS at, actor, action, exception_id, tenant_id,
               idempotency_key, state_before, state_after, notes, canonical_raw_id,
               try(override_patch::JSON) AS override_patch, try(details::JSON) AS details
        FROM {db}.main.audit_log""",
    "types": """
        SELECT nullif(tenant_id, '') AS tenant_id, event_type, added_by, added_at
        FROM {db}.main.event_types""",
    # FIRST and LAST follow SPEC §5 exactly as the detail view computes them (detail.py):
    # FIRST is the key's last delivery before the exception opened (else the raw that
    # opened the key's first exception); LAST the latest attached raw differing from it.
    "decisions": """
        WITH trail AS (
            -- A later reopen (or a later resolution) supersedes a decision.
            SELECT a.*, row_number() OVER (PARTITION BY a.exception_id
                                           ORDER BY a.audit_id DESC) = 1 AS is_latest
            FROM {db}.main.audit_log a
            WHERE a.action IN ('mark_resolved_no_replay', 'override_and_replay', 'reopen')
        ), res AS (
            SELECT a.audit_id, a.created_at AS decided_at, a.actor, a.action,
                   a.exception_id, e.tenant_id, e.idempotency_key, e.source, e.reason_code,
                   e.raw_id, e.created_at, a.notes, a.canonical_raw_id, a.override_patch,
                   a.is_latest
            FROM trail a JOIN {db}.main.exceptions e USING (exception_id)
            WHERE a.action <> 'reopen'
        ), delivered AS (
            SELECT r.audit_id, d.raw_id,
                   coalesce(d.fingerprint, (SELECT any_value(f.fingerprint)
                                            FROM {db}.main.raw_fingerprints f
                                            WHERE f.raw_id = d.raw_id)) AS fingerprint,
                   row_number() OVER (PARTITION BY r.audit_id ORDER BY d.delivery_id DESC) AS n
            FROM res r JOIN {db}.main.deliveries d
              ON d.tenant_id = r.tenant_id AND d.idempotency_key = r.idempotency_key
             AND d.delivered_at <= r.created_at
             AND d.exception_id IS DISTINCT FROM r.exception_id
            WHERE r.reason_code = 'IDEMPOTENCY_CONFLICT'
        ), firsts AS (
            SELECT r.*,
                   CASE WHEN r.reason_code <> 'IDEMPOTENCY_CONFLICT' THEN NULL
                        WHEN d.raw_id IS NOT NULL THEN d.raw_id
                        ELSE k.first_exception_raw_id END AS first_raw_id,
                   CASE WHEN d.raw_id IS NOT NULL THEN d.fingerprint
                        ELSE coalesce(fr.fingerprint, (
                            SELECT any_value(f.fingerprint) FROM {db}.main.raw_fingerprints f
                            WHERE f.raw_id = fr.raw_id)) END AS first_fingerprint
            FROM res r
            LEFT JOIN delivered d ON d.audit_id = r.audit_id AND d.n = 1
            LEFT JOIN {db}.main.idempotency_keys k
              ON k.tenant_id = r.tenant_id AND k.idempotency_key = r.idempotency_key
            LEFT JOIN {db}.main.raw_events fr ON fr.raw_id = k.first_exception_raw_id
        ), lasts AS (
            SELECT f.audit_id, max(x.raw_id) AS last_raw_id
            FROM firsts f JOIN {db}.main.raw_events x
              ON x.exception_id = f.exception_id
             AND x.fingerprint IS DISTINCT FROM f.first_fingerprint
            WHERE f.reason_code = 'IDEMPOTENCY_CONFLICT'
            GROUP BY f.audit_id
        )
        SELECT f.audit_id, f.decided_at, f.actor, f.action, f.exception_id, f.tenant_id,
               f.idempotency_key, f.source, f.reason_code,
               CASE WHEN f.action = 'mark_resolved_no_replay' THEN 'ignored'
                    WHEN f.override_patch IS NOT NULL THEN 'patched'
                    WHEN f.canonical_raw_id = l.last_raw_id THEN 'LAST chosen'
                    WHEN f.canonical_raw_id = f.first_raw_id THEN 'FIRST kept'
                    ELSE 'replayed' END AS decision,
               f.canonical_raw_id, f.first_raw_id, l.last_raw_id,
               try(f.override_patch::JSON) AS override_patch, f.notes, f.is_latest
        FROM firsts f LEFT JOIN lasts l USING (audit_id)""",
}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def store_path(db: Any) -> str:
    """The file behind ``db`` (a path or a local workbench); remote workbenches refuse."""
    if getattr(db, "remote", False):
        raise LocalOnly("analyst SQL and history analytics need the store file itself: "
                        "connect with a path (opswb.connect('data/opswb.duckdb')), not a "
                        "serve URL")
    target = str(getattr(db, "db", db))
    if target.lower().startswith(("postgresql://", "postgres://")):
        raise LocalOnly("analyst SQL and history analytics read the DuckDB views; on a "
                        "PostgreSQL store run them over a DuckDB copy: "
                        "opswb.analysis.history_copy(wb) (or `opswb copy --from URL --to "
                        "FILE.duckdb`)")
    return target


def _open_read_only(path: str) -> duckdb.DuckDBPyConnection:
    if path != ":memory:" and not Path(path).exists():
        raise StoreError(f"no store at {path}: create it with `opswb init --db {path}`")
    timeout = busy_timeout()
    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect_raw(path, max(deadline - time.monotonic(), 0.0), read_only=True)
        except StoreBusy:
            raise
        except StoreError as e:
            # A read-write connection of this very process (another thread mid-call) makes
            # DuckDB refuse a read-only one; it is as transient as another process's lock.
            if "different configuration" not in str(e) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def define_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create the analytical views as TEMP views on ``con``."""
    db = _quote(con.execute("SELECT current_database()").fetchall()[0][0])
    for name, body in _VIEWS.items():
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {body.format(db=db)}")


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but one SELECT (or EXPLAIN) statement."""
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidRequest("give one SELECT statement")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise InvalidRequest(f"SQL does not parse: {e}") from None
    if len(statements) != 1:
        raise InvalidRequest(f"give exactly one SELECT statement (got {len(statements)})")
    kind = statements[0].type
    if kind not in _ALLOWED:
        raise InvalidRequest(f"{READ_ONLY_MESSAGE} (refused a {kind.name} statement)")


def run_sql(db: Any, sql: str, params: list | dict | None = None):
    """Run one read-only SELECT over the views of store ``db``; a pandas DataFrame."""
    path = store_path(db)
    con = _open_read_only(path)
    try:
        check_read_only(con, sql)
        define_views(con)
        try:
            return con.execute(sql, params).df() if params is not None else con.sql(sql).df()
        except duckdb.Error as e:
            # Read-only mode is the second wall behind the statement check.
            if "read-only" in str(e):
                raise InvalidRequest(READ_ONLY_MESSAGE) from None
            raise InvalidRequest(f"SQL failed: {e}") from None
    finally:
        con.close()


def describe_views():
    """The documented views and what each holds, as a DataFrame."""
    import pandas as pd

    return pd.DataFrame({"view": list(VIEW_DOCS), "description": list(VIEW_DOCS.values())})


class Views:
    """Attribute access to the views of one store: ``wb.views.exceptions(limit=100)``."""

    def __init__(self, db: Any):
        self._db = db

    def __dir__(self) -> list[str]:
        return [*VIEW_DOCS, "describe", "sql"]

    def __repr__(self) -> str:
        lines = [f"  {n:<11} {d}" for n, d in VIEW_DOCS.items()]
        return "Read-only views (wb.views.NAME(limit=…), wb.sql('SELECT …')):\n" + \
            "\n".join(lines)

    def describe(self):
        """The documented views and what each holds."""
        return describe_views()

    def sql(self, query: str, params: list | dict | None = None):
        """Run one read-only SELECT over the views."""
        return run_sql(self._db, query, params)

    def __getattr__(self, name: str):
        if name not in VIEW_DOCS:
            raise AttributeError(f"no view {name!r}; views: {', '.join(VIEW_DOCS)}")

        def read(limit: int | None = 10_000):
            query = f"SELECT * FROM {name}" + (" LIMIT ?" if limit is not None else "")
            return run_sql(self._db, query, [int(limit)] if limit is not None else None)

        read.__doc__ = VIEW_DOCS[name]
        return read

"""The PostgreSQL statements of a set-wise group decision (``opswb.engine.setwise``).

A batch of a thousand decisions is a handful of statements: ids travel as arrays
(``= ANY(%s)``), rows as parallel arrays unnested into a table (``UPDATE … FROM
unnest(…)``, ``INSERT … SELECT``). Locks are taken as the one-item path takes them — the
feed lock first, then the exceptions, then the key records, each set in id or key order —
so a batch and a single decision never wait on each other in a cycle.
"""

from __future__ import annotations

from typing import Any

from opswb.core.auditchain import entry_hash, epoch_us
from opswb.core.fingerprint import dumps
from opswb.core.records import KEY_FIELDS
from opswb.store.postgres.queries import (
    _EX_SELECT,
    RAW_PAYLOAD,
    _exact_text,
    feed_lock,
    one,
    rows,
    tenant_out,
)


def exceptions_by_ids(con: Any, ids: list[int], for_update: bool = False) -> dict[int, dict]:
    if not ids:
        return {}
    if for_update:
        feed_lock(con)
    found = rows(con.execute(_EX_SELECT + " WHERE exception_id = ANY(%s) ORDER BY exception_id"
                             + (" FOR UPDATE" if for_update else ""), [sorted(set(ids))]))
    return {int(r["exception_id"]): r for r in found}


def key_records_of(con: Any, exceptions: list[dict],
                   for_update: bool = False) -> dict[int, dict]:
    ids = [int(e["exception_id"]) for e in exceptions
           if e["tenant_id"] is not None and e["idempotency_key"] is not None]
    if not ids:
        return {}
    if for_update:
        feed_lock(con)
    cur = con.execute(
        "SELECT e.exception_id, " + ", ".join(f"k.{f}" for f in KEY_FIELDS)
        + ", k.open_exception_id, k.first_exception_raw_id FROM exceptions e"
        " JOIN idempotency_keys k ON k.tenant_id = e.tenant_id"
        " AND k.idempotency_key = e.idempotency_key"
        " WHERE e.exception_id = ANY(%s) AND k.state <> 'new'"
        " ORDER BY k.tenant_id, k.idempotency_key" + (" FOR UPDATE OF k" if for_update else ""),
        [ids])
    names = [d.name for d in cur.description]
    out: dict[int, dict] = {}
    for row in cur.fetchall():
        rec = dict(zip(names, row))
        out[int(rec.pop("exception_id"))] = rec
    return out


def fingerprints_of_exceptions(con: Any, spans: dict[int, tuple[int, int]]
                               ) -> dict[int, list[str]]:
    out: dict[int, set[str]] = {i: set() for i in spans}
    for ex_id, fp in con.execute(
            "SELECT DISTINCT exception_id, fingerprint FROM raw_events"
            " WHERE exception_id = ANY(%s) AND valid AND fingerprint IS NOT NULL",
            [sorted(spans)]).fetchall():
        out[ex_id].add(fp)
    return {i: sorted(fps) for i, fps in out.items()}


def raw_rows(con: Any, raw_ids: list[int]) -> dict[int, dict]:
    """Raws with their internal columns, by id (``queries.raw_row``)."""
    if not raw_ids:
        return {}
    cur = con.execute("SELECT raw_id, received_at, text, tenant_id, idempotency_key,"
                      " event_type, source, occurred_at, " + RAW_PAYLOAD + " AS payload,"
                      " fingerprint, valid, error, outcome, exception_id, origin, replay_of,"
                      " text_bytes FROM raw_events WHERE raw_id = ANY(%s)",
                      [sorted({int(i) for i in raw_ids})])
    names = [d.name for d in cur.description]
    out: dict[int, dict] = {}
    for row in cur.fetchall():
        rec = _exact_text(dict(zip(names, row)))
        rec["tenant_id"] = tenant_out(rec["tenant_id"])
        out[int(rec["raw_id"])] = rec
    return out


def last_differing_arrivals(con: Any, items: dict[int, tuple[int, int, str | None]]
                            ) -> dict[int, int]:
    if not items:
        return {}
    ids = list(items)
    found = con.execute(
        "SELECT r.exception_id, max(r.raw_id) FROM raw_events r"
        " JOIN unnest(%s::bigint[], %s::text[]) AS i(exception_id, fp)"
        " ON r.exception_id = i.exception_id WHERE r.fingerprint IS DISTINCT FROM i.fp"
        " GROUP BY 1", [ids, [items[i][2] for i in ids]]).fetchall()
    return {int(e): int(r) for e, r in found}


def update_keys(con: Any, key_rows: list[dict]) -> None:
    if not key_rows:
        return
    cols = ("tenant_id", "idempotency_key", "state", "canonical_raw_id",
            "canonical_fingerprint", "override_patch", "delivery_count")
    con.execute(
        "UPDATE idempotency_keys AS k SET state = v.state, open_exception_id = NULL,"
        " adjudicated_fingerprints = ARRAY(SELECT jsonb_array_elements_text(v.adjudicated)),"
        " canonical_raw_id = v.canonical_raw_id, canonical_fingerprint = v.canonical_fingerprint,"
        " override_patch = v.override_patch, delivery_count = v.delivery_count"
        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[],"
        " %s::bigint[], %s::jsonb[]) AS v(tenant_id, idempotency_key, state, canonical_raw_id,"
        " canonical_fingerprint, override_patch, delivery_count, adjudicated)"
        " WHERE k.tenant_id = v.tenant_id AND k.idempotency_key = v.idempotency_key",
        [*([r[c] for r in key_rows] for c in cols),
         [dumps(r["adjudicated_fingerprints"]) for r in key_rows]])


def close_exceptions(con: Any, close_rows: list[dict], action: str, actor: str, notes: str,
                     replayed: bool) -> None:
    if not close_rows:
        return
    con.execute(
        "UPDATE exceptions AS e SET status = 'resolved', action = %s, actor = %s,"
        " resolution_notes = %s, canonical_raw_id = v.canonical_raw_id,"
        " override_patch = v.override_patch, resolved_at = now(),"
        " replay_attempts = e.replay_attempts + %s, replay_outcome = NULL, pending = NULL"
        " FROM unnest(%s::bigint[], %s::bigint[], %s::text[])"
        " AS v(exception_id, canonical_raw_id, override_patch)"
        " WHERE e.exception_id = v.exception_id",
        [action, actor, notes, 1 if replayed else 0,
         *([r[c] for r in close_rows] for c in ("exception_id", "canonical_raw_id",
                                                "override_patch"))])


def add_replay_deliveries(con: Any, delivery_rows: list[dict]) -> dict[tuple[str, str], int]:
    if not delivery_rows:
        return {}
    feed_lock(con)
    cols = ("tenant_id", "idempotency_key", "raw_id", "event_type", "payload", "fingerprint",
            "exception_id")
    args = [[r[c] for r in delivery_rows] for c in cols]
    con.execute(
        "INSERT INTO deliveries (tenant_id, delivery_id, idempotency_key, raw_id, event_type,"
        " payload, fingerprint, is_replay, exception_id)"
        " SELECT tenant_id, nextval('delivery_id_seq'), idempotency_key, raw_id, event_type,"
        " payload, fingerprint, true, exception_id FROM unnest(%s::text[], %s::text[],"
        " %s::bigint[], %s::text[], %s::text[], %s::text[], %s::bigint[]) WITH ORDINALITY"
        " AS v(tenant_id, idempotency_key, raw_id, event_type, payload, fingerprint,"
        " exception_id, n) ORDER BY n", args)
    found = con.execute(
        "SELECT d.tenant_id, d.idempotency_key, count(*) FROM deliveries d"
        " JOIN (SELECT DISTINCT * FROM unnest(%s::text[], %s::text[])) AS v(tenant_id, key)"
        " ON d.tenant_id = v.tenant_id AND d.idempotency_key = v.key GROUP BY 1, 2",
        args[:2]).fetchall()
    return {(t, k): int(n) for t, k, n in found}


_AUDIT = ("tenant_id", "audit_id", "created_at", "actor", "action", "exception_id",
          "idempotency_key", "state_before", "state_after", "notes", "canonical_raw_id",
          "override_patch", "details", "prev_hash", "entry_hash")
_TYPES = {"audit_id": "bigint", "exception_id": "bigint", "canonical_raw_id": "bigint",
          "created_at": "timestamptz"}


def write_audits(con: Any, entries: list[dict]) -> None:
    """Append the entries chained in order (``queries.write_audit``, set-wise), under
    the feed lock."""
    if not entries:
        return
    feed_lock(con)
    prev = one(con, "SELECT head_hash FROM audit_chain")[0]
    ids = [r[0] for r in con.execute(
        "SELECT nextval('audit_id_seq') FROM generate_series(1, %s)", [len(entries)])]
    at = one(con, "SELECT clock_timestamp()")[0]
    out: list[dict] = []
    for audit_id, entry in zip(sorted(ids), entries):
        entry = {**entry, "tenant_id": entry.get("tenant_id") or None}
        digest = entry_hash({"audit_id": audit_id, "at_us": epoch_us(at), **entry}, prev)
        out.append({**entry, "tenant_id": entry["tenant_id"] or "", "audit_id": audit_id,
                    "created_at": at, "prev_hash": prev, "entry_hash": digest})
        prev = digest
    con.execute(
        "INSERT INTO audit_log (" + ", ".join(_AUDIT) + ") SELECT * FROM unnest("
        + ", ".join(f"%s::{_TYPES.get(c, 'text')}[]" for c in _AUDIT) + ")",
        [[r.get(c) for r in out] for c in _AUDIT])
    con.execute("UPDATE audit_chain SET head_id = %s, head_hash = %s", [out[-1]["audit_id"],
                                                                          prev])

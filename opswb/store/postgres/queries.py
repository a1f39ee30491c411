"""The read queries and small writes of the PostgreSQL store: one short function each.

Values are always bound (``%s``, psycopg's placeholder). Tenant-less rows (invalid
arrivals, global allowlist changes) are stored under tenant '' and shown as null.
"""

from __future__ import annotations

from typing import Any

from opswb.core.auditchain import entry_hash, epoch_us
from opswb.core.fingerprint import fingerprint, loads
from opswb.core.records import (
    BATCH_FIELDS,
    EXCEPTION_FIELDS,
    KEY_FIELDS,
    RAW_FIELDS,
    arrival_results,
    batch_rows,
    out_value,
)
from opswb.store.listing import DEFAULT_LISTING, Listing, listing_sql, tenant_sql

# A bulk-loaded arrival stores its payload once, inside ``text`` (json keeps its text).
PAYLOAD_OF = ("CASE WHEN {s}payload IS NULL AND {s}valid THEN ({s}text::json -> 'payload')::text"
              " ELSE {s}payload END")
RAW_PAYLOAD = PAYLOAD_OF.format(s="")
_RAW_SELECT = ("SELECT " + ", ".join(f"{RAW_PAYLOAD} AS payload" if f == "payload" else f
                                     for f in RAW_FIELDS) + ", text_bytes FROM raw_events")


def _exact_text(row: dict) -> dict:
    """A raw's exact text: ``text_bytes`` when PostgreSQL text could not hold it."""
    exact = row.pop("text_bytes", None)
    if exact is not None:
        row["text"] = bytes(exact).decode("utf-8", "surrogatepass")
    return row


def tenant_out(value: Any) -> Any:
    return None if value == "" else value


def rows(cur: Any) -> list[dict]:
    names = [d.name for d in cur.description]
    return [_exact_text({n: v if n == "text_bytes" else tenant_out(v) if n == "tenant_id"
                         else out_value(n, v) for n, v in zip(names, r)})
            for r in cur.fetchall()]


def one(con: Any, sql: str, args: list | None = None) -> Any:
    return con.execute(sql, args or []).fetchone()


# ---- ingest ledger, HTTP batches -------------------------------------------------------

def ledger_progress(con: Any, origin: str) -> tuple[bool, int]:
    row = one(con, "SELECT coalesce(bool_or(chunk_no = -1), false),"
                   " coalesce(max(byte_offset), 0) FROM ingest_ledger WHERE origin = %s", [origin])
    return bool(row[0]), int(row[1])


def ledger_record(con: Any, origin: str, name: str, rows_done: int, end_offset: int) -> None:
    con.execute("INSERT INTO ingest_ledger (origin, name, chunk_no, rows_done, byte_offset)"
                " SELECT %s, %s, coalesce(max(chunk_no), 0) + 1, %s, %s FROM ingest_ledger"
                " WHERE origin = %s AND chunk_no >= 0",
                [origin, name, rows_done, end_offset, origin])


def ledger_complete(con: Any, origin: str, name: str | None) -> None:
    con.execute("INSERT INTO ingest_ledger (origin, name, chunk_no, rows_done, byte_offset)"
                " SELECT %s, %s, -1, coalesce(sum(rows_done), 0), coalesce(max(byte_offset), 0)"
                " FROM ingest_ledger WHERE origin = %s", [origin, name, origin])


def batch_records(con: Any, batch_ids: list[str]) -> dict[str, dict]:
    if not batch_ids:
        return {}
    return {r[0]: dict(zip(BATCH_FIELDS, r[1:])) for r in con.execute(
        "SELECT batch_id, body_sha256, first_raw_id, arrivals FROM ingest_batches"
        " WHERE batch_id = ANY(%s)", [batch_ids]).fetchall()}


def record_batches(con: Any, batches: list[tuple[str, str | None, list[dict]]]) -> None:
    """Several writers draw raw ids at once, so a batch's raws are not one id range:
    ``batch_results`` finds them by their origin from the first one on."""
    rows = batch_rows(batches)
    if rows:
        con.execute("INSERT INTO ingest_batches (batch_id, body_sha256, first_raw_id,"
                    " arrivals) SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[],"
                    " %s::bigint[])", [list(c) for c in zip(*rows)])


def batch_results(con: Any, record: dict) -> list[dict]:
    if not record["arrivals"]:
        return []
    return arrival_results(con.execute(
        "SELECT r.raw_id, r.outcome, r.exception_id, e.reason_code FROM raw_events r"
        " LEFT JOIN exceptions e ON e.tenant_id = r.tenant_id"
        " AND e.exception_id = r.exception_id"
        " WHERE r.raw_id >= %s AND r.origin = (SELECT origin FROM raw_events WHERE raw_id = %s)"
        " ORDER BY r.raw_id LIMIT %s",
        [record["first_raw_id"], record["first_raw_id"], record["arrivals"]]).fetchall())


# ---- raws, keys, deliveries ------------------------------------------------------------

def raws_by_id(con: Any, raw_ids: list[int]) -> dict[str, dict]:
    if not raw_ids:
        return {}
    found = rows(con.execute(_RAW_SELECT + " WHERE raw_id = ANY(%s)",
                             [[int(i) for i in raw_ids]]))
    return {r["raw_id"]: r for r in found}


def raw_row(con: Any, raw_id: int) -> dict | None:
    cur = con.execute("SELECT raw_id, received_at, text, tenant_id, idempotency_key,"
                      " event_type, source, occurred_at, " + RAW_PAYLOAD + " AS payload,"
                      " fingerprint, valid, error, outcome, exception_id, origin, replay_of, text_bytes"
                      " FROM raw_events WHERE raw_id = %s", [raw_id])
    names = [d.name for d in cur.description]
    row = cur.fetchone()
    if not row:
        return None
    rec = _exact_text(dict(zip(names, row)))
    rec["tenant_id"] = tenant_out(rec["tenant_id"])
    return rec


def key_arrivals(con: Any, rec: dict | None) -> list[dict]:
    if rec is None:
        return []
    return rows(con.execute(
        _RAW_SELECT + " WHERE tenant_id = %s AND idempotency_key = %s AND valid"
        " ORDER BY raw_id", [rec["tenant_id"], rec["idempotency_key"]]))


def key_deliveries(con: Any, rec: dict | None) -> list[dict]:
    if rec is None:
        return []
    found = rows(con.execute(
        "SELECT d.delivery_id, d.raw_id, coalesce(d.event_type, r.event_type) AS event_type,"
        " coalesce(d.payload, " + PAYLOAD_OF.format(s="r.") + ") AS payload,"
        " coalesce(d.fingerprint, r.fingerprint) AS fingerprint, d.is_replay,"
        " d.exception_id, d.delivered_at FROM deliveries d JOIN raw_events r"
        " ON r.tenant_id = d.tenant_id AND r.raw_id = d.raw_id"
        " WHERE d.tenant_id = %s AND d.idempotency_key = %s ORDER BY d.delivery_id",
        [rec["tenant_id"], rec["idempotency_key"]]))
    for r in found:
        if r["fingerprint"] is None and r["payload"] is not None:
            r["fingerprint"] = fingerprint(r["event_type"], r["payload"])
    return found


def key_record(con: Any, tenant_id: str | None, key: str | None,
               for_update: bool = False) -> dict | None:
    """A key's record; in a write, locked until the transaction ends. (The primary key
    makes the lookup selective: the exception's hint that DuckDB uses is not needed.)"""
    if tenant_id is None or key is None:
        return None
    if for_update:
        feed_lock(con)
    cur = con.execute(
        "SELECT " + ", ".join(KEY_FIELDS) + ", open_exception_id, first_exception_raw_id"
        " FROM idempotency_keys WHERE tenant_id = %s AND idempotency_key = %s"
        " AND state <> 'new'" + (" FOR UPDATE" if for_update else ""), [tenant_id, key])
    names = [d.name for d in cur.description]
    row = cur.fetchone()
    return dict(zip(names, row)) if row else None


def stored_events(con: Any, raw_ids: list[int]) -> dict[int, tuple[str, str, str | None]]:
    """``{raw_id: (event_type, payload JSON, fingerprint)}`` of stored valid raws."""
    if not raw_ids:
        return {}
    return {r[0]: r[1:] for r in con.execute(
        "SELECT raw_id, event_type, " + RAW_PAYLOAD + ", fingerprint FROM raw_events"
        " WHERE valid AND raw_id = ANY(%s)", [sorted({int(i) for i in raw_ids})]).fetchall()}


def raw_fingerprints(con: Any, raw_ids: list[int]) -> dict[int, str]:
    return {i: fp if fp is not None else fingerprint(etype, loads(payload))
            for i, (etype, payload, fp) in stored_events(con, raw_ids).items()}


def exception_fingerprints(con: Any, exception_id: int,
                           raw_range: tuple[int, int] | None = None) -> list[str]:
    low, high = raw_range if raw_range is not None else (0, 2**63 - 1)
    found = con.execute("SELECT DISTINCT fingerprint FROM raw_events WHERE exception_id = %s"
                        " AND raw_id BETWEEN %s AND %s AND valid AND fingerprint IS NOT NULL",
                        [exception_id, low, high]).fetchall()
    return sorted(r[0] for r in found)


# ---- exceptions ------------------------------------------------------------------------

_EX_SELECT = "SELECT " + ", ".join(EXCEPTION_FIELDS) + " FROM exceptions"


def exception_by_id(con: Any, exception_id: int, for_update: bool = False) -> dict | None:
    """One exception; in a write, locked until the transaction ends, so exactly one of
    concurrent decisions on it sees it open."""
    if for_update:
        feed_lock(con)
    found = rows(con.execute(_EX_SELECT + " WHERE exception_id = %s"
                             + (" FOR UPDATE" if for_update else ""), [exception_id]))
    return found[0] if found else None


def list_exceptions(con: Any, status: str | None = "open", tenant_id: str | None = None,
                    reason_code: str | None = None, source: str | None = None,
                    idempotency_key: str | None = None, limit: int | None = None,
                    group_id: str | None = None, assignee: str | None = None,
                    listing: Listing = DEFAULT_LISTING,
                    pending: bool | None = None) -> list[dict]:
    where, args = tenant_sql(tenant_id, "%s")
    for col, val in (("status", status), ("reason_code", reason_code), ("source", source),
                     ("idempotency_key", idempotency_key), ("group_id", group_id),
                     ("assignee", assignee)):
        if val is not None and val != "":
            where.append(f"{col} = %s")
            args.append(val)
    if pending is not None:
        where.append("pending IS NOT NULL" if pending else "pending IS NULL")
    # Byte order, as DuckDB sorts: the same page boundaries on both backends.
    l_where, l_args, order = listing_sql(listing, "%s", ' COLLATE "C"')
    sql = (_EX_SELECT + (" WHERE " + " AND ".join(where + l_where) if where + l_where else "")
           + " ORDER BY " + order)
    args += l_args
    if limit is not None:
        sql += " LIMIT %s"
        args.append(limit)
    return rows(con.execute(sql, args))


def open_exception_of_key(con: Any, tenant_id: str, key: str) -> int | None:
    row = one(con, "SELECT exception_id FROM exceptions WHERE tenant_id = %s"
                   " AND idempotency_key = %s AND status = 'open'"
                   " AND reason_code <> 'INVALID_EVENT' LIMIT 1", [tenant_id, key])
    return row[0] if row else None


# ---- audit, allowlist, snapshots ----------------------------------------------------------

def audit_entries(con: Any, exception_id: int | None = None, actor: str | None = None,
                  tenant_id: str | None = None, limit: int = 200) -> list[dict]:
    where, args = [], []
    for col, val in (("exception_id", exception_id), ("actor", actor),
                     ("tenant_id", tenant_id)):
        if val is not None and val != "":
            where.append(f"{col} = %s")
            args.append(val)
    sql = ("SELECT audit_id, created_at AS at, actor, action, exception_id, tenant_id,"
           " idempotency_key, state_before, state_after, notes, canonical_raw_id,"
           " override_patch, details FROM audit_log"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY audit_id DESC LIMIT %s")
    found = rows(con.execute(sql, args + [limit]))
    for r in found:
        r["details"] = loads(r["details"]) if isinstance(r["details"], str) else r["details"]
    return found


FEED_LOCK = 0x6F707377_62000002  # pg_advisory_xact_lock key: delivery ids, the audit chain


def feed_lock(con: Any) -> None:
    """Serialise, until commit, the transactions that hand out delivery ids or chain
    audit entries: ids are then handed out in commit order, so the deliveries feed is
    gap-free for a reader that follows its cursor (``Session.deliveries_after``), and
    each audit entry chains to the one committed before it.

    A writer that locks rows takes it *before* its first row lock (a decision when it
    reads its exception or key record for update, an ingest before it locks its keys):
    taken after, a writer holding it could wait for a row another holds while that one
    waits for it (a deadlock, found by a two-replica test). Taking it again is free.

    In the same statement, a ``NOTIFY`` on ``COMMITS_CHANNEL``: sent when (and only if)
    the transaction commits, it wakes every process waiting on the deliveries feed
    (``listen.CommitListener``), whichever replica wrote."""
    con.execute("SELECT pg_advisory_xact_lock(%s), pg_notify(%s, '')",
                [FEED_LOCK, COMMITS_CHANNEL])


COMMITS_CHANNEL = "opswb_commits"


def write_audit(con: Any, **entry: Any) -> None:
    """Append one audit entry, chained to the one before it (``opswb.core.auditchain``;
    the head moves with it), under the feed lock."""
    feed_lock(con)
    prev = one(con, "SELECT head_hash FROM audit_chain")[0]
    audit_id, at = one(con, "SELECT nextval('audit_id_seq'), clock_timestamp()")
    entry = {**entry, "tenant_id": entry.get("tenant_id") or None}
    digest = entry_hash({"audit_id": audit_id, "at_us": epoch_us(at), **entry}, prev)
    con.execute(
        "INSERT INTO audit_log (tenant_id, audit_id, created_at, actor, action, exception_id,"
        " idempotency_key, state_before, state_after, notes, canonical_raw_id, override_patch,"
        " details, prev_hash, entry_hash)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [entry["tenant_id"] or "", audit_id, at, entry["actor"], entry["action"],
         entry.get("exception_id"), entry.get("idempotency_key"), entry.get("state_before"),
         entry.get("state_after"), entry.get("notes"), entry.get("canonical_raw_id"),
         entry.get("override_patch"), entry.get("details"), prev, digest])
    con.execute("UPDATE audit_chain SET head_id = %s, head_hash = %s", [audit_id, digest])


def allowed_types(con: Any, tenant_id: str | None = None) -> list[dict]:
    sql = "SELECT tenant_id, event_type, added_by, added_at FROM event_types"
    args: list = []
    if tenant_id:
        sql += " WHERE tenant_id IN ('', %s)"
        args.append(tenant_id)
    return rows(con.execute(sql + " ORDER BY tenant_id, event_type", args))


def is_allowed(con: Any, tenant_id: str, event_type: str) -> bool:
    return one(con, "SELECT count(*) FROM event_types WHERE event_type = %s"
                    " AND tenant_id IN ('', %s)", [event_type, tenant_id])[0] > 0


def snapshot_rows(con: Any, since: str | None = None) -> list[dict]:
    sql = ("SELECT taken_at, exceptions_open, raw_events, processed, quarantined, ignored,"
           " body FROM health_snapshots")
    args: list = []
    if since:
        sql += " WHERE taken_at >= %s::timestamptz"
        args.append(since)
    found = rows(con.execute(sql + " ORDER BY taken_at", args))
    for r in found:
        r["body"] = loads(r["body"])
    return found

"""The read queries and small writes of the store: one short function per query.

Values are always bound with ``?``; ids are BIGINT inside and strings outside
(``raw_id``, ``exception_id`` are opaque to clients).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

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
from opswb.store.duckdb.connection import fetch_one
from opswb.store.listing import DEFAULT_LISTING, Listing, listing_sql, tenant_sql


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict]:
    names = [d[0] for d in cur.description]
    return [{n: out_value(n, v) for n, v in zip(names, r)} for r in cur.fetchall()]


# ---- ingest ledger ---------------------------------------------------------------------

def ledger_progress(con: duckdb.DuckDBPyConnection, origin: str) -> tuple[bool, int]:
    """(complete?, input offset of the last committed chunk) of a file or batch."""
    row = fetch_one(con.execute(
        "SELECT bool_or(chunk_no = -1), coalesce(max(byte_offset), 0) FROM ingest_ledger"
        " WHERE origin = ?", [origin]))
    return bool(row[0]), int(row[1])


def ledger_record(con: duckdb.DuckDBPyConnection, origin: str, name: str, rows: int,
                  end_offset: int) -> None:
    con.execute(
        "INSERT INTO ingest_ledger SELECT ?, ?, coalesce(max(chunk_no), 0) + 1, ?, ?, now()"
        " FROM ingest_ledger WHERE origin = ? AND chunk_no >= 0",
        [origin, name, rows, end_offset, origin])


def ledger_complete(con: duckdb.DuckDBPyConnection, origin: str, name: str | None) -> None:
    con.execute(
        "INSERT INTO ingest_ledger SELECT ?, ?, -1, coalesce(sum(rows_done), 0),"
        " coalesce(max(byte_offset), 0), now() FROM ingest_ledger WHERE origin = ?",
        [origin, name, origin])


# ---- HTTP batches (Opswb-Batch-Id, SPEC §9) -----------------------------------------------

BATCH_IDS_PER_LOOKUP = 256  # ids bound in one IN list


def batch_records(con: duckdb.DuckDBPyConnection, batch_ids: list[str]) -> dict[str, dict]:
    """The stored batches among these ids: each one's body sha256 (None if stored before
    schema 4) and where its raws are (``first_raw_id``, ``arrivals``). An ``IN`` list
    looks each id up in the key's index: one statement for a group's 16 ids took 1.8 ms
    against 20 ms for 16 lookups (a table of 2M batches)."""
    found: dict[str, dict] = {}
    for at in range(0, len(batch_ids), BATCH_IDS_PER_LOOKUP):
        part = batch_ids[at:at + BATCH_IDS_PER_LOOKUP]
        found.update({r[0]: dict(zip(BATCH_FIELDS, r[1:])) for r in con.execute(
            "SELECT batch_id, body_sha256, first_raw_id, arrivals FROM ingest_batches"
            f" WHERE batch_id IN ({', '.join('?' * len(part))})", part).fetchall()})
    return found


def record_batches(con: duckdb.DuckDBPyConnection,
                   batches: list[tuple[str, str | None, list[dict]]]) -> None:
    """Record batches just stored, in their transaction: one row as VALUES, more as
    one list per column."""
    rows = batch_rows(batches)
    if len(rows) == 1:
        con.execute("INSERT INTO ingest_batches VALUES (?, ?, ?, ?, now())", list(rows[0]))
    elif rows:
        con.execute("INSERT INTO ingest_batches SELECT unnest(?::VARCHAR[]),"
                    " unnest(?::VARCHAR[]), unnest(?::BIGINT[]), unnest(?::BIGINT[]), now()",
                    [list(c) for c in zip(*rows)])


def batch_results(con: duckdb.DuckDBPyConnection, record: dict) -> list[dict]:
    """The first answer's ``results`` of a stored batch, read back from its raws (which
    are never updated: the outcome and exception each raw was stored with)."""
    if not record["arrivals"]:
        return []
    first = record["first_raw_id"]
    return arrival_results(con.execute(
        "SELECT r.raw_id, r.outcome, r.exception_id, e.reason_code FROM raw_events r"
        " LEFT JOIN exceptions e ON e.exception_id = r.exception_id"
        " WHERE r.raw_id BETWEEN ? AND ? ORDER BY r.raw_id",
        [first, first + record["arrivals"] - 1]).fetchall())


# ---- raws, keys, deliveries ------------------------------------------------------------

# A bulk-loaded arrival (bulkjsonl.py) stores its payload once, inside ``text``: a valid raw
# or staged row without ``payload`` has it there. ``{s}`` qualifies the columns ("st.").
PAYLOAD_OF = ("CASE WHEN {s}payload IS NULL AND {s}valid THEN"
              " try(json_extract({s}text, '$.payload'))::VARCHAR ELSE {s}payload END")
RAW_PAYLOAD = PAYLOAD_OF.format(s="")
_RAW_SELECT = ("SELECT " + ", ".join(f"{RAW_PAYLOAD} AS payload" if f == "payload" else f
                                     for f in RAW_FIELDS) + " FROM raw_events")


def raws_by_id(con: duckdb.DuckDBPyConnection, raw_ids: list[int]) -> dict[str, dict]:
    if not raw_ids:
        return {}
    ids = [int(i) for i in raw_ids]
    # A literal IN list is pushed down to the row groups' min/max: a point lookup.
    rows = _rows(con.execute(_RAW_SELECT + " WHERE raw_id IN (" + ", ".join("?" * len(ids))
                             + ")", ids))
    return {r["raw_id"]: r for r in rows}


def raw_row(con: duckdb.DuckDBPyConnection, raw_id: int) -> dict | None:
    """A raw with its internal columns (fingerprint, valid, exception_id)."""
    cur = con.execute(f"SELECT * REPLACE ({RAW_PAYLOAD} AS payload) FROM raw_events"
                      " WHERE raw_id = ?", [raw_id])
    names = [d[0] for d in cur.description]
    row = fetch_one(cur)
    return dict(zip(names, row)) if row else None


def key_arrivals(con: duckdb.DuckDBPyConnection, rec: dict | None) -> list[dict]:
    """Every valid arrival of a key record, in arrival order.

    The raw_id range of the record makes the scan selective: DuckDB skips the row groups
    outside it by their min/max, so the lookup stays fast on a large store.
    """
    if rec is None:
        return []
    return _rows(con.execute(
        _RAW_SELECT + " WHERE raw_id BETWEEN ? AND ? AND tenant_id = ?"
        " AND idempotency_key = ? AND valid ORDER BY raw_id",
        [rec["first_raw_id"], rec["last_raw_id"], rec["tenant_id"], rec["idempotency_key"]]))


def key_deliveries(con: duckdb.DuckDBPyConnection, rec: dict | None) -> list[dict]:
    """The outbox rows of a key record (payload from the raw unless a replay carries one)."""
    if rec is None:
        return []
    rows = _rows(con.execute(
        "SELECT delivery_id, raw_id, event_type, payload, fingerprint, is_replay,"
        " exception_id, delivered_at FROM deliveries WHERE raw_id BETWEEN ? AND ?"
        " AND tenant_id = ? AND idempotency_key = ? ORDER BY delivery_id",
        [rec["first_raw_id"], rec["last_raw_id"], rec["tenant_id"], rec["idempotency_key"]]))
    missing = [int(r["raw_id"]) for r in rows if r["payload"] is None]
    raws = raws_by_id(con, missing) if missing else {}
    for r in rows:
        if r["payload"] is None and r["raw_id"] in raws:
            r["event_type"] = raws[r["raw_id"]]["event_type"]
            r["payload"] = raws[r["raw_id"]]["payload"]
        if r["fingerprint"] is None and r["payload"] is not None:
            r["fingerprint"] = fingerprint(r["event_type"], r["payload"])
    return rows


def key_record(con: duckdb.DuckDBPyConnection, tenant_id: str | None,
               key: str | None, exception_id: int | None = None) -> dict | None:
    """A key's record; given one of its exceptions, found by where the key began.

    The exception recorded its key's ``first_raw_id`` when it opened (sql/0006): the key
    table is in first_raw_id order, row group by row group, so an equality on it reads
    one row group instead of the whole table (a point lookup stays fast on a big store).
    """
    if tenant_id is None or key is None:
        return None
    where, args = "tenant_id = ? AND idempotency_key = ?", [tenant_id, key]
    if exception_id is not None:
        begun = fetch_one(con.execute(
            "SELECT key_first_raw_id FROM exceptions WHERE exception_id = ?", [exception_id]))
        if begun and begun[0] is not None:
            where += " AND first_raw_id = ?"
            args.append(begun[0])
    cur = con.execute(
        "SELECT " + ", ".join(KEY_FIELDS) + ", open_exception_id, first_exception_raw_id"
        " FROM key_records WHERE " + where, args)
    names = [d[0] for d in cur.description]
    row = fetch_one(cur)
    return _fill_key_fingerprint(con, dict(zip(names, row))) if row else None


def remember_fingerprints(con: duckdb.DuckDBPyConnection, fps: dict[int, str]) -> None:
    """Record fingerprints computed for already-stored raws (``raw_fingerprints``)."""
    if not fps:
        return
    import pyarrow as pa

    con.register("_rf_in", pa.table({"raw_id": pa.array(list(fps), pa.int64()),
                                     "fingerprint": pa.array(list(fps.values()), pa.string())}))
    try:
        con.execute("INSERT INTO raw_fingerprints SELECT i.raw_id, i.fingerprint FROM _rf_in i"
                    " ANTI JOIN raw_fingerprints f ON f.raw_id = i.raw_id")
    finally:
        con.unregister("_rf_in")


class RecentRaws:
    """The chunk an ingest stored last, kept in memory while it stores the next one.

    A re-send usually follows its first arrival closely, so the stored raws a chunk needs
    back (``stored_events``) are mostly the previous chunk's: read from here, they cost no
    decompression of the store's text. ``hold`` is called inside the chunk's transaction;
    a failed commit ends the ingest, and this object with it.
    """

    def __init__(self) -> None:
        self.table: Any = None  # the stage table (classify.py), rows numbered ``seq`` 1..n
        self.raw_base = 0  # raw_id = raw_base + seq
        self.fingerprints: dict[int, str] = {}  # by seq: those classify computed

    def hold(self, table: Any, raw_base: int, fingerprints: dict[int, str]) -> None:
        self.table, self.raw_base, self.fingerprints = table, raw_base, fingerprints

    def events(self, con: duckdb.DuckDBPyConnection,
               raw_ids: list[int]) -> dict[int, tuple[str, str, str | None]]:
        """``stored_events`` of those ``raw_ids`` that this chunk holds."""
        if self.table is None:
            return {}
        import pyarrow as pa

        n = self.table.num_rows
        at = sorted({i - self.raw_base - 1 for i in raw_ids if 0 < i - self.raw_base <= n})
        if not at:
            return {}
        con.register("_recent_in", self.table.take(pa.array(at, pa.int64())))
        try:
            rows = con.execute(
                f"SELECT seq, event_type, {RAW_PAYLOAD}, fingerprint FROM _recent_in"
                " WHERE valid").fetchall()
        finally:
            con.unregister("_recent_in")
        fps = self.fingerprints
        return {self.raw_base + q: (t, p, fps.get(q, fp)) for q, t, p, fp in rows}


def stored_events(con: duckdb.DuckDBPyConnection, raw_ids: list[int],
                  recent: RecentRaws | None = None) -> dict[int, tuple[str, str, str | None]]:
    """``{raw_id: (event_type, payload JSON, fingerprint or None)}`` of stored valid raws.

    Those the ``recent`` chunk holds come from memory. The others are read by literal id
    lists, which DuckDB prunes to the row groups holding them (a join would read every
    raw's text); the fingerprint is the stored or a remembered one.
    """
    out = recent.events(con, raw_ids) if recent is not None else {}
    ids = sorted({int(i) for i in raw_ids} - set(out))
    for i in range(0, len(ids), 1000):
        part = ids[i:i + 1000]
        marks = ", ".join("?" * len(part))
        sql = ("SELECT r.raw_id, r.event_type, " + RAW_PAYLOAD + ", coalesce(r.fingerprint,"
               " (SELECT any_value(f.fingerprint) FROM raw_fingerprints f"
               f" WHERE f.raw_id = r.raw_id)) FROM raw_events r WHERE r.valid"
               f" AND r.raw_id IN ({marks})")
        out.update({r[0]: r[1:] for r in con.execute(sql, part).fetchall()})
    return out


def raw_fingerprints(con: duckdb.DuckDBPyConnection, raw_ids: list[int]) -> dict[int, str]:
    """SPEC §4 fingerprints of stored valid raws, computed for those stored without one."""
    return {i: fp if fp is not None else fingerprint(etype, loads(payload))
            for i, (etype, payload, fp) in stored_events(con, raw_ids).items()}


def _fill_key_fingerprint(con: duckdb.DuckDBPyConnection, rec: dict) -> dict:
    """A key delivered by its only arrival has no stored fingerprint: it is its
    canonical raw's, computed here (see ``sql/0002_lazy_fingerprints.sql``)."""
    if rec["canonical_fingerprint"] is None and rec["canonical_raw_id"] is not None:
        fp = raw_fingerprints(con, [rec["canonical_raw_id"]]).get(rec["canonical_raw_id"])
        if fp is not None:
            rec["canonical_fingerprint"] = fp
            if fp not in rec["adjudicated_fingerprints"]:
                rec["adjudicated_fingerprints"] = [*rec["adjudicated_fingerprints"], fp]
    return rec


def exception_fingerprints(con: duckdb.DuckDBPyConnection, exception_id: int,
                           raw_range: tuple[int, int] | None = None) -> list[str]:
    """Fingerprints of the exception's opening raw and of every raw attached to it;
    those computed now are recorded. ``raw_range`` bounds the scan (row groups pruned)."""
    low, high = raw_range if raw_range is not None else (0, 2**63 - 1)
    rows = con.execute("SELECT raw_id, fingerprint FROM raw_events WHERE raw_id BETWEEN ?"
                       " AND ? AND exception_id = ? AND valid",
                       [low, high, exception_id]).fetchall()
    missing = [r for r, fp in rows if fp is None]
    computed = raw_fingerprints(con, missing) if missing else {}
    remember_fingerprints(con, computed)
    return sorted({fp for _, fp in rows if fp is not None} | set(computed.values()))


# ---- exceptions ------------------------------------------------------------------------

_EX_SELECT = "SELECT " + ", ".join(EXCEPTION_FIELDS) + " FROM exceptions"


def exception_by_id(con: duckdb.DuckDBPyConnection, exception_id: int) -> dict | None:
    rows = _rows(con.execute(_EX_SELECT + " WHERE exception_id = ?", [exception_id]))
    return rows[0] if rows else None


def list_exceptions(con: duckdb.DuckDBPyConnection, status: str | None = "open",
                    tenant_id: str | None = None, reason_code: str | None = None,
                    source: str | None = None, idempotency_key: str | None = None,
                    limit: int | None = None, group_id: str | None = None,
                    assignee: str | None = None,
                    listing: Listing = DEFAULT_LISTING,
                    pending: bool | None = None) -> list[dict]:
    """Exceptions matching the filters, in ``listing``'s order (oldest first by default)."""
    where, args = _filter_sql(status, None, reason_code, source, idempotency_key, group_id)
    t_where, t_args = tenant_sql(tenant_id, "?")
    l_where, l_args, order = listing_sql(listing, "?")
    where, args = where + t_where + l_where, args + t_args + l_args
    if assignee:
        where.append("assignee = ?")
        args.append(assignee)
    if pending is not None:
        where.append("pending IS NOT NULL" if pending else "pending IS NULL")
    sql = (_EX_SELECT + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY " + order)
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return _rows(con.execute(sql, args))


def _filter_sql(status, tenant_id, reason_code, source, key,
                group_id=None) -> tuple[list[str], list]:
    where, args = [], []
    for col, val in (("status", status), ("tenant_id", tenant_id),
                     ("reason_code", reason_code), ("source", source),
                     ("idempotency_key", key), ("group_id", group_id)):
        if val is not None and val != "":
            where.append(f"{col} = ?")
            args.append(val)
    return where, args


def open_exception_of_key(con: duckdb.DuckDBPyConnection, tenant_id: str,
                          key: str) -> int | None:
    row = fetch_one(con.execute(
        "SELECT exception_id FROM exceptions WHERE tenant_id = ? AND idempotency_key = ?"
        " AND status = 'open' AND reason_code <> 'INVALID_EVENT' LIMIT 1",
        [tenant_id, key]))
    return row[0] if row else None


# ---- audit, allowlist, snapshots ----------------------------------------------------------

def audit_entries(con: duckdb.DuckDBPyConnection, exception_id: int | None = None,
                  actor: str | None = None, tenant_id: str | None = None,
                  limit: int = 200) -> list[dict]:
    where, args = [], []
    for col, val in (("exception_id", exception_id), ("actor", actor),
                     ("tenant_id", tenant_id)):
        if val is not None and val != "":
            where.append(f"{col} = ?")
            args.append(val)
    sql = ("SELECT audit_id, created_at AS at, actor, action, exception_id, tenant_id, idempotency_key,"
           " state_before, state_after, notes, canonical_raw_id, override_patch, details"
           " FROM audit_log" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY audit_id DESC LIMIT ?")
    rows = _rows(con.execute(sql, args + [limit]))
    for r in rows:
        r["details"] = loads(r["details"]) if isinstance(r["details"], str) else r["details"]
    return rows


def write_audit(con: duckdb.DuckDBPyConnection, **entry: Any) -> None:
    """Append one audit entry (call inside the transaction of the change it records),
    chained to the one before it (``opswb.core.auditchain``; the head moves with it)."""
    con.execute("UPDATE counters SET value = value + 1 WHERE name = 'audit'")
    audit_id = fetch_one(con.execute("SELECT value FROM counters WHERE name = 'audit'"))[0]
    at = datetime.now(UTC)
    fields = {"audit_id": audit_id, "at_us": epoch_us(at), **entry}
    prev = fetch_one(con.execute("SELECT head_hash FROM audit_chain"))[0]
    digest = entry_hash(fields, prev)
    con.execute(
        "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [audit_id, at, entry["actor"], entry["action"], entry.get("exception_id"),
         entry.get("tenant_id"), entry.get("idempotency_key"), entry.get("state_before"),
         entry.get("state_after"), entry.get("notes"), entry.get("canonical_raw_id"),
         entry.get("override_patch"), entry.get("details"), prev, digest])
    con.execute("UPDATE audit_chain SET head_id = ?, head_hash = ?", [audit_id, digest])


def allowed_types(con: duckdb.DuckDBPyConnection, tenant_id: str | None = None) -> list[dict]:
    sql = "SELECT tenant_id, event_type, added_by, added_at FROM event_types"
    args: list = []
    if tenant_id:
        sql += " WHERE tenant_id IN ('', ?)"
        args.append(tenant_id)
    rows = _rows(con.execute(sql + " ORDER BY tenant_id, event_type", args))
    for r in rows:
        r["tenant_id"] = r["tenant_id"] or None
    return rows


def is_allowed(con: duckdb.DuckDBPyConnection, tenant_id: str, event_type: str) -> bool:
    return fetch_one(con.execute(
        "SELECT count(*) FROM event_types WHERE event_type = ? AND tenant_id IN ('', ?)",
        [event_type, tenant_id]))[0] > 0


def snapshot_rows(con: duckdb.DuckDBPyConnection, since: str | None = None) -> list[dict]:
    sql = ("SELECT taken_at, exceptions_open, raw_events, processed, quarantined, ignored,"
           " body FROM health_snapshots")
    args: list = []
    if since:
        sql += " WHERE taken_at >= ?::TIMESTAMPTZ"
        args.append(since)
    rows = _rows(con.execute(sql + " ORDER BY taken_at", args))
    for r in rows:
        r["body"] = loads(r["body"])
    return rows

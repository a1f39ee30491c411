"""Storing and classifying one chunk of arrivals, set-wise, in the caller's transaction.

SPEC §5's table as SQL: the chunk is staged, its contested keys joined with their key
records and classified in arrival order with window functions, a key's only arrival
processed (or unknown) by plain inserts; no Python loop per event but over the few
exceptions a chunk opens. A small chunk in serve mode goes the short way (``small``).
"""

from __future__ import annotations

import functools
from typing import Any

import duckdb

from opswb.core.fingerprint import dumps, loads
from opswb.core.jsondiff import json_diff
from opswb.core.mergepatch import merge_patch
from opswb.store.duckdb import small
from opswb.store.duckdb.fingerprints import fill_fingerprints
from opswb.store.duckdb.groups import GROUP_ID_SQL, SIGNATURE_SQL
from opswb.store.duckdb.queries import PAYLOAD_OF, RecentRaws, arrival_results, stored_events
from opswb.store.duckdb.stagein import staged


@functools.cache
def _exception_schema() -> Any:
    """The Arrow schema of the exceptions a chunk opens."""
    import pyarrow as pa

    return pa.schema([
        ("exception_id", pa.int64()), ("tenant_id", pa.string()),
        ("idempotency_key", pa.string()), ("source", pa.string()),
        ("reason_code", pa.string()), ("details", pa.string()), ("raw_id", pa.int64()),
        ("key_first_raw_id", pa.int64()),
    ])

# Arrivals of contested keys (``_ck``) joined with their key record and classified in
# arrival order. Every other valid arrival is its key's only one: processed, or unknown.
_CLASSIFY = """
CREATE OR REPLACE TEMP TABLE _cls AS
WITH s AS (
    SELECT st.seq, st.tenant_id, st.idempotency_key, st.event_type,
           coalesce(st.fingerprint, fp.fingerprint) AS fingerprint,
           k.state AS kstate, k.adjudicated_fingerprints AS adj, k.open_exception_id AS kopen,
           EXISTS (SELECT 1 FROM event_types t
                   WHERE t.event_type = st.event_type AND t.tenant_id IN ('', st.tenant_id))
             AS allowed
    FROM _stage_in st
    SEMI JOIN _ck c ON c.tenant_id = st.tenant_id AND c.idempotency_key = st.idempotency_key
    LEFT JOIN _fp fp USING (seq)
    LEFT JOIN _khit k
      ON k.tenant_id = st.tenant_id AND k.idempotency_key = st.idempotency_key
    WHERE st.valid
), r AS (
    SELECT *, row_number() OVER w AS rn,
           first_value(fingerprint) OVER w AS first_fp,
           first_value(allowed) OVER w AS first_allowed
    FROM s WINDOW w AS (PARTITION BY tenant_id, idempotency_key ORDER BY seq)
), f AS (
    SELECT *, CASE
        WHEN kstate = 'quarantined' THEN false
        WHEN kstate IS NULL THEN rn > 1 AND first_allowed AND fingerprint <> first_fp
        ELSE NOT list_contains(adj, fingerprint) END AS novel
    FROM r
), g AS (
    SELECT *, min(CASE WHEN novel THEN seq END)
                OVER (PARTITION BY tenant_id, idempotency_key) AS conflict_seq
    FROM f
)
SELECT *, CASE
    WHEN kstate = 'quarantined' THEN 'attached'
    WHEN kstate IS NULL AND rn = 1 AND allowed THEN 'processed'
    WHEN kstate IS NULL AND rn = 1 THEN 'unknown'
    WHEN kstate IS NULL AND NOT first_allowed THEN 'attached'
    WHEN conflict_seq IS NULL OR seq < conflict_seq THEN 'duplicate'
    WHEN seq = conflict_seq THEN 'conflict'
    ELSE 'attached' END AS kind
FROM g
"""

# Every arrival that is not a plain "processed, key's only arrival": invalid ones, those of
# contested keys, and lone arrivals of a type not allowed. Openers get exception ids in
# arrival order; attached arrivals point at their key's open exception or at the one
# opened in this chunk. Arrivals absent from ``_out`` are processed.
_ASSIGN = """
CREATE OR REPLACE TEMP TABLE _out AS
WITH all_rows AS (
    SELECT seq, valid, tenant_id, idempotency_key, NULL::VARCHAR AS fingerprint,
           'invalid' AS kind, NULL::VARCHAR AS kstate, NULL::BIGINT AS kopen,
           NULL::BOOLEAN AS allowed, NULL::BIGINT AS rn
    FROM _stage_in WHERE NOT valid
    UNION ALL
    SELECT seq, true, tenant_id, idempotency_key, fingerprint, kind, kstate, kopen, allowed, rn
    FROM _cls
    UNION ALL
    SELECT st.seq, true, st.tenant_id, st.idempotency_key, st.fingerprint, 'unknown', NULL,
           NULL, false, 1
    FROM _stage_in st
    ANTI JOIN _ck c ON c.tenant_id = st.tenant_id AND c.idempotency_key = st.idempotency_key
    WHERE st.valid AND NOT EXISTS (
        SELECT 1 FROM event_types t
        WHERE t.event_type = st.event_type AND t.tenant_id IN ('', st.tenant_id))
), op AS (
    SELECT *, kind IN ('invalid', 'unknown', 'conflict') AS opens FROM all_rows
), num AS (
    SELECT *, CASE WHEN opens THEN $ex_base + row_number() OVER (PARTITION BY opens
                                                                 ORDER BY seq) END AS opened_id
    FROM op
)
SELECT *, $raw_base + seq AS raw_id,
       CASE WHEN opens THEN opened_id
            WHEN kind = 'attached' THEN coalesce(kopen, max(opened_id) OVER (
                 PARTITION BY valid, tenant_id, idempotency_key)) END AS exception_id,
       CASE WHEN opens THEN 'exceptions_opened'
            WHEN kind = 'processed' THEN 'processed'
            WHEN kind = 'duplicate' THEN 'duplicates'
            ELSE 'attached' END AS outcome
FROM num
"""

# Raw rows are written in one pass from the staged arrow table; raw_id carries the order.
_INSERT_RAWS = """
INSERT INTO raw_events
SELECT $raw_base + s.seq, now(), s.text, s.tenant_id, s.idempotency_key, s.event_type,
       s.source, s.occurred_at, s.payload,
       coalesce(o.fingerprint, s.fingerprint), s.valid,
       s.error, coalesce(o.outcome, 'processed'), o.exception_id, $origin, $replay_of
FROM _stage_in s LEFT JOIN _out o USING (seq)
"""
# Arrivals of several requests stored together (group commit) carry their own origin.
_INSERT_RAWS_OWN_ORIGIN = _INSERT_RAWS.replace("$origin", "s.origin")

# Ordinary deliveries point at their raw for the payload; only replays carry their own.
# A delivery's id is the counter plus its arrival's position: increasing, with gaps.
_INSERT_DELIVERIES = """
INSERT INTO deliveries
SELECT $d_base + s.seq, s.tenant_id, s.idempotency_key, $raw_base + s.seq, NULL, NULL,
       coalesce(o.fingerprint, s.fingerprint), false, NULL, now()
FROM _stage_in s LEFT JOIN _out o USING (seq)
WHERE s.valid AND coalesce(o.kind, 'processed') = 'processed'
"""

# A key's only arrival, processed: its new key record.
_INSERT_LONE_KEYS = """
INSERT INTO idempotency_keys
SELECT s.tenant_id, s.idempotency_key, 'processed', $raw_base + s.seq, $raw_base + s.seq,
       $raw_base + s.seq, s.fingerprint, NULL, 1, 1,
       CASE WHEN s.fingerprint IS NULL THEN []::VARCHAR[] ELSE [s.fingerprint] END, NULL, NULL
FROM _stage_in s ANTI JOIN _out o USING (seq)
WHERE s.valid
"""

# Per key touched by the chunk: counts and what changed.
_KEY_AGG = """
CREATE OR REPLACE TEMP TABLE _kagg AS
SELECT tenant_id, idempotency_key, any_value(kstate) AS kstate,
       count(*) AS n, min(raw_id) AS min_raw, max(raw_id) AS max_raw,
       max(CASE WHEN kind = 'processed' THEN raw_id END) AS processed_raw,
       max(CASE WHEN kind = 'processed' THEN fingerprint END) AS processed_fp,
       max(CASE WHEN kind IN ('unknown', 'conflict') THEN exception_id END) AS opened_ex,
       max(CASE WHEN kind IN ('unknown', 'conflict') THEN raw_id END) AS opened_raw
FROM _out WHERE valid GROUP BY tenant_id, idempotency_key
"""

_INSERT_KEYS = """
INSERT INTO idempotency_keys
SELECT tenant_id, idempotency_key,
       CASE WHEN opened_ex IS NULL THEN 'processed' ELSE 'quarantined' END,
       min_raw, max_raw, processed_raw, processed_fp, NULL, n,
       CASE WHEN processed_raw IS NULL THEN 0 ELSE 1 END,
       CASE WHEN processed_fp IS NULL THEN []::VARCHAR[] ELSE [processed_fp] END,
       opened_ex, opened_raw
FROM _kagg WHERE kstate IS NULL
"""

# Only keys whose state changed (an exception opened) are updated in place.
_UPDATE_KEYS = """
UPDATE idempotency_keys AS k SET
    state = 'quarantined',
    open_exception_id = a.opened_ex,
    first_exception_raw_id = coalesce(k.first_exception_raw_id, a.opened_raw),
    canonical_fingerprint = h.canonical_fingerprint,
    adjudicated_fingerprints = h.adjudicated_fingerprints
FROM _kagg a JOIN _khit h USING (tenant_id, idempotency_key)
WHERE a.kstate IS NOT NULL AND a.opened_ex IS NOT NULL AND k.tenant_id = a.tenant_id
  AND k.idempotency_key = a.idempotency_key
"""

# Later arrivals of existing keys: counted in the small key_activity table.
_UPDATE_ACTIVITY = """
UPDATE key_activity AS t SET arrivals = t.arrivals + a.n, last_raw_id = a.max_raw
FROM _kagg a
WHERE a.kstate IS NOT NULL AND t.tenant_id = a.tenant_id
  AND t.idempotency_key = a.idempotency_key
"""

_INSERT_ACTIVITY = """
INSERT INTO key_activity
SELECT a.tenant_id, a.idempotency_key, a.n, a.max_raw FROM _kagg a
WHERE a.kstate IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM key_activity t
    WHERE t.tenant_id = a.tenant_id AND t.idempotency_key = a.idempotency_key)
"""

# The openers with what the exception row needs, and FIRST for conflicts.
_OPENERS = f"""
SELECT o.exception_id, o.raw_id, o.tenant_id, o.idempotency_key, st.source, o.kind,
       o.valid, st.error, st.event_type, {PAYLOAD_OF.format(s="st.")} AS payload, o.allowed,
       fo.event_type AS first_type, fo.payload AS first_payload,
       CASE WHEN fo.raw_id IS NULL THEN k.override_patch END AS first_patch,
       coalesce(k.canonical_raw_id, k.first_exception_raw_id) AS first_raw_id,
       CASE WHEN o.kind = 'unknown' THEN o.raw_id
            WHEN o.kind = 'conflict' THEN coalesce(k.first_raw_id, fo.raw_id) END
         AS key_first_raw_id
FROM _out o JOIN _stage_in st USING (seq)
LEFT JOIN _khit k
  ON o.kind = 'conflict' AND k.tenant_id = o.tenant_id
 AND k.idempotency_key = o.idempotency_key AND o.kstate IS NOT NULL
LEFT JOIN (SELECT f.tenant_id, f.idempotency_key, f.raw_id, fs.event_type,
                  {PAYLOAD_OF.format(s="fs.")} AS payload
           FROM _out f JOIN _stage_in fs USING (seq) WHERE f.valid AND f.rn = 1) fo
  ON o.kind = 'conflict' AND o.kstate IS NULL
 AND fo.tenant_id = o.tenant_id AND fo.idempotency_key = o.idempotency_key
WHERE o.exception_id IS NOT NULL AND (NOT o.valid OR o.kind IN ('unknown', 'conflict'))
ORDER BY o.seq
"""


# Each arrival of the chunk in input order: its raw_id, summary bucket, the exception it
# opened or joined, and that exception's reason (written just before, or already stored).
_PER_ARRIVAL = """
SELECT $raw_base + s.seq, coalesce(o.outcome, 'processed'), o.exception_id, e.reason_code
FROM _stage_in s LEFT JOIN _out o USING (seq)
LEFT JOIN exceptions e ON e.exception_id = o.exception_id
ORDER BY s.seq
"""


def _details(row: dict) -> tuple[str, str]:
    """Reason code and details JSON of an exception opened by ``row``."""
    if not row["valid"]:
        return "INVALID_EVENT", dumps({"error": row["error"]})
    if row["kind"] == "unknown":
        return "UNKNOWN_EVENT_TYPE", dumps({
            "event_type": row["event_type"],
            "message": f"event type {row['event_type']!r} is not allowed for tenant "
                       f"{row['tenant_id']!r}",
        })
    first = {"event_type": row["first_type"],
             "payload": loads(row["first_payload"]) if row["first_payload"] else None}
    if row["first_patch"]:
        first = merge_patch(first, {k: v for k, v in loads(row["first_patch"]).items()
                                    if k in ("event_type", "payload")})
    last = {"event_type": row["event_type"], "payload": loads(row["payload"])}
    diff = json_diff(first, last)
    details = {
        "message": "same idempotency key, different payload",
        "changed_paths": [c["path"] for c in diff["changed"]],
        "added_paths": [c["path"] for c in diff["added"]],
        "removed_paths": [c["path"] for c in diff["removed"]],
    }
    if not row["allowed"]:
        details["also_unknown_event_type"] = row["event_type"]
        details["message"] += f"; event type {row['event_type']!r} is also not allowed"
    return "IDEMPOTENCY_CONFLICT", dumps(details)


# The chunk's new exceptions, each with its failure group (groups.py).
_INSERT_EXCEPTIONS = f"""
INSERT INTO exceptions (exception_id, tenant_id, idempotency_key, source, reason_code,
                        details, raw_id, status, created_at, signature, group_id,
                        key_first_raw_id)
SELECT exception_id, tenant_id, idempotency_key, source, reason_code, details, raw_id,
       'open', now(), signature, {GROUP_ID_SQL}, key_first_raw_id
FROM (SELECT *, {SIGNATURE_SQL} AS signature FROM _ex_in)
"""


def _insert_exceptions(con: duckdb.DuckDBPyConnection, openers: list[dict]) -> None:
    rows = []
    for o in openers:
        reason, details = _details(o)
        rows.append((o["exception_id"], o["tenant_id"], o["idempotency_key"], o["source"],
                     reason, details, o["raw_id"], o["key_first_raw_id"]))
    import pyarrow as pa

    schema = _exception_schema()
    table = pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(zip(*rows), schema)], schema=schema)
    con.register("_ex_in", table)
    try:
        con.execute(_INSERT_EXCEPTIONS)
    finally:
        con.unregister("_ex_in")


def _fill_stored_first(con: duckdb.DuckDBPyConnection, openers: list[dict],
                       known: dict[int, tuple], recent: RecentRaws | None) -> None:
    """FIRST's type and payload for conflicts on keys stored before this chunk (``known``:
    raws already read for this chunk)."""
    wanted = sorted({o["first_raw_id"] for o in openers
                     if o["first_type"] is None and o["first_raw_id"] is not None} - set(known))
    found = {**known, **stored_events(con, wanted, recent)} if wanted else known
    for o in openers:
        if o["first_type"] is None and o["first_raw_id"] in found:
            o["first_type"], o["first_payload"], _ = found[o["first_raw_id"]]


def _next_ids(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.execute("SELECT name, value FROM counters").fetchall())


def _bump(con: duckdb.DuckDBPyConnection, name: str, by: int) -> None:
    if by:
        con.execute("UPDATE counters SET value = value + ? WHERE name = ?", [by, name])


def store_chunk(con: duckdb.DuckDBPyConnection, rows: Any,
                origin: str | list[str] | None, replay_of: int | None = None,
                with_outcomes: bool = False,
                recent: RecentRaws | None = None,
                gate: small.GateCache | None = None) -> tuple[dict, list[dict]]:
    """Store and classify ``rows`` (staged tuples, or their ``stage_table``) inside the
    caller's transaction. ``origin`` is the chunk's, or a list of one per arrival.

    Returns the §10 counts and, when ``with_outcomes``, what became of each arrival in
    input order (SPEC §9's ``results``; a bulk ingest leaves it off). An ingest of several
    chunks passes the same ``recent`` (the previous chunk's raws, then this one's).
    ``gate``: the held store's small-path cache; a chunk that goes the full way
    invalidates it.
    """
    origin_col = isinstance(origin, list)  # one per arrival
    insert_raws = _INSERT_RAWS_OWN_ORIGIN if origin_col else _INSERT_RAWS
    n_rows = rows.num_rows if hasattr(rows, "num_rows") else len(rows)
    if n_rows == 0:
        return {"received": 0, "processed": 0, "duplicates": 0, "exceptions_opened": 0,
                "attached": 0}, []
    table = None
    if n_rows <= small.SMALL_CHUNK:
        # A chunk the small path writes as VALUES is neither staged as Arrow nor
        # registered (~0.1 and ~1 ms); a longer one is scanned by its inserts.
        if n_rows > small.VALUES_ROWS:
            table = staged(con, rows, origin)
        done = small.store_if_lone(con, small.records_of(rows, origin), origin, origin_col,
                                   replay_of, with_outcomes, gate)
        if done is not None:
            if recent is not None:
                recent.hold(staged(None, rows, origin) if table is None else table,
                            done[2], {})
            if table is not None:
                con.unregister("_stage_in")
            return done[0], done[1]
    if table is None:
        table = staged(con, rows, origin)
    if gate is not None:  # the full way reads and moves the counters row: exact first
        gate.release(con)
        gate.invalidate()
    ids = _next_ids(con)
    known = fill_fingerprints(con, recent)
    con.execute(_CLASSIFY)
    con.execute(_ASSIGN, {"ex_base": ids["exception"], "raw_base": ids["raw"]})
    con.execute(insert_raws, {"raw_base": ids["raw"], "replay_of": replay_of,
                              **({} if origin_col else {"origin": origin})})
    n = _counts(con, table.num_rows)
    opened = _write_outcomes(con, ids, n, known, recent)
    con.execute(_BUMP, {"n": table.num_rows, "opened": opened})
    if recent is not None:  # this chunk, with the fingerprints stored beside its raws
        recent.hold(table, ids["raw"], dict(con.execute(
            "SELECT seq, fingerprint FROM _out WHERE fingerprint IS NOT NULL").fetchall()))
    outcomes = arrival_results(con.execute(
        _PER_ARRIVAL, {"raw_base": ids["raw"]}).fetchall()) if with_outcomes else []
    con.execute(_DROP_TEMP)
    con.unregister("_stage_in")
    summary = {"received": table.num_rows, "processed": n["processed"],
               "duplicates": n["duplicates"], "exceptions_opened": n["exceptions_opened"],
               "attached": n["attached"]}
    return summary, outcomes


# What the chunk's classification holds, so that statements with nothing to write are
# skipped (each costs 1-7 ms whatever its input; a small chunk is mostly such costs).
_COUNTS = """
SELECT count(*), count(*) FILTER (WHERE outcome = 'duplicates'),
       count(*) FILTER (WHERE outcome = 'exceptions_opened'),
       count(*) FILTER (WHERE outcome = 'attached'),
       count(*) FILTER (WHERE kind = 'processed'),
       count(*) FILTER (WHERE valid AND kstate IS NULL),
       count(*) FILTER (WHERE valid AND kstate IS NOT NULL),
       count(*) FILTER (WHERE valid AND kstate IS NOT NULL AND kind IN ('unknown', 'conflict'))
FROM _out
"""

_BUMP = """
UPDATE counters SET value = value + CASE name WHEN 'exception' THEN $opened ELSE $n END
WHERE name IN ('raw', 'delivery', 'exception')
"""

_DROP_TEMP = "; ".join(f"DROP TABLE IF EXISTS {t}"
                       for t in ("_cls", "_out", "_kagg", "_khit", "_fp", "_ck"))


def _counts(con: duckdb.DuckDBPyConnection, received: int) -> dict[str, int]:
    (out, dups, opened, attached, contested_processed, new_keys, stored_keys,
     stored_opened) = con.execute(_COUNTS).fetchall()[0]
    lone = received - out  # arrivals absent from ``_out``: processed, their key's only
    return {"duplicates": dups, "exceptions_opened": opened, "attached": attached,
            "processed": received - dups - opened - attached, "lone": lone,
            "delivered": contested_processed + lone, "new_keys": new_keys,
            "stored_keys": stored_keys, "stored_opened": stored_opened}


def _write_outcomes(con: duckdb.DuckDBPyConnection, ids: dict[str, int], n: dict[str, int],
                    known: dict[int, tuple], recent: RecentRaws | None) -> int:
    """Deliveries, exceptions and key records of the classified chunk, each statement
    only when it has rows to write; returns the number of exceptions opened."""
    if n["delivered"]:
        con.execute(_INSERT_DELIVERIES, {"d_base": ids["delivery"], "raw_base": ids["raw"]})
    openers: list[dict] = []
    if n["exceptions_opened"]:
        openers = [dict(zip([d[0] for d in cur.description], r))
                   for cur in [con.execute(_OPENERS)] for r in cur.fetchall()]
        _fill_stored_first(con, openers, known, recent)
        _insert_exceptions(con, openers)
    if n["lone"]:
        con.execute(_INSERT_LONE_KEYS, {"raw_base": ids["raw"]})
    if n["new_keys"] or n["stored_keys"]:
        con.execute(_KEY_AGG)
    if n["new_keys"]:
        con.execute(_INSERT_KEYS)
    if n["stored_opened"]:
        con.execute(_UPDATE_KEYS)
    if n["stored_keys"]:
        con.execute(_UPDATE_ACTIVITY)
        con.execute(_INSERT_ACTIVITY)
    return len(openers)

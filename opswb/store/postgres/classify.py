"""Storing and classifying one chunk of arrivals on PostgreSQL, set-wise.

SPEC §5's table as SQL, as on DuckDB (``store/duckdb/classify.py``): the chunk is
COPYed into a temp table, classified in arrival order with window functions against the
key records, and raws, exceptions, deliveries and key records are written in a handful of
statements. What differs is concurrency: several processes may store the same keys at
once. Before it reads any key record a chunk takes a row lock on each of its keys, in
(tenant_id, idempotency_key) order, with one ``INSERT … ON CONFLICT DO UPDATE`` (a new key
gets a placeholder row, state ``new``, that the same transaction fills in): a second
writer of those keys waits, then reads what the first committed. So one key record per
key (the primary key) and one open exception per key (a partial unique index) hold
whatever the writers' interleaving; a deadlock or serialization failure (another order,
e.g. a decision holding a key) retries the chunk from a savepoint, a bounded number of
times.
"""

from __future__ import annotations

import time
from typing import Any

from opswb.core.fingerprint import fingerprint, loads
from opswb.core.staging import stage_table
from opswb.store.duckdb.classify import _details as exception_details
from opswb.store.postgres.errors import busy_error
from opswb.store.postgres.groups import group_id, signature
from opswb.store.postgres.queries import (
    PAYLOAD_OF,
    arrival_results,
    feed_lock,
    stored_events,
)
from opswb.store.postgres.text import storable

RETRIES = 5
_STAGE_COLUMNS = ("seq", "raw_id", "tenant_id", "idempotency_key", "event_type", "source",
                  "occurred_at", "payload", "text", "valid", "error", "fingerprint",
                  "text_bytes", "origin")

_CREATE_STAGE = """
CREATE TEMP TABLE _stage (seq bigint, raw_id bigint, tenant_id text, idempotency_key text,
    event_type text, source text, occurred_at text, payload text, text text, valid boolean,
    error text, fingerprint text, text_bytes bytea, origin text) ON COMMIT DROP
"""

# One row lock per key of the chunk, in key order; a new key gets a placeholder record.
_LOCK_KEYS = """
INSERT INTO idempotency_keys AS k (tenant_id, idempotency_key, state, first_raw_id,
                                   last_raw_id, arrival_count, delivery_count)
SELECT DISTINCT tenant_id, idempotency_key, 'new', 0, 0, 0, 0 FROM _stage WHERE valid
ORDER BY 1, 2
ON CONFLICT (tenant_id, idempotency_key) DO UPDATE SET state = k.state
"""

_KEY_HITS = """
CREATE TEMP TABLE _khit ON COMMIT DROP AS
SELECT k.tenant_id, k.idempotency_key, nullif(k.state, 'new') AS state,
       k.adjudicated_fingerprints, k.open_exception_id, k.canonical_raw_id, k.override_patch,
       k.first_exception_raw_id, k.first_raw_id
FROM idempotency_keys k
JOIN (SELECT DISTINCT tenant_id, idempotency_key FROM _stage WHERE valid) s
  USING (tenant_id, idempotency_key)
"""

# Every valid arrival joined with its key record and classified in arrival order; then
# the invalid ones. ``opens``: the arrival opens an exception.
_CLASSIFY = """
CREATE TEMP TABLE _all ON COMMIT DROP AS
WITH s AS (
    SELECT st.seq, st.raw_id, st.tenant_id, st.idempotency_key, st.fingerprint,
           k.state AS kstate, k.adjudicated_fingerprints AS adj, k.open_exception_id AS kopen,
           EXISTS (SELECT 1 FROM event_types t
                   WHERE t.event_type = st.event_type AND t.tenant_id IN ('', st.tenant_id))
             AS allowed
    FROM _stage st JOIN _khit k USING (tenant_id, idempotency_key)
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
        ELSE NOT (fingerprint = ANY (adj)) END AS novel
    FROM r
), g AS (
    SELECT *, min(CASE WHEN novel THEN seq END)
                OVER (PARTITION BY tenant_id, idempotency_key) AS conflict_seq
    FROM f
), c AS (
    SELECT seq, raw_id, true AS valid, tenant_id, idempotency_key, fingerprint, kstate,
           kopen, allowed, rn, CASE
        WHEN kstate = 'quarantined' THEN 'attached'
        WHEN kstate IS NULL AND rn = 1 AND allowed THEN 'processed'
        WHEN kstate IS NULL AND rn = 1 THEN 'unknown'
        WHEN kstate IS NULL AND NOT first_allowed THEN 'attached'
        WHEN conflict_seq IS NULL OR seq < conflict_seq THEN 'duplicate'
        WHEN seq = conflict_seq THEN 'conflict'
        ELSE 'attached' END AS kind
    FROM g
    UNION ALL
    SELECT seq, raw_id, false, tenant_id, idempotency_key, NULL, NULL, NULL, NULL, NULL,
           'invalid'
    FROM _stage WHERE NOT valid
)
SELECT *, kind IN ('invalid', 'unknown', 'conflict') AS opens FROM c
"""

# Exception ids for the openers, in arrival order.
_OPEN_IDS = """
CREATE TEMP TABLE _open ON COMMIT DROP AS
SELECT seq, nextval('exception_id_seq') AS id
FROM (SELECT seq FROM _all WHERE opens ORDER BY seq) q
"""

_ASSIGN = """
CREATE TEMP TABLE _out ON COMMIT DROP AS
SELECT a.*, CASE WHEN a.opens THEN p.id
                 WHEN a.kind = 'attached' THEN coalesce(a.kopen, max(p.id) OVER (
                     PARTITION BY a.valid, a.tenant_id, a.idempotency_key)) END AS exception_id,
       CASE WHEN a.opens THEN 'exceptions_opened'
            WHEN a.kind = 'processed' THEN 'processed'
            WHEN a.kind = 'duplicate' THEN 'duplicates'
            ELSE 'attached' END AS outcome
FROM _all a LEFT JOIN _open p USING (seq)
"""

_INSERT_RAWS = """
INSERT INTO raw_events (tenant_id, raw_id, text, text_bytes, idempotency_key, event_type, source,
                        occurred_at, payload, fingerprint, valid, error, outcome, exception_id,
                        origin, replay_of)
SELECT s.tenant_id, s.raw_id, s.text, s.text_bytes, s.idempotency_key, s.event_type, s.source,
       s.occurred_at, s.payload, s.fingerprint, s.valid, s.error, o.outcome, o.exception_id,
       s.origin, %s
FROM _stage s JOIN _out o USING (seq) ORDER BY s.seq
"""

_INSERT_DELIVERIES = """
INSERT INTO deliveries (tenant_id, delivery_id, idempotency_key, raw_id, fingerprint,
                        is_replay)
SELECT tenant_id, nextval('delivery_id_seq'), idempotency_key, raw_id, fingerprint, false
FROM (SELECT * FROM _out WHERE kind = 'processed' ORDER BY seq) q
"""

# The openers with what the exception row needs; FIRST of a conflict on a key new in this
# chunk is that key's first arrival here (``first_seq``), read in ``_insert_exceptions``.
_OPENERS = f"""
SELECT o.exception_id, o.raw_id, o.tenant_id, o.idempotency_key, st.source, o.kind,
       o.valid, st.error, st.event_type, {PAYLOAD_OF.format(s="st.")} AS payload, o.allowed,
       fo.seq AS first_seq, NULL AS first_type, NULL AS first_payload,
       CASE WHEN fo.seq IS NULL THEN k.override_patch END AS first_patch,
       coalesce(k.canonical_raw_id, k.first_exception_raw_id) AS first_raw_id,
       CASE WHEN o.kind = 'unknown' THEN o.raw_id
            WHEN o.kind = 'conflict' THEN coalesce(k.first_raw_id, fo.raw_id) END
         AS key_first_raw_id
FROM _out o JOIN _stage st USING (seq)
LEFT JOIN _khit k
  ON o.kind = 'conflict' AND o.kstate IS NOT NULL AND k.tenant_id = o.tenant_id
 AND k.idempotency_key = o.idempotency_key
LEFT JOIN _out fo
  ON o.kind = 'conflict' AND o.kstate IS NULL AND fo.valid AND fo.rn = 1
 AND fo.tenant_id = o.tenant_id AND fo.idempotency_key = o.idempotency_key
WHERE o.opens ORDER BY o.seq
"""

_FIRST_IN_CHUNK = f"""
SELECT seq, event_type, {PAYLOAD_OF.format(s="")} FROM _stage WHERE seq = ANY(%s)
"""

# Every key the chunk touched: its placeholder filled in, or its stored record moved on.
_UPDATE_KEYS = """
WITH a AS (
    SELECT tenant_id, idempotency_key, bool_or(kstate IS NULL) AS new, count(*) AS n,
           min(raw_id) AS min_raw, max(raw_id) AS max_raw,
           max(CASE WHEN kind = 'processed' THEN raw_id END) AS processed_raw,
           max(CASE WHEN kind = 'processed' THEN fingerprint END) AS processed_fp,
           max(CASE WHEN kind IN ('unknown', 'conflict') THEN exception_id END) AS opened_ex,
           max(CASE WHEN kind IN ('unknown', 'conflict') THEN raw_id END) AS opened_raw
    FROM _out WHERE valid GROUP BY tenant_id, idempotency_key
)
UPDATE idempotency_keys AS k SET
    state = CASE WHEN a.opened_ex IS NOT NULL THEN 'quarantined'
                 WHEN a.new THEN 'processed' ELSE k.state END,
    first_raw_id = CASE WHEN a.new THEN a.min_raw ELSE k.first_raw_id END,
    last_raw_id = greatest(k.last_raw_id, a.max_raw),
    canonical_raw_id = CASE WHEN a.new THEN a.processed_raw ELSE k.canonical_raw_id END,
    canonical_fingerprint = CASE WHEN a.new THEN a.processed_fp
                                 ELSE k.canonical_fingerprint END,
    arrival_count = k.arrival_count + a.n,
    delivery_count = k.delivery_count + CASE WHEN a.processed_raw IS NULL THEN 0 ELSE 1 END,
    adjudicated_fingerprints = CASE
        WHEN NOT a.new THEN k.adjudicated_fingerprints
        WHEN a.processed_fp IS NULL THEN '{}'::text[] ELSE ARRAY[a.processed_fp] END,
    open_exception_id = coalesce(a.opened_ex, k.open_exception_id),
    first_exception_raw_id = coalesce(k.first_exception_raw_id, a.opened_raw)
FROM a WHERE k.tenant_id = a.tenant_id AND k.idempotency_key = a.idempotency_key
"""

_PER_ARRIVAL = """
SELECT o.raw_id, o.outcome, o.exception_id, e.reason_code
FROM _out o LEFT JOIN exceptions e ON e.tenant_id = o.tenant_id
 AND e.exception_id = o.exception_id
ORDER BY o.seq
"""

_TEMPS = ("_stage", "_khit", "_all", "_open", "_out")
_EMPTY = {"received": 0, "processed": 0, "duplicates": 0, "exceptions_opened": 0,
          "attached": 0}


def store_chunk(con: Any, rows: Any, origin: str | list[str] | None,
                replay_of: int | None = None,
                with_outcomes: bool = False) -> tuple[dict, list[dict]]:
    """Store and classify ``rows`` (staged tuples or their table) in the caller's
    transaction; retried from a savepoint when the database reports a deadlock or a
    serialization failure. Returns the §10 counts and, when asked, §9 results."""
    table = rows if hasattr(rows, "num_rows") else stage_table(rows)
    if table.num_rows == 0:
        return dict(_EMPTY), []
    staged = _staged_rows(table)
    origins = origin if isinstance(origin, list) else [origin] * len(staged)
    for row, o in zip(staged, origins):  # the chunk's, or one per arrival (group commit)
        row.append(o)
    for attempt in range(RETRIES):
        try:
            with con.transaction():  # a savepoint inside the caller's transaction
                return _store(con, staged, replay_of, with_outcomes)
        except Exception as e:
            if not busy_error(e) or attempt == RETRIES - 1:
                raise
            time.sleep(0.01 * 2 ** attempt)
    raise AssertionError("unreachable")


def _staged_rows(table: Any) -> list[list]:
    """The chunk's rows as the stage's columns (without raw ids), each valid one with its
    SPEC §4 fingerprint (computed here when the reader did not)."""
    cols = table.to_pydict()
    out = []
    for i in range(table.num_rows):
        valid = cols["valid"][i]
        fp = cols["fingerprint"][i]
        if valid and fp is None:
            payload = cols["payload"][i]
            obj = loads(payload) if payload is not None else loads(cols["text"][i])["payload"]
            fp = fingerprint(cols["event_type"][i], obj)
        text = cols["text"][i]
        stored = storable(text)
        out.append([cols["seq"][i], None, storable(cols["tenant_id"][i]) or "",
                    *(storable(cols[c][i]) for c in ("idempotency_key", "event_type",
                                                      "source", "occurred_at", "payload")),
                    stored, valid, storable(cols["error"][i]), fp,
                    None if stored == text else text.encode("utf-8", "surrogatepass")])
    return out




def _store(con: Any, staged: list[list], replay_of: int | None,
           with_outcomes: bool) -> tuple[dict, list[dict]]:
    ids = [r[0] for r in con.execute("SELECT nextval('raw_id_seq') FROM generate_series(1, %s)",
                                     [len(staged)]).fetchall()]
    con.execute(_CREATE_STAGE)
    with con.cursor() as cur, cur.copy(
            f"COPY _stage ({', '.join(_STAGE_COLUMNS)}) FROM STDIN") as copy:
        for row, raw_id in zip(staged, ids):
            row[1] = raw_id
            copy.write_row(row)
    con.execute("ANALYZE _stage (seq, tenant_id, idempotency_key, valid)")
    feed_lock(con)  # before the key locks (queries.feed_lock says why)
    con.execute(_LOCK_KEYS)
    for sql in (_KEY_HITS, _CLASSIFY, _OPEN_IDS, _ASSIGN):
        con.execute(sql)
    con.execute(_INSERT_RAWS, [replay_of])
    con.execute(_INSERT_DELIVERIES)
    _insert_exceptions(con)
    con.execute(_UPDATE_KEYS)
    outcomes = arrival_results(con.execute(_PER_ARRIVAL).fetchall()) if with_outcomes else []
    counts = dict(con.execute("SELECT outcome, count(*) FROM _out GROUP BY outcome").fetchall())
    for t in _TEMPS:
        con.execute(f"DROP TABLE {t}")
    summary = {"received": len(staged)}
    for bucket in ("processed", "duplicates", "exceptions_opened", "attached"):
        summary[bucket] = int(counts.get(bucket, 0))
    return summary, outcomes


def _insert_exceptions(con: Any) -> None:
    """The exceptions the chunk opens, their details written here (SPEC §6)."""
    cur = con.execute(_OPENERS)
    names = [d.name for d in cur.description]
    openers = [dict(zip(names, r)) for r in cur.fetchall()]
    if not openers:
        return
    in_chunk = [o["first_seq"] for o in openers if o["first_seq"] is not None]
    firsts = {r[0]: r[1:] for r in con.execute(_FIRST_IN_CHUNK, [in_chunk])} if in_chunk else {}
    wanted = [o["first_raw_id"] for o in openers
              if o["first_seq"] is None and o["first_raw_id"] is not None]
    found = stored_events(con, wanted)
    for o in openers:
        if o["first_seq"] is not None:
            o["first_type"], o["first_payload"] = firsts[o["first_seq"]]
        elif o["first_raw_id"] in found:
            o["first_type"], o["first_payload"], _ = found[o["first_raw_id"]]
    with con.cursor() as c, c.copy(
            "COPY exceptions (tenant_id, exception_id, idempotency_key, source, reason_code,"
            " details, raw_id, status, signature, group_id, key_first_raw_id)"
            " FROM STDIN") as copy:
        for o in openers:
            reason, details = exception_details(o)
            sig = signature(reason, details)
            copy.write_row([o["tenant_id"] or "", o["exception_id"], o["idempotency_key"],
                            o["source"], reason, details, o["raw_id"], "open", sig,
                            group_id(reason, sig), o["key_first_raw_id"]])

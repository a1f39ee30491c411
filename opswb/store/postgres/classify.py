"""Storing and classifying one chunk of arrivals on PostgreSQL, set-wise.

SPEC §5's table as SQL, as on DuckDB (``store/duckdb/classify.py``): the chunk is
COPYed into a temp table, classified in arrival order with window functions against the
key records, and raws, exceptions, deliveries and key records are written in a handful of
statements. What differs is concurrency: several processes may store the same keys at
once. Before it reads any key record a chunk locks the stored records of its keys
(``SELECT … FOR UPDATE``, in (tenant_id, idempotency_key) order): a second writer of those
keys waits, then reads what the first committed. Its new keys are written once, with
their final values, by one ``INSERT … ON CONFLICT DO NOTHING`` in key order before any raw
is written; a key another writer stored meanwhile (that insert waits for its commit) is
missing from what was inserted, and the chunk is classified again from a savepoint, now
seeing that key stored. So one key record per key (the primary key) and one open
exception per key (a partial unique index) hold whatever the writers' interleaving; a
deadlock or serialization failure (another order, e.g. a decision holding a key) also
retries the chunk, a bounded number of times. Staging and COPY: ``staging``.
"""

from __future__ import annotations

import time
from typing import Any

from opswb.store.duckdb.classify import _details as exception_details
from opswb.store.postgres.errors import busy_error
from opswb.store.postgres.groups import group_id, signature
from opswb.store.postgres.queries import (
    PAYLOAD_OF,
    arrival_results,
    feed_lock,
    stored_events,
)
from opswb.store.postgres.staging import Prepared, copy_stage, prepare

RETRIES = 5


class _KeyRace(Exception):
    """Another writer stored one of the chunk's new keys first: classify again."""


# The stored records of the chunk's keys, each locked (in key order) until the commit.
_KEY_HITS = """
CREATE TEMP TABLE _khit ON COMMIT DROP AS
WITH l AS (
    SELECT k.tenant_id, k.idempotency_key, k.state, k.adjudicated_fingerprints,
           k.open_exception_id, k.canonical_raw_id, k.override_patch,
           k.first_exception_raw_id, k.first_raw_id
    FROM idempotency_keys k
    WHERE (k.tenant_id, k.idempotency_key) IN (
        SELECT tenant_id, idempotency_key FROM _stage WHERE valid)
    ORDER BY k.tenant_id, k.idempotency_key
    FOR UPDATE OF k
)
SELECT * FROM l
"""

# Every valid arrival joined with its key record and classified in arrival order; then
# the invalid ones. ``opens``: the arrival opens an exception.
_CLASSIFY = """
CREATE TEMP TABLE _all ON COMMIT DROP AS
WITH types AS MATERIALIZED (  -- once per (tenant, type) of the chunk, not per arrival
    SELECT p.tenant_id, p.event_type,
           EXISTS (SELECT 1 FROM event_types t
                   WHERE t.event_type = p.event_type AND t.tenant_id IN ('', p.tenant_id))
             AS allowed
    FROM (SELECT DISTINCT tenant_id, event_type FROM _stage WHERE valid) p
), s AS (
    SELECT st.seq, st.raw_id, st.tenant_id, st.idempotency_key, st.fingerprint,
           k.state AS kstate, k.adjudicated_fingerprints AS adj, k.open_exception_id AS kopen,
           ty.allowed
    FROM _stage st JOIN types ty USING (tenant_id, event_type)
    LEFT JOIN _khit k USING (tenant_id, idempotency_key)
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
       coalesce(s.origin, %s), %s
FROM _stage s JOIN _out o USING (seq)
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
SELECT seq, event_type, {PAYLOAD_OF.format(s="")}
FROM _stage JOIN unnest(%s::bigint[]) AS f (seq) USING (seq)
"""

# Per key the chunk touched: what its arrivals did (``{which}``: new keys or stored ones).
_KEY_FIGURES = """
    SELECT tenant_id, idempotency_key, count(*) AS n, min(raw_id) AS min_raw,
           max(raw_id) AS max_raw,
           max(CASE WHEN kind = 'processed' THEN raw_id END) AS processed_raw,
           max(CASE WHEN kind = 'processed' THEN fingerprint END) AS processed_fp,
           max(CASE WHEN kind IN ('unknown', 'conflict') THEN exception_id END) AS opened_ex,
           max(CASE WHEN kind IN ('unknown', 'conflict') THEN raw_id END) AS opened_raw
    FROM _out WHERE valid AND kstate IS {which} NULL GROUP BY tenant_id, idempotency_key
"""

# The chunk's new keys, each written once, in key order. A key another writer stored
# meanwhile is skipped (and waited for while that writer's transaction is open): fewer
# rows than new keys means the chunk is classified again (``_KeyRace``).
_INSERT_KEYS = f"""
INSERT INTO idempotency_keys (tenant_id, idempotency_key, state, first_raw_id, last_raw_id,
    canonical_raw_id, canonical_fingerprint, arrival_count, delivery_count,
    adjudicated_fingerprints, open_exception_id, first_exception_raw_id)
SELECT tenant_id, idempotency_key,
       CASE WHEN opened_ex IS NOT NULL THEN 'quarantined' ELSE 'processed' END, min_raw,
       max_raw, processed_raw, processed_fp, n,
       CASE WHEN processed_raw IS NULL THEN 0 ELSE 1 END,
       CASE WHEN processed_fp IS NULL THEN '{{}}'::text[] ELSE ARRAY[processed_fp] END,
       opened_ex, opened_raw
FROM ({_KEY_FIGURES.format(which="")}) a ORDER BY tenant_id, idempotency_key
ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
"""

_NEW_KEYS = "SELECT count(DISTINCT (tenant_id, idempotency_key)) FROM _out" \
    " WHERE valid AND kstate IS NULL"

# The chunk's stored keys (locked in ``_KEY_HITS``), moved on.
_UPDATE_KEYS = f"""
WITH a AS ({_KEY_FIGURES.format(which="NOT")})
UPDATE idempotency_keys AS k SET
    state = CASE WHEN a.opened_ex IS NOT NULL THEN 'quarantined' ELSE k.state END,
    last_raw_id = greatest(k.last_raw_id, a.max_raw),
    arrival_count = k.arrival_count + a.n,
    delivery_count = k.delivery_count + CASE WHEN a.processed_raw IS NULL THEN 0 ELSE 1 END,
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
    """Store and classify ``rows`` (staged tuples, their table, or ``staging.prepare``'s
    result) in the caller's transaction; retried from a savepoint when the database
    reports a deadlock or a serialization failure, or another writer stored one of the
    chunk's new keys first. Returns the §10 counts and, when asked, §9 results."""
    prepared = prepare(rows)
    if prepared.num_rows == 0:
        return dict(_EMPTY), []
    origins = origin if isinstance(origin, list) else None  # one per arrival: group commit
    chunk_origin = None if origins else origin
    for attempt in range(RETRIES):
        try:
            with con.transaction():  # a savepoint inside the caller's transaction
                return _store(con, prepared, origins, chunk_origin, replay_of, with_outcomes)
        except Exception as e:
            if not (isinstance(e, _KeyRace) or busy_error(e)) or attempt == RETRIES - 1:
                raise
            time.sleep(0.01 * 2 ** attempt)
    raise AssertionError("unreachable")


def _store(con: Any, prepared: Prepared, origins: list[str] | None, origin: str | None,
           replay_of: int | None, with_outcomes: bool) -> tuple[dict, list[dict]]:
    copy_stage(con, prepared, origins)
    con.execute("ANALYZE _stage (seq, tenant_id, idempotency_key, valid)")
    feed_lock(con)  # before the key locks (queries.feed_lock says why)
    for sql in (_KEY_HITS, _CLASSIFY, _OPEN_IDS, _ASSIGN):
        con.execute(sql)
    con.execute("ANALYZE _out (seq, valid, kind, opens, kstate)")
    new_keys = con.execute(_NEW_KEYS).fetchone()[0]
    if new_keys and con.execute(_INSERT_KEYS).rowcount != new_keys:
        raise _KeyRace()
    con.execute(_UPDATE_KEYS)
    con.execute(_INSERT_RAWS, [origin, replay_of])
    con.execute(_INSERT_DELIVERIES)
    _insert_exceptions(con)
    outcomes = arrival_results(con.execute(_PER_ARRIVAL).fetchall()) if with_outcomes else []
    counts = dict(con.execute("SELECT outcome, count(*) FROM _out GROUP BY outcome").fetchall())
    for t in _TEMPS:
        con.execute(f"DROP TABLE {t}")
    summary = {"received": prepared.num_rows}
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

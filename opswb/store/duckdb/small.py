"""The small-chunk path: a chunk of new keys stored in five statements.

A live gate mostly sees a handful of events at a time (one HTTP request, or the group of
requests that arrived during the previous commit), and most of them are a new key's
first arrival. The set-wise classification (``classify.py``) decides such a chunk right,
but pays ~20 statements for it (~50 ms for one event here, each statement 0.5–7 ms
whatever its input). This path asks one question first — is every arrival valid, of an
allowed type, of a key neither stored nor repeated in the chunk? (Python over the staged
rows, and one lookup statement) — and when the answer is yes, writes exactly the rows the
full path writes for such a chunk (SPEC §5 row 1: raw, delivery, key record; the
counters moved alike) in four more statements. Any other chunk goes the full way, having
spent one statement here. In ``opswb serve`` the held store's ``GateCache`` answers the
question and hands out the ids, so such a chunk is three inserts (``gatecache.py``).
"""

from __future__ import annotations

import functools
from typing import Any

import duckdb

from opswb.core.envelope import STAGE_COLUMNS
from opswb.core.records import arrival_results
from opswb.store.duckdb.gatecache import GateCache, digest

# Chunks up to this many arrivals are checked for the path (a bulk chunk never is).
SMALL_CHUNK = 1024

# One statement reads what the check needs: the id counters, the allowlist entries of
# the chunk's types, and the stored records among the chunk's keys (by literal lists,
# cheaper than a join for a few keys; by a join for many).
_LOOKUP = """
SELECT 0, name, NULL, value FROM counters
UNION ALL SELECT 1, tenant_id, event_type, NULL FROM event_types WHERE event_type IN ({types})
UNION ALL SELECT 2, k.tenant_id, k.idempotency_key, NULL FROM idempotency_keys k {keys}
"""
_KEYS_LISTED = "WHERE k.idempotency_key IN ({keys}) AND k.tenant_id IN ({tenants})"
_KEYS_JOINED = ("SEMI JOIN _stage_in s ON k.tenant_id = s.tenant_id"
                " AND k.idempotency_key = s.idempotency_key")
LISTED_KEYS = 64


def _marks(values: list) -> str:
    return ", ".join("?" * len(values))


def records_of(rows: Any, origin: str | list[str] | None) -> list[dict]:
    """A chunk as the small path reads it: one dict per arrival (``seq`` from 1, the
    stage columns, ``origin`` when each arrival has its own), from staged tuples without
    building an Arrow table (~0.1 ms a chunk), or from a staged table."""
    if hasattr(rows, "to_pylist"):
        records = rows.to_pylist()
    else:
        if any(len(r) != len(STAGE_COLUMNS) for r in rows):
            raise ValueError(f"a staged row has {len(STAGE_COLUMNS)} fields")
        records = [dict(zip(STAGE_COLUMNS, r), seq=i) for i, r in enumerate(rows, 1)]
    if isinstance(origin, list) and records and "origin" not in records[0]:
        for r, o in zip(records, origin):
            r["origin"] = o
    return records


def _column(records: list[dict], name: str) -> list:
    return [r[name] for r in records]


def _lone_ids(con: duckdb.DuckDBPyConnection,
              records: list[dict]) -> tuple[int, int] | None:
    """(raw counter, delivery counter) if every arrival of ``records`` is valid, of an
    allowed type, and of a key neither repeated in it nor stored; else None."""
    if not all(_column(records, "valid")):
        return None
    tenants = _column(records, "tenant_id")
    keys = _column(records, "idempotency_key")
    types = _column(records, "event_type")
    pairs = set(zip(tenants, keys))
    if len(pairs) != len(keys):
        return None
    kinds, args = sorted(set(types)), []
    if len(pairs) <= LISTED_KEYS:
        ks, ts = sorted(set(keys)), sorted(set(tenants))
        where = _KEYS_LISTED.format(keys=_marks(ks), tenants=_marks(ts))
        args = ks + ts
    else:
        where = _KEYS_JOINED
    rows = con.execute(_LOOKUP.format(types=_marks(kinds), keys=where), kinds + args).fetchall()
    counters = {a: v for part, a, _, v in rows if part == 0}
    allowed = {(a, b) for part, a, b, _ in rows if part == 1}
    if any((a, b) in pairs for part, a, b, _ in rows if part == 2):
        return None
    if not all(("", t) in allowed or (tn, t) in allowed for tn, t in zip(tenants, types)):
        return None
    return counters["raw"], counters["delivery"]


# The rows ``classify._INSERT_RAWS``, ``_INSERT_DELIVERIES`` and ``_INSERT_LONE_KEYS``
# write for arrivals that are all processed (absent from ``_out``), column for column.
_RAWS = """
INSERT INTO raw_events
SELECT $raw_base + s.seq, now(), s.text, s.tenant_id, s.idempotency_key, s.event_type,
       s.source, s.occurred_at, s.payload, s.fingerprint, s.valid, s.error, 'processed',
       NULL, {origin}, $replay_of
FROM _stage_in s
"""

_DELIVERIES = """
INSERT INTO deliveries
SELECT $d_base + s.seq, s.tenant_id, s.idempotency_key, $raw_base + s.seq, NULL, NULL,
       s.fingerprint, false, NULL, now()
FROM _stage_in s
"""

_KEYS = """
INSERT INTO idempotency_keys
SELECT s.tenant_id, s.idempotency_key, 'processed', $raw_base + s.seq, $raw_base + s.seq,
       $raw_base + s.seq, s.fingerprint, NULL, 1, 1,
       CASE WHEN s.fingerprint IS NULL THEN []::VARCHAR[] ELSE [s.fingerprint] END, NULL, NULL
FROM _stage_in s
"""

# Both counters move by the chunk's size, as in the full path (delivery ids have gaps).
_BUMP = "UPDATE counters SET value = value + $n WHERE name IN ('raw', 'delivery')"


def _gated_keys(records: list[dict], gate: GateCache) -> list[int] | None:
    """``_lone_ids``' question answered from the held store's ``GateCache`` (no
    statement): the chunk's key digests, or None when a key may be stored (the exact
    way decides)."""
    if not all(_column(records, "valid")):
        return None
    tenants = _column(records, "tenant_id")
    keys = _column(records, "idempotency_key")
    digests = [digest(t, k) for t, k in zip(tenants, keys)]
    if len(set(zip(tenants, keys))) != len(keys) or gate.maybe_stored(digests):
        return None
    types = _column(records, "event_type")
    if not all(gate.is_allowed(t, e) for t, e in zip(tenants, types)):
        return None
    return digests


# A chunk of the gate's size is written with bound parameters instead of a registered
# Arrow table (which costs DuckDB 2-4 ms CPU a statement): one event as a VALUES row
# (~0.7 ms), more as one list per column, unnested (~1-2 ms for 4-64 rows, where a VALUES
# list grows to 14 ms). A slot that is a type is a parameter; any other is SQL.
VALUES_ROWS = LISTED_KEYS  # and unregistered: the lookup lists the keys too
_TABLES = {
    "raw_events": ("BIGINT", "now()", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR",
                   "VARCHAR", "VARCHAR", "VARCHAR", "BOOLEAN", "VARCHAR", "'processed'",
                   "NULL", "VARCHAR", "BIGINT"),
    "deliveries": ("BIGINT", "VARCHAR", "VARCHAR", "BIGINT", "NULL", "NULL", "VARCHAR",
                   "false", "NULL", "now()"),
    "idempotency_keys": ("VARCHAR", "VARCHAR", "'processed'", "BIGINT", "BIGINT", "BIGINT",
                         "VARCHAR", "NULL", "1", "1", "VARCHAR[]", "NULL", "NULL"),
}
_TYPES = ("BIGINT", "VARCHAR", "BOOLEAN", "VARCHAR[]")


@functools.cache
def _insert_sql(table: str, many: bool, nulls: tuple[bool, ...] = ()) -> str:
    """Rows as lists, one per column; one row as a VALUES row whose parameters take the
    target columns' types, with ``NULL`` written where ``nulls`` says the value is None
    (DuckDB's cost grows with each bound parameter)."""
    slots = _TABLES[table]
    if many:
        return f"INSERT INTO {table} SELECT " + ", ".join(
            f"unnest(?::{t}[])" if t in _TYPES else t for t in slots)
    null = iter(nulls)
    return f"INSERT INTO {table} VALUES (" + ", ".join(
        ("NULL" if next(null) else "?") if t in _TYPES else t for t in slots) + ")"


def _insert_values(con: duckdb.DuckDBPyConnection, records: list[dict], origin: str | None,
                   replay_of: int | None, raw_base: int, d_base: int) -> None:
    """The rows of ``_RAWS``, ``_DELIVERIES`` and ``_KEYS``, bound as parameters."""
    rows = {name: [] for name in _TABLES}
    for r in records:
        raw_id = raw_base + r["seq"]
        t, k, fp = r["tenant_id"], r["idempotency_key"], r["fingerprint"]
        rows["raw_events"].append((
            raw_id, r["text"], t, k, r["event_type"], r["source"], r["occurred_at"],
            r["payload"], fp, r["valid"], r["error"], r.get("origin", origin), replay_of))
        rows["deliveries"].append((d_base + r["seq"], t, k, raw_id, fp))
        rows["idempotency_keys"].append((t, k, raw_id, raw_id, raw_id, fp,
                                         [] if fp is None else [fp]))
    many = len(records) > 1
    for name, values in rows.items():
        if many:
            con.execute(_insert_sql(name, True), [list(c) for c in zip(*values)])
        else:
            nulls = tuple(v is None for v in values[0])
            con.execute(_insert_sql(name, False, nulls), [v for v in values[0] if v is not None])


def store_if_lone(con: duckdb.DuckDBPyConnection, records: list[dict], origin: str | None,
                  origin_column: bool, replay_of: int | None,
                  with_outcomes: bool,
                  gate: GateCache | None = None) -> tuple[dict, list[dict], int] | None:
    """Store the chunk ``records`` (``records_of``; registered as ``_stage_in`` too when
    longer than ``VALUES_ROWS``) if every arrival is a new key's only one, allowed:
    (counts, results, raw base). None, having written nothing, for any other chunk. With
    the held store's ``gate`` nothing is read."""
    n = len(records)
    if gate is not None:
        gate.ready(con)
        digests = _gated_keys(records, gate)
        if digests is None:
            return None
        # ids from the cache: the counters row moves only when its reserve runs out
        raw_base, d_base = gate.claim(con, n)
    else:
        ids = _lone_ids(con, records)
        if ids is None:
            return None
        (raw_base, d_base), digests = ids, []
    if n <= VALUES_ROWS:
        _insert_values(con, records, origin, replay_of, raw_base, d_base)
    else:
        raws = _RAWS.format(origin="s.origin" if origin_column else "$origin")
        con.execute(raws, {"raw_base": raw_base, "replay_of": replay_of,
                           **({} if origin_column else {"origin": origin})})
        con.execute(_DELIVERIES, {"d_base": d_base, "raw_base": raw_base})
        con.execute(_KEYS, {"raw_base": raw_base})
    if gate is None:
        con.execute(_BUMP, {"n": n})
    else:
        gate.took(n, digests)
    counts = {"received": n, "processed": n, "duplicates": 0, "exceptions_opened": 0,
              "attached": 0}
    results = arrival_results([(raw_base + i, "processed", None, None)
                               for i in range(1, n + 1)]) if with_outcomes else []
    return counts, results, raw_base

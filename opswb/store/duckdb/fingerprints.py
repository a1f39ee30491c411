"""Which arrivals of a chunk are contested, and their SPEC §4 fingerprints.

A key is *contested* in a chunk when it arrives more than once there or is already
stored; only then does "same event or not" need answering. The fingerprints of those
arrivals are computed here, in Python, and so is the fingerprint of a stored key that was
delivered by its only arrival (stored without one, see ``sql/0002_…``). The bulk reader
computes the fingerprints of a chunk's in-chunk repeats before the chunk is stored
(``fingerprint_repeats``); ``fill_fingerprints`` runs inside the caller's transaction,
over the staged chunk ``_stage_in``, and computes what is still missing.
"""

from __future__ import annotations

from typing import Any

import duckdb

from opswb.core.fingerprint import fingerprint, loads
from opswb.store.duckdb.queries import PAYLOAD_OF, RecentRaws, remember_fingerprints, stored_events

# Keys that arrive more than once in the staged chunk ``{stage}``: contested whatever the
# store holds.
_REPEATED_KEYS = ("SELECT tenant_id, idempotency_key FROM {stage} WHERE valid"
                  " GROUP BY ALL HAVING count(*) > 1")

# The stored records of the keys this chunk names (one scan of the key table).
_KEY_HITS = f"""
CREATE OR REPLACE TEMP TABLE _khit AS
SELECT k.tenant_id, k.idempotency_key, k.state, k.adjudicated_fingerprints,
       k.open_exception_id, k.canonical_raw_id, k.canonical_fingerprint, k.override_patch,
       k.first_exception_raw_id, k.first_raw_id
FROM idempotency_keys k
SEMI JOIN (SELECT tenant_id, idempotency_key FROM _stage_in WHERE valid) s
  ON k.tenant_id = s.tenant_id AND k.idempotency_key = s.idempotency_key;
CREATE OR REPLACE TEMP TABLE _ck AS
{_REPEATED_KEYS.format(stage="_stage_in")}
UNION SELECT tenant_id, idempotency_key FROM _khit;
"""


def _unfingerprinted(stage: str, keys: str) -> str:
    """The query for the valid arrivals of ``stage`` without a fingerprint whose key is
    among those ``keys`` returns, in order: seq, event type, payload."""
    return (f"SELECT s.seq, s.event_type, {PAYLOAD_OF.format(s='s.')} AS payload"
            f" FROM {stage} s SEMI JOIN ({keys}) c ON c.tenant_id = s.tenant_id"
            " AND c.idempotency_key = s.idempotency_key"
            " WHERE s.valid AND s.fingerprint IS NULL ORDER BY s.seq")


# Arrivals whose fingerprint decides something: their key is contested (arrives more than
# once in the chunk or is already stored). A key's only arrival (most of a bulk load)
# needs none.
_CONTESTED = _unfingerprinted("_stage_in", "SELECT tenant_id, idempotency_key FROM _ck")
_REPEATS = _unfingerprinted("_staged", _REPEATED_KEYS.format(stage="_staged"))


def _fingerprinted(con: duckdb.DuckDBPyConnection, query: str) -> tuple[list, list]:
    """The seqs and SPEC §4 fingerprints of the arrivals ``query`` returns."""
    rows = con.execute(query).fetchall()
    return [r[0] for r in rows], [fingerprint(t, loads(p)) for _, t, p in rows]


def fingerprint_repeats(con: duckdb.DuckDBPyConnection, table: Any) -> Any:
    """``table`` (a staged chunk, ``seq`` 1..n in order) with the fingerprints of the
    arrivals whose key arrives more than once in it filled in.

    Those keys are contested whatever the store holds, so the bulk reader computes their
    fingerprints on its own thread and connection before the chunk is stored (most
    repeats of a key follow it closely, in the same chunk); ``fill_fingerprints`` is then
    left with the arrivals of keys the store already holds.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    con.register("_staged", table)
    try:
        seqs, fps = _fingerprinted(con, _REPEATS)
    finally:
        con.unregister("_staged")
    if not seqs:
        return table
    mask = np.zeros(table.num_rows, bool)
    mask[np.array(seqs) - 1] = True
    i = table.schema.get_field_index("fingerprint")
    column = pc.replace_with_mask(table.column(i).combine_chunks(), pa.array(mask),
                                  pa.array(fps, pa.string()))
    return table.set_column(i, "fingerprint", column)


def fill_fingerprints(con: duckdb.DuckDBPyConnection,
                      recent: RecentRaws | None = None) -> dict[int, tuple]:
    """SPEC §4 fingerprints where they are needed: contested arrivals (``_fp``) and the
    delivered raw of a stored key whose fingerprint was never computed (in ``_khit``).

    Returns the stored raws it read (``storage.stored_events``, ``recent`` first): a
    conflict's FIRST is often one of them."""
    import pyarrow as pa

    con.execute(_KEY_HITS)
    seqs, fps = _fingerprinted(con, _CONTESTED)
    con.register("_fp_in", pa.table({"seq": pa.array(seqs, pa.int64()),
                                     "fingerprint": pa.array(fps, pa.string())}))
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _fp AS SELECT * FROM _fp_in")
    finally:
        con.unregister("_fp_in")
    lazy = con.execute(
        "SELECT tenant_id, idempotency_key, canonical_raw_id FROM _khit"
        " WHERE canonical_fingerprint IS NULL AND canonical_raw_id IS NOT NULL").fetchall()
    if not lazy:
        return {}
    read = stored_events(con, [r[2] for r in lazy], recent)
    found = {i: fp or fingerprint(t, loads(p)) for i, (t, p, fp) in read.items()}
    remember_fingerprints(con, {i: found[i] for i, (_, _, fp) in read.items() if fp is None})
    hits = [(r[0], r[1], found[r[2]]) for r in lazy if r[2] in found]
    con.register("_kfp_in", pa.table({
        "tenant_id": pa.array([h[0] for h in hits], pa.string()),
        "idempotency_key": pa.array([h[1] for h in hits], pa.string()),
        "fingerprint": pa.array([h[2] for h in hits], pa.string())}))
    try:
        con.execute(
            "UPDATE _khit AS k SET canonical_fingerprint = f.fingerprint, adjudicated_fingerprints"
            " = list_distinct(list_append(k.adjudicated_fingerprints, f.fingerprint))"
            " FROM _kfp_in f WHERE k.tenant_id = f.tenant_id"
            " AND k.idempotency_key = f.idempotency_key")
    finally:
        con.unregister("_kfp_in")
    return read

"""Failure groups (SPEC §9 ``GET /v1/exceptions/groups``): exceptions by reason and what
they share, counted set-wise.

Each exception carries its ``signature`` and ``group_id`` from the moment it opens
(``sql/0006_failure_groups.sql`` explains them and fills them in for older stores, with
the same expressions as here), so a groups page is one aggregate over two plain columns
of the exceptions table, and the queue's ``group`` filter an equality on one.
"""

from __future__ import annotations

import duckdb

from opswb.core.fingerprint import loads
from opswb.core.records import out_value

# What an exception shares with the others of its reason, from its ``details`` JSON.
SIGNATURE_SQL = """CASE reason_code
    WHEN 'IDEMPOTENCY_CONFLICT' THEN to_json(list_sort(list_distinct(
        coalesce(CAST(json_extract(details, '$.changed_paths') AS VARCHAR[]), [])
        || coalesce(CAST(json_extract(details, '$.added_paths') AS VARCHAR[]), [])
        || coalesce(CAST(json_extract(details, '$.removed_paths') AS VARCHAR[]), []))))::VARCHAR
    WHEN 'UNKNOWN_EVENT_TYPE' THEN coalesce(json_extract_string(details, '$.event_type'), '')
    ELSE left(trim(split_part(coalesce(json_extract_string(details, '$.error'), ''), ':', 1)), 100)
    END"""

# Stable and URL-safe: a word for the reason and 64 bits of sha256(reason, signature).
GROUP_ID_SQL = """CASE reason_code
    WHEN 'IDEMPOTENCY_CONFLICT' THEN 'conflict' WHEN 'UNKNOWN_EVENT_TYPE' THEN 'unknown'
    ELSE 'invalid' END || '-' || left(sha256(reason_code || chr(10) || signature), 16)"""

TENANTS_SHOWN = 50  # a group names at most this many tenants (and sources); counts say all

# One page of groups, largest first (ties by group_id), after the keyset (n, group_id).
_GROUPS = f"""
WITH g AS (
    SELECT group_id, any_value(reason_code) AS reason_code,
           any_value(signature) AS signature, count(*) AS count,
           list_slice(list(DISTINCT tenant_id ORDER BY tenant_id NULLS LAST), 1,
                      {TENANTS_SHOWN}) AS tenants,
           count(DISTINCT tenant_id) + max((tenant_id IS NULL)::INT) AS tenant_count,
           list_slice(list(DISTINCT source ORDER BY source NULLS LAST), 1,
                      {TENANTS_SHOWN}) AS sources,
           count(DISTINCT source) + max((source IS NULL)::INT) AS source_count,
           min(created_at) AS first_seen, max(created_at) AS last_seen,
           arg_min(exception_id, raw_id) AS sample_exception_id
    FROM exceptions WHERE {{where}}
    GROUP BY group_id
)
SELECT * FROM g
WHERE $after_n IS NULL OR count < $after_n OR (count = $after_n AND group_id > $after_id)
ORDER BY count DESC, group_id
LIMIT $limit
"""


def failure_groups(con: duckdb.DuckDBPyConnection, status: str | None, tenant_id: str | None,
                   reason_code: str | None, limit: int,
                   after: tuple[int, str] | None) -> list[dict]:
    """Groups of the exceptions matching the filters, largest first, after ``after``
    (the last page's ``(count, group_id)``); at most ``limit``."""
    where, params = ["true"], {"limit": limit, "after_n": None, "after_id": None}
    for col, val in (("status", status), ("tenant_id", tenant_id),
                     ("reason_code", reason_code)):
        if val not in (None, ""):
            where.append(f"{col} = ${col}")
            params[col] = val
    if after is not None:
        params["after_n"], params["after_id"] = after
    cur = con.execute(_GROUPS.format(where=" AND ".join(where)), params)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    for r in rows:
        r["signature"] = public_signature(r["reason_code"], r["signature"])
        r["first_seen"] = out_value("created_at", r["first_seen"])
        r["last_seen"] = out_value("created_at", r["last_seen"])
        r["sample_exception_id"] = str(r["sample_exception_id"])
    return rows


def public_signature(reason_code: str, signature: str | None) -> str | list[str] | None:
    """A conflict's signature is its list of paths; the others' a string."""
    if reason_code == "IDEMPOTENCY_CONFLICT" and signature is not None:
        return loads(signature)
    return signature

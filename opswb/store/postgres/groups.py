"""Failure groups on PostgreSQL (SPEC §9 ``GET /v1/exceptions/groups``), as on DuckDB
(``store/duckdb/groups.py``): each exception carries its ``signature`` and ``group_id``
from the moment it opens, computed here in Python with the same rules and text as
DuckDB's SQL (so a group has the same id on both stores); a groups page is one aggregate
over those two plain columns.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from opswb.core.fingerprint import loads
from opswb.core.records import out_value
from opswb.store.duckdb.groups import TENANTS_SHOWN, public_signature
from opswb.store.postgres.queries import tenant_out

_WORD = {"IDEMPOTENCY_CONFLICT": "conflict", "UNKNOWN_EVENT_TYPE": "unknown"}


def signature(reason_code: str, details_json: str) -> str:
    """What an exception shares with the others of its reason (``sql/0002_seam.sql``)."""
    details = loads(details_json) or {}
    if reason_code == "IDEMPOTENCY_CONFLICT":
        paths = set()
        for name in ("changed_paths", "added_paths", "removed_paths"):
            paths.update(details.get(name) or [])
        return json.dumps(sorted(paths), ensure_ascii=False, separators=(",", ":"))
    if reason_code == "UNKNOWN_EVENT_TYPE":
        return details.get("event_type") or ""
    return (details.get("error") or "").split(":", 1)[0].strip(" ")[:100]


def group_id(reason_code: str, sig: str) -> str:
    """Stable and URL-safe: a word for the reason and 64 bits of sha256(reason, signature)."""
    digest = hashlib.sha256((reason_code + "\n" + sig).encode("utf-8")).hexdigest()
    return _WORD.get(reason_code, "invalid") + "-" + digest[:16]


_GROUPS = f"""
WITH g AS (
    SELECT group_id, min(reason_code) AS reason_code, min(signature) AS signature,
           count(*) AS count,
           (array_agg(DISTINCT nullif(tenant_id, '') ORDER BY nullif(tenant_id, '')
                      NULLS LAST))[1:{TENANTS_SHOWN}] AS tenants,
           count(DISTINCT nullif(tenant_id, ''))
             + max(CASE WHEN tenant_id = '' THEN 1 ELSE 0 END) AS tenant_count,
           (array_agg(DISTINCT source ORDER BY source NULLS LAST))[1:{TENANTS_SHOWN}]
             AS sources,
           count(DISTINCT source) + max(CASE WHEN source IS NULL THEN 1 ELSE 0 END)
             AS source_count,
           min(created_at) AS first_seen, max(created_at) AS last_seen,
           (array_agg(exception_id ORDER BY raw_id))[1] AS sample_exception_id
    FROM exceptions WHERE {{where}}
    GROUP BY group_id
)
SELECT * FROM g
WHERE %(after_n)s::bigint IS NULL OR count < %(after_n)s
   OR (count = %(after_n)s AND group_id COLLATE "C" > %(after_id)s)
ORDER BY count DESC, group_id COLLATE "C"
LIMIT %(limit)s
"""


def failure_groups(con: Any, status: str | None, tenant_id: str | None,
                   reason_code: str | None, limit: int,
                   after: tuple[int, str] | None) -> list[dict]:
    """Groups of the exceptions matching the filters, largest first, after ``after``."""
    where, params = ["true"], {"limit": limit, "after_n": None, "after_id": None}
    for col, val in (("status", status), ("tenant_id", tenant_id),
                     ("reason_code", reason_code)):
        if val not in (None, ""):
            where.append(f"{col} = %({col})s")
            params[col] = val
    if after is not None:
        params["after_n"], params["after_id"] = after
    cur = con.execute(_GROUPS.format(where=" AND ".join(where)), params)
    names = [d.name for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    for r in rows:
        r["signature"] = public_signature(r["reason_code"], r["signature"])
        r["tenants"] = [tenant_out(t) for t in r["tenants"]]
        r["count"] = int(r["count"])
        r["tenant_count"] = int(r["tenant_count"])
        r["source_count"] = int(r["source_count"])
        r["first_seen"] = out_value("created_at", r["first_seen"])
        r["last_seen"] = out_value("created_at", r["last_seen"])
        r["sample_exception_id"] = str(r["sample_exception_id"])
    return rows

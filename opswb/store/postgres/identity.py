"""SPEC §15's statements on PostgreSQL (``store.identity.IdentityStatements``), as on
DuckDB (``store/duckdb/identity.py``): tokens by hash, four-eyes policies and proposals,
claims, comments, the audit chain. Tokens and policies are reference tables; comments
are tenant data, keyed by their exception's tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opswb.core.auditchain import epoch_us
from opswb.store.identity import IdentityStatements

_TOKEN_COLS = "name, role, created_at, created_by, last_used_at, revoked_at, revoked_by"
_CHAIN_COLS = ("audit_id, created_at, actor, action, exception_id, nullif(tenant_id, '')"
               " AS tenant_id, idempotency_key, state_before, state_after, notes,"
               " canonical_raw_id, override_patch, details, prev_hash, entry_hash")


def _dicts(cur: Any, iso: bool = True) -> list[dict]:
    names = [d.name for d in cur.description]
    return [{n: v.isoformat() if iso and isinstance(v, datetime) else v
             for n, v in zip(names, row)} for row in cur.fetchall()]


class PostgresIdentity(IdentityStatements):
    """The §15 statements over ``self.con``."""

    con: Any

    # ---- tokens -----------------------------------------------------------------------
    def insert_token(self, name: str, role: str, token_sha256: str, created_by: str) -> None:
        self.con.execute("INSERT INTO api_tokens (name, role, token_sha256, created_by)"
                         " VALUES (%s, %s, %s, %s)", [name, role, token_sha256, created_by])

    def token_rows(self) -> list[dict]:
        return _dicts(self.con.execute(f"SELECT {_TOKEN_COLS} FROM api_tokens ORDER BY name"))

    def token_by_name(self, name: str) -> dict | None:
        rows = _dicts(self.con.execute(
            f"SELECT {_TOKEN_COLS} FROM api_tokens WHERE name = %s", [name]))
        return rows[0] if rows else None

    def token_by_hash(self, token_sha256: str) -> dict | None:
        rows = _dicts(self.con.execute(
            f"SELECT {_TOKEN_COLS} FROM api_tokens WHERE token_sha256 = %s", [token_sha256]),
            iso=False)
        return rows[0] if rows else None

    def touch_token(self, name: str) -> None:
        self.con.execute("UPDATE api_tokens SET last_used_at = now() WHERE name = %s", [name])

    def revoke_token(self, name: str, actor: str) -> None:
        self.con.execute("UPDATE api_tokens SET revoked_at = now(), revoked_by = %s"
                         " WHERE name = %s", [actor, name])

    # ---- four eyes ----------------------------------------------------------------
    def policy_rows(self) -> list[dict]:
        rows = _dicts(self.con.execute(
            "SELECT tenant_id, action AS approve, set_by, set_at FROM approval_policies"
            " ORDER BY tenant_id, action"))
        for r in rows:
            r["tenant_id"] = r["tenant_id"] or None
        return rows

    def set_policy(self, tenant_id: str, action: str, actor: str) -> None:
        self.con.execute("INSERT INTO approval_policies (tenant_id, action, set_by)"
                         " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                         [tenant_id, action, actor])

    def clear_policy(self, tenant_id: str, action: str) -> bool:
        row = self.con.execute("DELETE FROM approval_policies WHERE tenant_id = %s"
                               " AND action = %s RETURNING tenant_id",
                               [tenant_id, action]).fetchone()
        return row is not None

    def needs_approval(self, tenant_id: str | None, action: str) -> bool:
        return self.con.execute(
            "SELECT count(*) FROM approval_policies WHERE action = %s"
            " AND tenant_id IN ('', %s)", [action, tenant_id or ""]).fetchone()[0] > 0

    def set_pending(self, exception_id: int, pending_json: str | None) -> None:
        self.con.execute("UPDATE exceptions SET pending = %s WHERE exception_id = %s",
                         [pending_json, exception_id])

    # ---- claims and comments ----------------------------------------------------------
    def set_assignee(self, exception_id: int, assignee: str | None) -> None:
        self.con.execute("UPDATE exceptions SET assignee = %s WHERE exception_id = %s",
                         [assignee, exception_id])

    def add_comment(self, exception_id: int, author: str, text: str) -> None:
        self.con.execute(
            "INSERT INTO exception_comments (tenant_id, exception_id, author, text)"
            " SELECT tenant_id, exception_id, %s, %s FROM exceptions WHERE exception_id = %s",
            [author, text, exception_id])

    def comments(self, exception_id: int) -> list[dict]:
        return _dicts(self.con.execute(
            "SELECT author, text, created_at AS at FROM exception_comments"
            " WHERE exception_id = %s ORDER BY comment_id", [exception_id]))

    # ---- the audit chain ----------------------------------------------------------
    def audit_chain(self) -> dict:
        start, head_id, head_hash = self.con.execute(
            "SELECT chain_start, head_id, head_hash FROM audit_chain").fetchone()
        unchained = self.con.execute(
            "SELECT count(*) FROM audit_log WHERE audit_id <= %s", [start]).fetchone()[0]
        rows = _dicts(self.con.execute(
            f"SELECT {_CHAIN_COLS} FROM audit_log WHERE audit_id > %s ORDER BY audit_id",
            [start]), iso=False)
        for r in rows:
            r["at_us"] = epoch_us(r.pop("created_at"))
        return {"chain_start": start, "head_id": head_id, "head_hash": head_hash,
                "unchained": unchained, "rows": rows}

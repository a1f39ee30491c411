"""The store seam's statements for SPEC §15 (who may do what): tokens, four-eyes
policies and proposals, claims, comments, and the audit chain.

``store.base.Session`` includes these; a backend implements them beside the others
(``opswb/store/duckdb/identity.py``). Times come back as ISO 8601 text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class IdentityStatements(ABC):
    """The §15 statements of one snapshot or transaction."""

    # ---- tokens -----------------------------------------------------------------------
    @abstractmethod
    def insert_token(self, name: str, role: str, token_sha256: str, created_by: str) -> None:
        """Store a token (by its hash only)."""

    @abstractmethod
    def token_rows(self) -> list[dict]:
        """Every token: ``name, role, created_at, created_by, last_used_at, revoked_at,
        revoked_by``, by name; never the hash."""

    @abstractmethod
    def token_by_name(self, name: str) -> dict | None:
        """One token's row (as ``token_rows``), or None."""

    @abstractmethod
    def token_by_hash(self, token_sha256: str) -> dict | None:
        """The token with this hash (as ``token_rows``, ``last_used_at`` a datetime),
        or None."""

    @abstractmethod
    def touch_token(self, name: str) -> None:
        """Set a token's ``last_used_at`` to now."""

    @abstractmethod
    def revoke_token(self, name: str, actor: str) -> None:
        """Mark a token revoked, now, by ``actor``."""

    # ---- four eyes ----------------------------------------------------------------
    @abstractmethod
    def policy_rows(self) -> list[dict]:
        """Every policy: ``tenant_id`` (None: global), ``approve``, ``set_by``, ``set_at``."""

    @abstractmethod
    def set_policy(self, tenant_id: str, action: str, actor: str) -> None:
        """Add a policy ('' for global); one that exists changes nothing."""

    @abstractmethod
    def clear_policy(self, tenant_id: str, action: str) -> bool:
        """Remove a policy; whether there was one."""

    @abstractmethod
    def needs_approval(self, tenant_id: str | None, action: str) -> bool:
        """Whether a global policy or the tenant's asks for approval of ``action``."""

    @abstractmethod
    def set_pending(self, exception_id: int, pending_json: str | None) -> None:
        """Set (or clear, None) an open exception's proposal."""

    # ---- claims and comments ----------------------------------------------------------
    @abstractmethod
    def set_assignee(self, exception_id: int, assignee: str | None) -> None:
        """Set (or clear, None) who has claimed an exception."""

    @abstractmethod
    def add_comment(self, exception_id: int, author: str, text: str) -> None:
        """Append a comment to an exception."""

    @abstractmethod
    def comments(self, exception_id: int) -> list[dict]:
        """An exception's comments, oldest first: ``author, text, at``."""

    # ---- the audit chain ----------------------------------------------------------
    @abstractmethod
    def audit_chain(self) -> dict:
        """``{"chain_start", "head_id", "head_hash", "rows"}``: every audit entry after
        ``chain_start`` in stored order, each a dict of ``auditchain.CHAINED`` fields plus
        ``prev_hash`` and ``entry_hash``, and how many entries precede the chain
        (``unchained``)."""

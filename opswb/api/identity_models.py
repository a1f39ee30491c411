"""Request and response models of SPEC §15's routes: tokens, policies, approvals,
claims, comments, the audit chain's check."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from opswb.api.models import _In, _Out

RoleName = Literal["viewer", "operator", "approver", "admin"]


class TokenBody(_In):
    """A new named token."""

    name: str
    role: RoleName


class TokenCreated(BaseModel):
    """The new token: shown in this answer only, stored as a hash."""

    name: str
    role: str
    token: str


class TokenOut(_Out):
    """A token's record (never the token)."""

    name: str
    role: str
    created_at: str
    created_by: str
    last_used_at: str | None
    revoked_at: str | None
    revoked_by: str | None


class TokenPage(BaseModel):
    items: list[TokenOut]
    next_cursor: str | None


class Caller(BaseModel):
    """Who the bearer token is."""

    name: str
    role: str
    bootstrap: bool = Field(False, description="true for the shared OPSWB_API_TOKEN")


class PolicyBody(_In):
    """A four-eyes policy, global (no tenant) or for one tenant."""

    approve: Literal["override_and_replay"] = "override_and_replay"
    tenant_id: str | None = None


class PolicyOut(_Out):
    tenant_id: str | None
    approve: str


class PolicyPage(BaseModel):
    items: list[PolicyOut]
    next_cursor: str | None


class DecideBody(_In):
    """Approve or reject a pending proposal."""

    actor: str | None = Field(None, description="the caller's token name, or left out")
    resolution_notes: str


class ActorBody(_In):
    """Optional: the caller's own name (SPEC §15)."""

    actor: str | None = None


class CommentBody(_In):
    """A comment on an exception."""

    text: str
    actor: str | None = None


class Comments(BaseModel):
    exception_id: str
    comments: list[dict[str, Any]]


class ChainCheck(_Out):
    """The audit hash chain walked: ``first_bad`` names the first entry that does not
    match (None when every entry does)."""

    ok: bool
    checked: int
    unchained: int
    chain_start: int
    first_bad: str | None
    problem: str | None

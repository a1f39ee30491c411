"""Tokens, the caller, and four-eyes policies (SPEC §15); roles in ``api/roles.py``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from opswb.api.gate import JSONOut
from opswb.api.identity_models import (
    Caller as CallerOut,
)
from opswb.api.identity_models import (
    PolicyBody,
    PolicyOut,
    PolicyPage,
    TokenBody,
    TokenCreated,
    TokenOut,
    TokenPage,
)
from opswb.api.routes.common import COMMON, ERR, WB, Caller

router = APIRouter()


@router.get("/v1/whoami", response_model=CallerOut, responses=COMMON, tags=["tokens"])
def whoami(who: Caller) -> Any:
    """The caller: the bearer token's name and role."""
    return JSONOut({"name": who["name"], "role": who["role"],
                    "bootstrap": bool(who.get("bootstrap"))})


@router.get("/v1/tokens", response_model=TokenPage, responses=COMMON, tags=["tokens"])
def list_tokens(wb: WB) -> Any:
    """Every named token: role, created, last used (to the minute), revoked; never the
    token."""
    return JSONOut({"items": wb.tokens(), "next_cursor": None})


@router.post("/v1/tokens", response_model=TokenCreated, status_code=201,
             responses={**COMMON, 409: ERR}, tags=["tokens"])
def add_token(wb: WB, who: Caller, body: TokenBody) -> Any:
    """Create a named token; this answer is the only place the token appears (the store
    keeps its sha256). A name is never reused."""
    return JSONOut(wb.add_token(body.name, body.role, who["name"]), status_code=201)


@router.delete("/v1/tokens", response_model=TokenOut, responses={**COMMON, 404: ERR, 409: ERR},
               tags=["tokens"])
def revoke_token(wb: WB, who: Caller, name: str) -> Any:
    """Revoke a token: refused from the next request on."""
    return JSONOut(wb.revoke_token(name, who["name"]))


@router.get("/v1/policies", response_model=PolicyPage, responses=COMMON, tags=["policies"])
def list_policies(wb: WB) -> Any:
    """Four-eyes policies (``tenant_id`` null: global)."""
    return JSONOut({"items": wb.policies(), "next_cursor": None})


@router.post("/v1/policies", response_model=PolicyOut, responses=COMMON, tags=["policies"])
def set_policy(wb: WB, who: Caller, body: PolicyBody) -> Any:
    """Make ``approve`` (override_and_replay) a proposal that a different approver must
    approve, globally or for one tenant."""
    return JSONOut(wb.set_policy(body.approve, body.tenant_id, who["name"]))


@router.delete("/v1/policies", response_model=PolicyOut, responses={**COMMON, 404: ERR},
               tags=["policies"])
def clear_policy(wb: WB, who: Caller, approve: str = "override_and_replay",
                 tenant_id: str | None = None) -> Any:
    """Remove a four-eyes policy."""
    return JSONOut(wb.clear_policy(approve, tenant_id, who["name"]))

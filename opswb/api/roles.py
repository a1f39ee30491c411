"""Who may call what (SPEC §15): the one table of route × least role.

Roles are ordered — viewer < operator < approver < admin — and each may do everything
the ones before it may. A route missing here is admin-only (and the table test in
``tests/api/test_roles.py`` fails, naming it): add a line when you add a route.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Match

from opswb.core.models import Role

V, O, A, ADMIN = Role.VIEWER, Role.OPERATOR, Role.APPROVER, Role.ADMIN
EX = "/v1/exceptions/{exception_id}"

RULES: dict[tuple[str, str], Role] = {
    ("GET", "/v1/openapi.json"): V,
    ("GET", "/v1/health"): V,
    ("GET", "/v1/health/snapshots"): V,
    ("POST", "/v1/health/snapshots"): O,  # an observation, not a decision
    ("GET", "/v1/exceptions"): V,
    ("GET", EX): V,
    ("GET", "/v1/keys"): V,
    ("POST", EX + "/preview"): V,  # writes nothing
    ("GET", "/v1/audit"): V,
    ("GET", "/v1/audit/verify"): V,
    ("GET", "/v1/types"): V,
    ("GET", "/v1/policies"): V,
    ("GET", "/v1/whoami"): V,
    ("POST", "/v1/events"): O,
    ("POST", "/v1/exceptions/resolve"): O,
    ("POST", EX + "/resolve"): O,
    ("POST", EX + "/reopen"): O,
    ("POST", EX + "/claim"): O,
    ("DELETE", EX + "/claim"): O,
    ("POST", EX + "/comments"): O,
    ("POST", EX + "/approve"): A,
    ("POST", EX + "/reject"): A,
    ("POST", "/v1/types"): ADMIN,
    ("DELETE", "/v1/types"): ADMIN,
    ("GET", "/v1/tokens"): ADMIN,
    ("POST", "/v1/tokens"): ADMIN,
    ("DELETE", "/v1/tokens"): ADMIN,
    ("POST", "/v1/policies"): ADMIN,
    ("DELETE", "/v1/policies"): ADMIN,
    # routes being built on other branches (docs/contract.md, Not yet)
    ("GET", "/v1/deliveries"): V,
    ("GET", "/v1/exceptions/groups"): V,
}
PLANNED = {("GET", "/v1/deliveries"), ("GET", "/v1/exceptions/groups")}


def flat_routes(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """The app's routes, those of included routers inlined (FastAPI keeps an included
    router as one entry; ours are included without a prefix)."""
    out: list[BaseRoute] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out.extend(flat_routes(inner.routes) if inner is not None else [route])
    return out


def route_rules(routes: Iterable[BaseRoute]) -> list[tuple[str, str, Role | None]]:
    """Every (method, path) the app serves with its rule (None: missing here)."""
    out = []
    for route in flat_routes(routes):
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                path = getattr(route, "path", "")
                out.append((method, path, RULES.get((method, path))))
    return out


def required_role(routes: Iterable[BaseRoute], scope: dict[str, Any]) -> Role | None:
    """The least role for the route ``scope`` asks for; None when no route matches
    (the app answers 404 or 405 itself)."""
    method = "GET" if scope["method"] == "HEAD" else scope["method"]
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return RULES.get((method, getattr(route, "path", "")), ADMIN)
    return None


def refusal(who: dict, need: Role, scope: dict[str, Any]) -> str | None:
    """Why ``who`` may not make this call (None: it may)."""
    if Role(who["role"]).rank >= need.rank:
        return None
    return (f"token {who['name']!r} has role {who['role']}; {scope['method']} "
            f"{scope['path']} needs {need.value} or above")

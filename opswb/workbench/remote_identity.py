"""SPEC §15's methods of the remote workbench (``RemoteWorkbench`` includes them), over
``/v1/tokens``, ``/v1/policies``, ``/v1/exceptions/{id}/approve|reject|claim|comments``
and ``/v1/audit/verify``. ``actor`` may be left empty: the server records the token's
name, and refuses another one (SPEC §15). The calls whose route takes no ``actor``
(tokens, policies, unclaim) refuse another name here, before sending anything, rather
than let it be recorded as the token's."""

from __future__ import annotations

from typing import Any

from opswb.engine.identity import acting_as


class RemoteIdentity:
    """The §15 half of ``RemoteWorkbench`` (whose ``_call`` and ``_id`` it uses)."""

    url: str
    _call: Any
    _id: Any

    def _ex(self, exception_id: str, what: str) -> str:
        return f"/v1/exceptions/{self._id(exception_id)}/{what}"

    def _as_caller(self, actor: str) -> None:
        """Refuse an ``actor`` that is not this token's name (asked once, then kept)."""
        if (actor or "").strip():
            if getattr(self, "_caller", None) is None:
                self._caller = self._call("GET", "/v1/whoami")["name"]
            acting_as(self._caller, actor)

    def authenticate(self, token: str) -> dict | None:
        """``{"name", "role"}`` of ``token`` as this server sees it, else None."""
        import httpx

        r = httpx.get(self.url + "/v1/whoami", headers={"Authorization": f"Bearer {token}"},
                      timeout=30)
        return r.json() if r.status_code == 200 else None

    # ---- tokens -----------------------------------------------------------------------
    def tokens(self) -> list[dict]:
        """Every token (names, roles, created, last used, revoked); never a secret."""
        return self._call("GET", "/v1/tokens")["items"]

    def add_token(self, name: str, role: str, actor: str = "") -> dict:
        """Create a token: ``{"name", "role", "token"}``, the token shown only here."""
        self._as_caller(actor)
        return self._call("POST", "/v1/tokens", body={"name": name, "role": role})

    def revoke_token(self, name: str, actor: str = "") -> dict:
        """Revoke a token; it is refused from the next request on."""
        self._as_caller(actor)
        return self._call("DELETE", "/v1/tokens", params={"name": name})

    # ---- four eyes --------------------------------------------------------------------
    def policies(self) -> list[dict]:
        """The four-eyes policies (``tenant_id`` None: global)."""
        return self._call("GET", "/v1/policies")["items"]

    def set_policy(self, approve: str = "override_and_replay", tenant_id: str | None = None,
                   actor: str = "") -> dict:
        """Make ``approve`` a proposal needing a second person, globally or per tenant."""
        self._as_caller(actor)
        return self._call("POST", "/v1/policies",
                          body={"approve": approve, "tenant_id": tenant_id or None})

    def clear_policy(self, approve: str = "override_and_replay",
                     tenant_id: str | None = None, actor: str = "") -> dict:
        """Remove a four-eyes policy."""
        self._as_caller(actor)
        return self._call("DELETE", "/v1/policies",
                          params={"approve": approve, "tenant_id": tenant_id or None})

    def approve(self, exception_id: str, actor: str = "", resolution_notes: str = "") -> dict:
        """Apply an exception's pending proposal (someone else's); returns it resolved."""
        return self._call("POST", self._ex(exception_id, "approve"),
                          body={"actor": actor or None, "resolution_notes": resolution_notes})

    def reject(self, exception_id: str, actor: str = "", resolution_notes: str = "") -> dict:
        """Drop an exception's pending proposal; it stays open."""
        return self._call("POST", self._ex(exception_id, "reject"),
                          body={"actor": actor or None, "resolution_notes": resolution_notes})

    # ---- claims and comments ----------------------------------------------------------
    def claim(self, exception_id: str, actor: str = "") -> dict:
        """Set ``assignee`` of an open exception to the caller."""
        return self._call("POST", self._ex(exception_id, "claim"),
                          body={"actor": actor or None})

    def unclaim(self, exception_id: str, actor: str = "") -> dict:
        """Clear ``assignee`` of an open exception."""
        self._as_caller(actor)
        return self._call("DELETE", self._ex(exception_id, "claim"))

    def comment(self, exception_id: str, text: str = "", actor: str = "") -> dict:
        """Add a comment: ``{"exception_id", "comments"}``."""
        return self._call("POST", self._ex(exception_id, "comments"),
                          body={"text": text, "actor": actor or None})

    # ---- the audit chain ----------------------------------------------------------
    def verify_audit(self) -> dict:
        """Walk the audit hash chain: ``{"ok", "checked", "unchained", "first_bad",
        "problem"}``."""
        return self._call("GET", "/v1/audit/verify")

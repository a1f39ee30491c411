"""SPEC §15's methods of the local workbench (``LocalWorkbench`` includes them): tokens,
four-eyes policies, approve/reject, claims, comments, the audit chain's check.

Each opens the store for one short transaction, like the rest of ``local``.
"""

from __future__ import annotations

import threading

from opswb.core.errors import OpswbError
from opswb.engine import foureyes, identity
from opswb.store import Store

_touching: set[tuple[str, str]] = set()  # (store, token name) whose last use is being written


class LocalIdentity:
    """The §15 half of ``LocalWorkbench``."""

    store: Store

    # ---- tokens -----------------------------------------------------------------------
    def tokens(self) -> list[dict]:
        """Every token (names, roles, created, last used, revoked); never a secret."""
        with self.store.read() as db:
            return db.token_rows()

    def add_token(self, name: str, role: str, actor: str = "") -> dict:
        """Create a token: ``{"name", "role", "token"}``, the token shown only here."""
        with self.store.write() as db:
            return identity.add_token(db, name, role, actor)

    def revoke_token(self, name: str, actor: str = "") -> dict:
        """Revoke a token; it is refused from the next request on."""
        with self.store.write() as db:
            return identity.revoke_token(db, name, actor)

    def authenticate(self, token: str) -> dict | None:
        """``{"name", "role"}`` of a live token, else None (the server's gate asks);
        records its use at most once a minute, on a thread of its own, so a request never
        waits for the write lock (a long ingest may hold it) to say who it is."""
        with self.store.read() as db:
            who, due = identity.lookup(db, token)
        key = (self.store.target, who["name"]) if who is not None else None
        if due and key not in _touching:
            _touching.add(key)  # one touch at a time per token, however many requests
            threading.Thread(target=self._touch, args=(key,), daemon=True,
                             name="opswb-token-touch").start()
        return who

    def _touch(self, key: tuple[str, str]) -> None:
        try:
            with self.store.write() as db:
                db.touch_token(key[1])
        except OpswbError:  # the store closing under it: the next use records it
            pass
        finally:
            _touching.discard(key)

    # ---- four eyes --------------------------------------------------------------------
    def policies(self) -> list[dict]:
        """The four-eyes policies (``tenant_id`` None: global)."""
        with self.store.read() as db:
            return db.policy_rows()

    def set_policy(self, approve: str = "override_and_replay", tenant_id: str | None = None,
                   actor: str = "") -> dict:
        """Make ``approve`` a proposal needing a second person, globally or per tenant."""
        with self.store.write() as db:
            return identity.set_policy(db, approve, tenant_id, actor)

    def clear_policy(self, approve: str = "override_and_replay",
                     tenant_id: str | None = None, actor: str = "") -> dict:
        """Remove a four-eyes policy."""
        with self.store.write() as db:
            return identity.clear_policy(db, approve, tenant_id, actor)

    def approve(self, exception_id: str, actor: str = "", resolution_notes: str = "") -> dict:
        """Apply an exception's pending proposal (someone else's); returns it resolved."""
        with self.store.write() as db:
            return foureyes.approve(db, exception_id, actor, resolution_notes)

    def reject(self, exception_id: str, actor: str = "", resolution_notes: str = "") -> dict:
        """Drop an exception's pending proposal; it stays open."""
        with self.store.write() as db:
            return foureyes.reject(db, exception_id, actor, resolution_notes)

    # ---- claims and comments ----------------------------------------------------------
    def claim(self, exception_id: str, actor: str = "") -> dict:
        """Set ``assignee`` of an open exception to ``actor``."""
        with self.store.write() as db:
            return foureyes.claim(db, exception_id, actor)

    def unclaim(self, exception_id: str, actor: str = "") -> dict:
        """Clear ``assignee`` of an open exception."""
        with self.store.write() as db:
            return foureyes.claim(db, exception_id, actor, release=True)

    def comment(self, exception_id: str, text: str = "", actor: str = "") -> dict:
        """Add a comment: ``{"exception_id", "comments"}``."""
        with self.store.write() as db:
            return foureyes.comment(db, exception_id, actor, text)

    # ---- the audit chain ----------------------------------------------------------
    def verify_audit(self) -> dict:
        """Walk the audit hash chain: ``{"ok", "checked", "unchained", "first_bad",
        "problem"}``."""
        with self.store.read() as db:
            return identity.verify_chain(db.audit_chain())

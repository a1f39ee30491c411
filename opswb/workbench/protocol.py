"""The one interface of the ways in: SPEC §12's Python API as a ``typing.Protocol``.

Three classes satisfy it — ``LocalWorkbench`` (a store named by path, opened per call),
``ServedWorkbench`` (the same over a store the server holds) and ``RemoteWorkbench``
(an ``opswb serve`` URL) — so the shells (CLI, HTTP API, panels, notebooks) take any of
them. ``tests/workbench/test_protocol.py`` checks that each matches it, signature by
signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

Progress = Callable[[int, int], None]


class Workbench(Protocol):
    """What every workbench offers; ``remote`` says whether it talks HTTP."""

    db: str
    remote: bool

    # ---- ingest (SPEC §2, §9, §10) ------------------------------------------------------
    def init(self) -> dict:
        """Create or migrate the store (a no-op remotely); returns health."""

    def ingest(self, source: Any, on_progress: Progress | None = None) -> dict:
        """A path (or paths), a DataFrame or an iterable of events: the §10 summary."""

    def ingest_batch(self, elements: list, batch_id: str | None = None) -> dict:
        """One batch, atomically, as ``POST /v1/events``: summary plus ``results``."""

    def ingest_json(self, body: bytes, batch_id: str | None = None) -> dict:
        """A JSON request body (an array, or one object), as ``ingest_batch``."""

    def ingest_ndjson(self, body: bytes, batch_id: str | None = None) -> dict:
        """An NDJSON body, each line kept exactly as received, as ``ingest_batch``."""

    # ---- reading ------------------------------------------------------------------
    def health(self) -> dict:
        """SPEC §8's figures."""

    def list_exceptions(self, status: str | None = "open", tenant_id: str | None = None,
                        reason_code: str | None = None, source: str | None = None,
                        idempotency_key: str | None = None, limit: int | None = 50,
                        cursor: str | None = None, group: str | None = None,
                        assignee: str | None = None, sort: str | None = None,
                        q: str | None = None, pending: bool | None = None) -> dict:
        """One page, oldest first unless ``sort`` (``age``, ``tenant``, ``reason``,
        ``key``; ``-`` first for descending): ``{"items", "next_cursor"}``; ``group`` a
        group_id, ``assignee`` who claimed them, ``q`` a substring of key or source,
        ``pending`` True: only those with a four-eyes proposal."""

    def exceptions(self, status: str | None = "open", tenant_id: str | None = None,
                   reason_code: str | None = None, source: str | None = None,
                   idempotency_key: str | None = None,
                   limit: int | None = None, group: str | None = None) -> pd.DataFrame:
        """Exceptions as a pandas DataFrame, oldest first."""

    def groups(self, status: str | None = "open", tenant_id: str | None = None,
               reason_code: str | None = None, limit: int = 50,
               cursor: str | None = None) -> dict:
        """Failure groups, largest first: ``{"items", "next_cursor"}`` (SPEC §9)."""

    def exception(self, exception_id: str) -> dict:
        """The detail of one exception, as ``GET /v1/exceptions/{id}``."""

    def key(self, tenant_id: str, idempotency_key: str) -> dict:
        """One key: its record, arrivals and deliveries."""

    def preview(self, exception_id: str, canonical_raw_id: str | None = None,
                override_patch: Any = None) -> dict:
        """What ``override_and_replay`` would deliver, validated; writes nothing."""

    def audit(self, exception_id: str | None = None, actor: str | None = None,
              tenant_id: str | None = None, limit: int = 200) -> list[dict]:
        """Audit entries, newest first."""

    def types(self, tenant_id: str | None = None) -> list[dict]:
        """The allowlist."""

    def snapshots(self, since: str | None = None) -> list[dict]:
        """Recorded health snapshots, oldest first."""

    def deliveries(self, after: str | None = None, tenant_id: str | None = None,
                   limit: int = 1000, wait: float = 0) -> dict:
        """The outbox after the cursor ``after``, in delivery order, as ``GET
        /v1/deliveries``: ``{"items", "next_cursor"}``; follow ``next_cursor`` and no
        delivery is skipped. ``wait`` (seconds, at most 30): when nothing is new, wait
        for a commit that brings something, then answer (an empty page on time-out)."""

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        """Read-only SQL over the analyst views (local DuckDB stores only)."""

    @property
    def views(self) -> Any:
        """The analyst views as methods (local DuckDB stores only)."""

    # ---- decisions (SPEC §7) -----------------------------------------------------------
    def resolve(self, exception_id: str, action: str = "", actor: str = "",
                resolution_notes: str = "", canonical_raw_id: str | None = None,
                override_patch: Any = None) -> dict:
        """Resolve one open exception; returns it updated."""

    def resolve_many(self, ids: list[str] | None = None, filter: dict | None = None,
                     action: str = "", actor: str = "", resolution_notes: str = "",
                     canonical_raw_id: str | None = None, override_patch: Any = None) -> dict:
        """One decision for many open exceptions: ``{"results": [...]}``."""

    def reopen(self, exception_id: str, actor: str = "", resolution_notes: str = "") -> dict:
        """Reopen a resolved exception."""

    def add_type(self, event_type: str, tenant_id: str | None = None, actor: str = "",
                 notes: str | None = None) -> dict:
        """Allow an event type globally or for one tenant (audited)."""

    def remove_type(self, event_type: str, tenant_id: str | None = None, actor: str = "",
                    notes: str | None = None) -> dict:
        """Remove an allowlist entry (audited)."""

    def record_snapshot(self) -> dict:
        """Record a health snapshot; returns it."""

    # ---- who may do what (SPEC §15) -----------------------------------------------------
    def tokens(self) -> list[dict]:
        """Every token (names, roles, created, last used, revoked); never a secret."""

    def add_token(self, name: str, role: str, actor: str = "") -> dict:
        """Create a token: ``{"name", "role", "token"}``, the token shown only here."""

    def revoke_token(self, name: str, actor: str = "") -> dict:
        """Revoke a token; it is refused from the next request on."""

    def policies(self) -> list[dict]:
        """The four-eyes policies (``tenant_id`` None: global)."""

    def set_policy(self, approve: str = "override_and_replay", tenant_id: str | None = None,
                   actor: str = "") -> dict:
        """Make ``approve`` a proposal needing a second person, globally or per tenant."""

    def clear_policy(self, approve: str = "override_and_replay",
                     tenant_id: str | None = None, actor: str = "") -> dict:
        """Remove a four-eyes policy."""

    def approve(self, exception_id: str, actor: str = "", resolution_notes: str = "") -> dict:
        """Apply an exception's pending proposal (someone else's); returns it resolved."""

    def reject(self, exception_id: str, actor: str = "", resolution_notes: str = "") -> dict:
        """Drop an exception's pending proposal; it stays open."""

    def claim(self, exception_id: str, actor: str = "") -> dict:
        """Set ``assignee`` of an open exception to ``actor``."""

    def unclaim(self, exception_id: str, actor: str = "") -> dict:
        """Clear ``assignee`` of an open exception."""

    def comment(self, exception_id: str, text: str = "", actor: str = "") -> dict:
        """Add a comment: ``{"exception_id", "comments"}``."""

    def verify_audit(self) -> dict:
        """Walk the audit hash chain: ``{"ok", "checked", "unchained", "first_bad",
        "problem"}``."""

    def close(self) -> None:
        """Let go of what the workbench holds (a held store, an HTTP client)."""

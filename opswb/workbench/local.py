"""The local workbench: SPEC §12's Python API over a store (``opswb.store``).

Embedded mode: each call opens the store, does one short transaction and closes it
again (SPEC §13), so several processes can share a DuckDB file. Inside ``opswb serve``
the same class runs over a held store (``in_server.ServedWorkbench``). ``opswb.connect``
picks this class for a path and ``RemoteWorkbench`` for an ``http(s)://`` URL; both
satisfy ``protocol.Workbench``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from opswb.core.errors import InvalidRequest, NotFound
from opswb.core.fingerprint import dump_bytes
from opswb.core.records import EXCEPTION_FIELDS, parse_id, public_key_record
from opswb.engine import allowlist, bulk, foureyes, listing
from opswb.engine import groups as groups_mod
from opswb.engine import health as health_mod
from opswb.engine import ingest as ingest_mod
from opswb.engine import resolutions as resolve
from opswb.engine.detail import exception_detail
from opswb.store import Store, default_db, store_for
from opswb.workbench import feed
from opswb.workbench.local_identity import LocalIdentity
from opswb.workbench.protocol import Progress

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_PAGE = 50


class LocalWorkbench(LocalIdentity):
    """The workbench over one store, opened per call unless the store is held."""

    remote = False

    def __init__(self, db: str | None = None, busy_timeout: float | None = None,
                 store: Store | None = None):
        self.db = str(store.target if store is not None else db or default_db())
        self.busy_timeout = busy_timeout
        self.store = store if store is not None else store_for(self.db, busy_timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.db!r})"

    def close(self) -> None:
        """Let go of the store (embedded mode holds nothing between calls)."""
        self.store.close()

    # ---- ingest ---------------------------------------------------------------------
    def init(self) -> dict:
        """Create (or migrate) the store and seed the allowlist; returns health."""
        return self.health()

    def ingest(self, source: Any, on_progress: Progress | None = None) -> dict:
        """Ingest a path (or paths), a DataFrame or an iterable of events (§10 summary)."""
        return ingest_mod.ingest_any(self.store, source, on_progress)

    def ingest_batch(self, elements: list, batch_id: str | None = None) -> dict:
        """Ingest one batch of elements atomically, as ``POST /v1/events``: the §10
        summary plus ``results``, one per element. A batch id stored before answers its
        first results again if the elements are the same (their JSON), else ``Conflict``."""
        return self._ingest_elements(list(elements), batch_id, None)

    def _ingest_elements(self, elements: list, batch_id: str | None,
                         body_sha256: str | None) -> dict:
        from opswb.core.envelope import stage_element

        if batch_id is not None and body_sha256 is None:
            body_sha256 = hashlib.sha256(dump_bytes(elements)).hexdigest()
        rows = [stage_element(e) for e in elements]
        return ingest_mod.ingest_batch(self.store, rows, batch_id, body_sha256)

    def ingest_ndjson(self, body: bytes, batch_id: str | None = None) -> dict:
        """Ingest an NDJSON body atomically (each line kept exactly as received), as
        ``ingest_batch``; a stored batch id is compared by the body's exact bytes."""
        from opswb.engine.readers import read_ndjson_text

        digest = hashlib.sha256(body).hexdigest() if batch_id is not None else None
        return ingest_mod.ingest_batch(self.store, read_ndjson_text(body),
                                       batch_id, digest)

    def ingest_json(self, body: bytes, batch_id: str | None = None) -> dict:
        """Ingest a JSON request body atomically: each element of an array kept as its own
        bytes (a malformed one is an invalid arrival, its neighbours go on), or the one
        object it holds; otherwise as ``ingest_ndjson``."""
        from opswb.engine.readers import read_json_text

        digest = hashlib.sha256(body).hexdigest() if batch_id is not None else None
        return ingest_mod.ingest_batch(self.store, read_json_text(body),
                                       batch_id, digest)

    # ---- reading --------------------------------------------------------------------
    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        """Run one read-only SELECT over the analyst views; returns a DataFrame."""
        return self.store.sql(query, params)

    @property
    def views(self):
        """The documented analyst views as DataFrame-returning methods (read-only)."""
        return self.store.views()

    def health(self) -> dict:
        """SPEC §8 figures."""
        with self.store.read() as db:
            return health_mod.health(db)

    def list_exceptions(self, status: str | None = "open", tenant_id: str | None = None,
                        reason_code: str | None = None, source: str | None = None,
                        idempotency_key: str | None = None, limit: int | None = DEFAULT_PAGE,
                        cursor: str | None = None, group: str | None = None,
                        assignee: str | None = None, sort: str | None = None,
                        q: str | None = None, pending: bool | None = None) -> dict:
        """One page, oldest first unless ``sort`` says otherwise (``engine.listing``):
        ``{"items": [...], "next_cursor": str | None}``; ``group``: a failure group's id
        (``groups()``); ``assignee``: who claimed them; ``q``: a substring of the key or
        the source, any case; ``tenant_id="(none)"``: those without a tenant; ``pending``
        True/False: only those with/without a four-eyes proposal."""
        filters = {"tenant_id": tenant_id, "reason_code": reason_code, "source": source,
                   "idempotency_key": idempotency_key, "group": group, "assignee": assignee,
                   "pending": pending}
        with self.store.read() as db:
            return listing.exception_page(db, status, filters, limit, cursor, sort, q)

    def exceptions(self, status: str | None = "open", tenant_id: str | None = None,
                   reason_code: str | None = None, source: str | None = None,
                   idempotency_key: str | None = None,
                   limit: int | None = None, group: str | None = None) -> pd.DataFrame:
        """Exceptions as a pandas DataFrame, oldest first."""
        import pandas as pd

        page = self.list_exceptions(status, tenant_id, reason_code, source, idempotency_key,
                                    limit=limit, group=group)
        return pd.DataFrame(page["items"], columns=list(EXCEPTION_FIELDS))

    def groups(self, status: str | None = "open", tenant_id: str | None = None,
               reason_code: str | None = None, limit: int = groups_mod.DEFAULT_PAGE,
               cursor: str | None = None) -> dict:
        """Failure groups, largest first: ``{"items", "next_cursor"}`` (``engine.groups``)."""
        with self.store.read() as db:
            return groups_mod.group_page(db, status, tenant_id, reason_code, limit, cursor)

    def exception(self, exception_id: str) -> dict:
        """The detail of one exception, as ``GET /v1/exceptions/{id}``."""
        with self.store.read() as db:
            return exception_detail(db, exception_id)

    def key(self, tenant_id: str, idempotency_key: str) -> dict:
        """One key: its ``events_processed`` record, arrivals and deliveries."""
        with self.store.read() as db:
            rec = db.key_record(tenant_id, idempotency_key)
            if rec is None:
                raise NotFound(f"no key {idempotency_key!r} for tenant {tenant_id!r}")
            return {"events_processed": public_key_record(rec),
                    "arrivals": db.key_arrivals(rec),
                    "deliveries": db.key_deliveries(rec)}

    def preview(self, exception_id: str, canonical_raw_id: str | None = None,
                override_patch: Any = None) -> dict:
        """What ``override_and_replay`` would deliver, validated; writes nothing."""
        with self.store.read() as db:
            return resolve.preview_replay(db, exception_id, canonical_raw_id, override_patch)

    def deliveries(self, after: str | None = None, tenant_id: str | None = None,
                   limit: int = 1000, wait: float = 0) -> dict:
        """The outbox after the cursor ``after``, in delivery order, as ``GET
        /v1/deliveries`` (``workbench.feed``): ``{"items", "next_cursor"}``."""
        after_id, tenant_id, limit, wait = feed.check_request(after, tenant_id, limit, wait)
        return feed.follow(self.store, after_id, tenant_id, limit, wait)

    def audit(self, exception_id: str | None = None, actor: str | None = None,
              tenant_id: str | None = None, limit: int = 200) -> list[dict]:
        """Audit entries, newest first."""
        ex_id = None
        if exception_id not in (None, ""):
            ex_id = parse_id(exception_id)
            if ex_id is None:
                return []
        with self.store.read() as db:
            return db.audit_entries(ex_id, actor, tenant_id, limit)

    def types(self, tenant_id: str | None = None) -> list[dict]:
        """The allowlist (global entries have ``tenant_id`` None)."""
        with self.store.read() as db:
            return db.allowed_types(tenant_id)

    def snapshots(self, since: str | None = None) -> list[dict]:
        """Recorded health snapshots, oldest first."""
        with self.store.read() as db:
            return db.snapshot_rows(since)

    # ---- decisions ------------------------------------------------------------------
    def resolve(self, exception_id: str, action: str = "", actor: str = "",
                resolution_notes: str = "", canonical_raw_id: str | None = None,
                override_patch: Any = None) -> dict:
        """Resolve one open exception; returns the updated exception."""
        with self.store.write() as db:
            return foureyes.resolve(db, exception_id, action, actor, resolution_notes,
                                    canonical_raw_id, override_patch)

    def resolve_many(self, ids: list[str] | None = None, filter: dict | None = None,
                     action: str = "", actor: str = "", resolution_notes: str = "",
                     canonical_raw_id: str | None = None, override_patch: Any = None) -> dict:
        """One decision for many open exceptions: ``{"results": [...]}``, one per item."""
        resolve.require_text("actor", actor)
        resolve.require_text("resolution_notes", resolution_notes)
        resolve.parse_action(action)
        targets = self._bulk_targets(ids, filter)
        decision = {"action": action, "actor": actor, "resolution_notes": resolution_notes,
                    "canonical_raw_id": canonical_raw_id, "override_patch": override_patch}
        return {"results": bulk.resolve_all(self.store, targets, decision)}

    def _bulk_targets(self, ids: list[str] | None, filter: dict | None) -> list[str]:
        if (ids is None) == (filter is None):
            raise InvalidRequest("give either ids or filter")
        if ids is not None:
            if not isinstance(ids, list):
                raise InvalidRequest("ids must be a list")
            return [str(i) for i in ids]
        allowed = {"tenant_id", "reason_code", "source", "idempotency_key", "status", "group"}
        if not isinstance(filter, dict) or set(filter) - allowed:
            raise InvalidRequest(f"filter may only use {', '.join(sorted(allowed))}")
        f = dict(filter)
        f["status"] = "open"
        page = self.list_exceptions(limit=None, **f)
        return [e["exception_id"] for e in page["items"]]

    def reopen(self, exception_id: str, actor: str = "", resolution_notes: str = "") -> dict:
        """Reopen a resolved exception (status open, key quarantined)."""
        with self.store.write() as db:
            return resolve.reopen_one(db, exception_id, actor, resolution_notes)

    def add_type(self, event_type: str, tenant_id: str | None = None, actor: str = "",
                 notes: str | None = None) -> dict:
        """Allow an event type globally or for one tenant (audited)."""
        with self.store.write() as db:
            return allowlist.add_type(db, event_type, tenant_id, actor, notes)

    def remove_type(self, event_type: str, tenant_id: str | None = None, actor: str = "",
                    notes: str | None = None) -> dict:
        """Remove an allowlist entry (audited)."""
        with self.store.write() as db:
            return allowlist.remove_type(db, event_type, tenant_id, actor, notes)

    def record_snapshot(self) -> dict:
        """Record a health snapshot for the trend; returns it."""
        with self.store.write() as db:
            return health_mod.record_snapshot(db)

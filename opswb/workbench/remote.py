"""The remote workbench: SPEC §12's Python API over an ``opswb serve`` URL (SPEC §9).

``opswb.connect("http://…", token=…)`` returns this class. It has the methods and return
types of ``LocalWorkbench`` and raises the same errors, chosen by status code. Files are
sent in batches whose ``Opswb-Batch-Id`` is ``<sha256 of the file>:<offset>``, so running
the same ingest again after a failure stores nothing twice (SPEC §10).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import orjson

from opswb.core.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    LocalOnly,
    NotFound,
    OpswbError,
    RemoteError,
    StoreBusy,
    Unauthorized,
)
from opswb.core.fingerprint import loads
from opswb.core.models import add_summaries, empty_summary
from opswb.core.strictjson import split_elements
from opswb.engine.readers import (
    csv_records,
    dataframe_records,
    parquet_records,
    source_kind,
)
from opswb.engine.readers import record_envelope as _record_element
from opswb.workbench.protocol import Progress
from opswb.workbench.remote_identity import RemoteIdentity

if TYPE_CHECKING:
    import pandas as pd

BATCH_ROWS = 10_000
BATCH_BYTES = 8 * 1024 * 1024  # well under the server's 64 MiB limit, even with 1 MiB events
DEFAULT_PAGE = 50
_ERRORS: dict[int, type[OpswbError]] = {
    401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 422: InvalidRequest,
    503: StoreBusy,
}


def _json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, separators=(",", ":")).encode()


class RemoteWorkbench(RemoteIdentity):
    """The workbench over an ``opswb serve`` URL; same methods as ``LocalWorkbench``."""

    remote = True

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self.db = self.url
        self.token = token or os.environ.get("OPSWB_API_TOKEN") or ""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __repr__(self) -> str:
        return f"RemoteWorkbench({self.url!r})"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    # ---- transport --------------------------------------------------------------------
    def _call(self, method: str, path: str, *, params: dict | None = None,
              body: Any = None, content: bytes | None = None,
              headers: dict | None = None, timeout: Any = httpx.USE_CLIENT_DEFAULT) -> Any:
        if params:
            params = {k: v for k, v in params.items() if v is not None}
        if body is not None:
            content = _json_bytes(body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            r = self._http.request(method, path, params=params, content=content,
                                   headers=headers, timeout=timeout)
        except httpx.HTTPError as e:
            raise RemoteError(f"cannot reach the opswb server at {self.url}: {e}") from e
        if r.status_code < 300:
            return loads(r.content)
        try:
            message = loads(r.content).get("error") or r.text
        except (ValueError, AttributeError):
            message = r.text.strip()[:300] or r.reason_phrase
        if r.status_code == 401:
            message += f" (server {self.url}; set OPSWB_API_TOKEN or pass token=)"
        raise _ERRORS.get(r.status_code, RemoteError)(
            message if r.status_code in _ERRORS else f"HTTP {r.status_code}: {message}")

    @staticmethod
    def _id(value: Any) -> str:
        """``value`` as one path segment, every byte of it kept: the server answers for
        exactly this string (``"01"`` is not ``"1"``). Dots are escaped too, or ``..``
        would be resolved away by the URL and reach another route."""
        text = str(value)
        if not text:
            raise NotFound("no exception ''")
        return quote(text, safe="").replace(".", "%2E")

    # ---- ingest -----------------------------------------------------------------------
    def init(self) -> dict:
        """The server's store is created when it starts; returns health."""
        return self.health()

    def ingest(self, source: Any, on_progress: Progress | None = None) -> dict:
        """Ingest a path (or paths), a DataFrame or an iterable of events (§10 summary)."""
        kind = source_kind(source)
        if kind == "path":
            return self._ingest_file(Path(source), on_progress)
        if kind == "paths":
            total = empty_summary()
            for p in source:
                add_summaries(total, self._ingest_file(Path(p), on_progress))
            return total
        if kind == "dataframe":
            records = dataframe_records(source)
            return self._ingest_elements(map(_record_element, records), on_progress)
        if kind == "event":  # the §10 summary, as a local ingest answers
            return add_summaries(empty_summary(), self.ingest_batch([source]))
        return self._ingest_elements(source, on_progress)

    def ingest_batch(self, elements: list, batch_id: str | None = None) -> dict:
        """Ingest one batch of elements atomically, as ``POST /v1/events``: the §10
        summary plus ``results``, one per element. A batch id stored before answers its
        first results again if the body is the same, else ``Conflict``."""
        return self._post_events(_json_bytes(list(elements)), "application/json", batch_id)

    def ingest_json(self, body: bytes, batch_id: str | None = None) -> dict:
        """Ingest a JSON body (an array or one object) as sent, as ``ingest_ndjson``."""
        return self._post_events(body, "application/json", batch_id)

    def ingest_ndjson(self, body: bytes, batch_id: str | None = None) -> dict:
        """Ingest an NDJSON body atomically (each line kept exactly as received), as
        ``ingest_batch``; a stored batch id is compared by the body's exact bytes."""
        return self._post_events(body, "application/x-ndjson", batch_id)

    def _post_events(self, body: bytes, kind: str, batch_id: str | None) -> dict:
        headers = {"Content-Type": kind}
        if batch_id:
            headers["Opswb-Batch-Id"] = batch_id
        return self._call("POST", "/v1/events", content=body, headers=headers)

    def _ingest_elements(self, elements: Iterable[Any], on_progress: Progress | None) -> dict:
        total = empty_summary()
        for _, body, nbytes in _element_batches(elements):
            add_summaries(total, self._post_events(body, "application/json", None))
            if on_progress:
                on_progress(total["received"], nbytes)
        return total

    def _ingest_file(self, path: Path, on_progress: Progress | None) -> dict:
        from opswb.engine.readers import file_hash, file_kind

        if not path.is_file():
            raise InvalidRequest(f"no such file: {path}")
        digest = file_hash(path)
        kind = file_kind(path)
        batches = _jsonl_batches(path) if kind == "jsonl" else _element_batches(
            _file_elements(path, kind))
        ctype = "application/x-ndjson" if kind == "jsonl" else "application/json"
        total = empty_summary()
        sent = skipped = 0
        for offset, body, nbytes in batches:
            part = self._post_events(body, ctype, f"{digest}:{offset}")
            sent += 1
            skipped += bool(part["skipped_files"])
            part["skipped_files"] = []
            add_summaries(total, part)
            if on_progress:
                on_progress(total["received"], nbytes)
        if sent and skipped == sent:
            total["skipped_files"].append(str(path))
        return total

    # ---- reading ----------------------------------------------------------------------
    def health(self) -> dict:
        """SPEC §8 figures."""
        return self._call("GET", "/v1/health")

    def list_exceptions(self, status: str | None = "open", tenant_id: str | None = None,
                        reason_code: str | None = None, source: str | None = None,
                        idempotency_key: str | None = None, limit: int | None = DEFAULT_PAGE,
                        cursor: str | None = None, group: str | None = None,
                        assignee: str | None = None, sort: str | None = None,
                        q: str | None = None, pending: bool | None = None) -> dict:
        """One page, oldest first unless ``sort`` says otherwise: ``{"items": [...],
        "next_cursor": str | None}``; ``group``: a failure group's id (``groups()``);
        ``assignee``: who claimed them; ``q``: a substring of the key or the source."""
        params = {"status": status if status not in (None, "") else "all",
                  "tenant_id": tenant_id, "reason_code": reason_code, "source": source,
                  "idempotency_key": idempotency_key, "cursor": cursor or None,
                  "group": group or None, "assignee": assignee or None,
                  "sort": sort or None, "q": q or None,
                  "pending": None if pending is None else str(bool(pending)).lower()}
        if limit is not None:
            return self._call("GET", "/v1/exceptions", params={**params, "limit": limit})
        items: list[dict] = []  # no limit: every page
        while True:
            page = self._call("GET", "/v1/exceptions", params={**params, "limit": 10_000})
            items += page["items"]
            if not page["next_cursor"]:
                return {"items": items, "next_cursor": None}
            params["cursor"] = page["next_cursor"]

    def exceptions(self, status: str | None = "open", tenant_id: str | None = None,
                   reason_code: str | None = None, source: str | None = None,
                   idempotency_key: str | None = None,
                   limit: int | None = None, group: str | None = None) -> pd.DataFrame:
        """Exceptions as a pandas DataFrame, oldest first."""
        import pandas as pd

        from opswb.core.records import EXCEPTION_FIELDS

        page = self.list_exceptions(status, tenant_id, reason_code, source, idempotency_key,
                                    limit=limit, group=group)
        return pd.DataFrame(page["items"], columns=list(EXCEPTION_FIELDS))

    def groups(self, status: str | None = "open", tenant_id: str | None = None,
               reason_code: str | None = None, limit: int = DEFAULT_PAGE,
               cursor: str | None = None) -> dict:
        """Failure groups, largest first: ``{"items", "next_cursor"}`` (SPEC §9)."""
        return self._call("GET", "/v1/exceptions/groups", params={
            "status": status if status not in (None, "") else "all",
            "tenant_id": tenant_id or None, "reason_code": reason_code or None,
            "limit": limit, "cursor": cursor or None})

    def exception(self, exception_id: str) -> dict:
        """The detail of one exception, as ``GET /v1/exceptions/{id}``."""
        return self._call("GET", f"/v1/exceptions/{self._id(exception_id)}")

    def key(self, tenant_id: str, idempotency_key: str) -> dict:
        """One key: its ``events_processed`` record, arrivals and deliveries."""
        return self._call("GET", "/v1/keys", params={"tenant_id": tenant_id,
                                                     "idempotency_key": idempotency_key})

    def preview(self, exception_id: str, canonical_raw_id: str | None = None,
                override_patch: Any = None) -> dict:
        """What ``override_and_replay`` would deliver, validated; writes nothing."""
        return self._call("POST", f"/v1/exceptions/{self._id(exception_id)}/preview",
                          body=_decision(canonical_raw_id=canonical_raw_id,
                                         override_patch=override_patch))

    def deliveries(self, after: str | None = None, tenant_id: str | None = None,
                   limit: int = 1000, wait: float = 0) -> dict:
        """The outbox after the cursor ``after``, in delivery order, as ``GET
        /v1/deliveries``: ``{"items", "next_cursor"}``. A long poll (``wait``) gets a
        read time-out that outlasts it."""
        params = {"after": None if after in (None, "") else str(after),
                  "tenant_id": tenant_id or None, "limit": limit, "wait": wait or None}
        timeout: Any = httpx.USE_CLIENT_DEFAULT
        read = self._http.timeout.read
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0 \
                and read is not None:  # (no read time-out at all: nothing to extend)
            timeout = read + min(float(wait), 30.0)
        return self._call("GET", "/v1/deliveries", params=params, timeout=timeout)

    def audit(self, exception_id: str | None = None, actor: str | None = None,
              tenant_id: str | None = None, limit: int = 200) -> list[dict]:
        """Audit entries, newest first."""
        return self._call("GET", "/v1/audit", params={
            "exception_id": exception_id or None, "actor": actor or None,
            "tenant_id": tenant_id or None, "limit": limit})["items"]

    def types(self, tenant_id: str | None = None) -> list[dict]:
        """The allowlist (global entries have ``tenant_id`` None)."""
        return self._call("GET", "/v1/types", params={"tenant_id": tenant_id or None})["items"]

    def snapshots(self, since: str | None = None) -> list[dict]:
        """Recorded health snapshots, oldest first."""
        return self._call("GET", "/v1/health/snapshots",
                          params={"since": since or None})["items"]

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        """Raw SQL needs the store file itself: not available over a serve URL."""
        raise LocalOnly(_local_only("sql()", self.url))

    @property
    def views(self):
        """The analyst views read the store file itself: not available over a serve URL."""
        raise LocalOnly(_local_only("views", self.url))

    # ---- decisions --------------------------------------------------------------------
    def resolve(self, exception_id: str, action: str = "", actor: str = "",
                resolution_notes: str = "", canonical_raw_id: str | None = None,
                override_patch: Any = None) -> dict:
        """Resolve one open exception; returns the updated exception."""
        return self._call("POST", f"/v1/exceptions/{self._id(exception_id)}/resolve",
                          body=_decision(action, actor, resolution_notes, canonical_raw_id,
                                         override_patch))

    def resolve_many(self, ids: list[str] | None = None, filter: dict | None = None,
                     action: str = "", actor: str = "", resolution_notes: str = "",
                     canonical_raw_id: str | None = None, override_patch: Any = None) -> dict:
        """One decision for many open exceptions: ``{"results": [...]}``, one per item."""
        body = _decision(action, actor, resolution_notes, canonical_raw_id, override_patch)
        if ids is not None:
            body["ids"] = [str(i) for i in ids] if isinstance(ids, (list, tuple)) else ids
        if filter is not None:
            body["filter"] = filter
        # The server commits a large bulk in batches and answers when all are done.
        return self._call("POST", "/v1/exceptions/resolve", body=body, timeout=None)

    def reopen(self, exception_id: str, actor: str = "", resolution_notes: str = "") -> dict:
        """Reopen a resolved exception (status open, key quarantined)."""
        return self._call("POST", f"/v1/exceptions/{self._id(exception_id)}/reopen",
                          body={"actor": actor, "resolution_notes": resolution_notes})

    def add_type(self, event_type: str, tenant_id: str | None = None, actor: str = "",
                 notes: str | None = None) -> dict:
        """Allow an event type globally or for one tenant (audited)."""
        return self._call("POST", "/v1/types", body={
            "event_type": event_type, "tenant_id": tenant_id or None, "actor": actor,
            "notes": notes})

    def remove_type(self, event_type: str, tenant_id: str | None = None, actor: str = "",
                    notes: str | None = None) -> dict:
        """Remove an allowlist entry (audited)."""
        return self._call("DELETE", "/v1/types", params={
            "event_type": event_type, "tenant_id": tenant_id or None, "actor": actor,
            "notes": notes})

    def record_snapshot(self) -> dict:
        """Record a health snapshot for the trend; returns it."""
        return self._call("POST", "/v1/health/snapshots")


def _local_only(what: str, url: str) -> str:
    return (f"{what} reads the DuckDB file directly and is local-only; {url} is a serve "
            "URL. Use it on the machine that holds the file (with the server stopped), or "
            "use the workbench methods, which work over the URL too.")


def _decision(action: Any = None, actor: Any = None, resolution_notes: Any = None,
              canonical_raw_id: Any = None, override_patch: Any = None) -> dict:
    body: dict[str, Any] = {}
    if action is not None:
        body.update(action=action, actor=actor, resolution_notes=resolution_notes)
    if canonical_raw_id not in (None, ""):
        body["canonical_raw_id"] = str(canonical_raw_id)
    if isinstance(override_patch, str) and override_patch.strip():
        try:  # the local workbench takes a patch as JSON text too
            override_patch = loads(override_patch)
        except ValueError as e:
            raise InvalidRequest(f"override_patch is not JSON: {e}") from None
    if override_patch not in (None, "", {}):
        body["override_patch"] = override_patch
    return body


def _jsonl_batches(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """(byte offset, NDJSON body, bytes) per batch; lines are sent exactly as stored."""
    with open(path, "rb") as f:
        start = offset = 0
        lines: list[bytes] = []
        size = 0
        for line in f:
            if not lines:
                start = offset
            offset += len(line)
            lines.append(line if line.endswith(b"\n") else line + b"\n")
            size += len(line)
            if len(lines) >= BATCH_ROWS or size >= BATCH_BYTES:
                yield start, b"".join(lines), size
                lines, size = [], 0
        if lines:
            yield start, b"".join(lines), size


def _element_batches(elements: Iterable[Any]) -> Iterator[tuple[int, bytes, int]]:
    """(element offset, JSON array body, bytes) per batch."""
    start = 0
    parts: list[bytes] = []
    size = 0
    for pos, el in enumerate(elements):
        if not parts:
            start = pos
        part = el if isinstance(el, bytes) else _json_bytes(el)  # bytes: an element's text
        parts.append(part)
        size += len(part) + 1
        if len(parts) >= BATCH_ROWS or size >= BATCH_BYTES:
            yield start, b"[" + b",".join(parts) + b"]", size
            parts, size = [], 0
    if parts:
        yield start, b"[" + b",".join(parts) + b"]", size


def _file_elements(path: Path, kind: str) -> Iterator[Any]:
    """The elements of a JSON array, CSV or Parquet file, as a local ingest reads them: a
    JSON array's elements as their own bytes (sent exactly as stored), rows as envelopes."""
    if kind == "json":
        yield from split_elements(path.read_bytes())
    elif kind == "csv":
        yield from map(_record_element, csv_records(path))
    else:
        yield from map(_record_element, parquet_records(path))

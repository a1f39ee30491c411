"""The workbench inside ``opswb serve``: the local workbench over a held store.

Embedded mode opens the store per call (SPEC §13); the server owns it instead, so it
opens it once (``store_for(..., held=True)``) and closes it at shutdown. HTTP batches go
through one writer that commits them in groups (``engine.group_commit``): each request
is parsed on its own thread, queued, and answered after the commit that holds it.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future

from opswb.core.fingerprint import dump_bytes
from opswb.engine.group_commit import GroupCommitter
from opswb.store import store_for
from opswb.workbench.local import LocalWorkbench


class ServedWorkbench(LocalWorkbench):
    """A ``LocalWorkbench`` over a store held for the server's lifetime, whose HTTP
    batches are committed in groups."""

    def __init__(self, db: str, busy_timeout: float | None = None):
        super().__init__(store=store_for(db, busy_timeout, held=True),
                         busy_timeout=busy_timeout)
        self.writer = GroupCommitter(self.store)

    def close(self) -> None:
        """Commit what is queued, stop the writer, let go of the store."""
        self.writer.close()
        super().close()

    # ---- batches, queued: the future holds the answer after its commit ----------------
    def submit_json(self, body: bytes, batch_id: str | None = None) -> Future:
        """Queue a JSON request body (see ``ingest_json``)."""
        from opswb.engine.readers import read_json_text

        return self._submit(read_json_text(body), body, batch_id)

    def submit_ndjson(self, body: bytes, batch_id: str | None = None) -> Future:
        """Queue an NDJSON request body (see ``ingest_ndjson``)."""
        from opswb.engine.readers import read_ndjson_text

        return self._submit(read_ndjson_text(body), body, batch_id)

    def _submit(self, rows: list[tuple], body: bytes, batch_id: str | None) -> Future:
        digest = hashlib.sha256(body).hexdigest() if batch_id is not None else None
        return self.writer.submit(rows, batch_id, digest, len(body))

    # ---- the same, waited for ---------------------------------------------------------
    def ingest_json(self, body: bytes, batch_id: str | None = None) -> dict:
        return self.submit_json(body, batch_id).result()

    def ingest_ndjson(self, body: bytes, batch_id: str | None = None) -> dict:
        return self.submit_ndjson(body, batch_id).result()

    def ingest_batch(self, elements: list, batch_id: str | None = None) -> dict:
        from opswb.core.envelope import stage_element

        elements = list(elements)
        body = dump_bytes(elements)
        digest = hashlib.sha256(body).hexdigest() if batch_id is not None else None
        rows = [stage_element(e) for e in elements]
        return self.writer.submit(rows, batch_id, digest, len(body)).result()

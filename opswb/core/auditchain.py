"""The audit trail's hash chain (SPEC §15): what an entry's hash is computed over.

Each entry's ``entry_hash`` is the sha256 (hex) of the previous entry's hash, a newline,
and the entry's canonical form: a JSON array of its fields in ``CHAINED`` order (ids as
integers, the time as integer microseconds since the epoch, text as text, absent as
null), compact, non-ASCII kept. The store writes it in ``write_audit``,
in the transaction of the entry; ``opswb audit verify`` recomputes it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

CHAINED = ("audit_id", "at_us", "actor", "action", "exception_id", "tenant_id",
           "idempotency_key", "state_before", "state_after", "notes", "canonical_raw_id",
           "override_patch", "details")
_INTS = {"audit_id", "at_us", "exception_id", "canonical_raw_id"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(at: datetime) -> int:
    """``at`` (timezone-aware) as integer microseconds since the epoch."""
    return (at - _EPOCH) // timedelta(microseconds=1)


def _value(name: str, value: Any) -> Any:
    if value is None:
        return None
    return int(value) if name in _INTS else str(value)


def canonical(entry: dict) -> str:
    """The canonical form of an entry (a dict with the ``CHAINED`` names)."""
    return json.dumps([_value(n, entry.get(n)) for n in CHAINED], ensure_ascii=False,
                      separators=(",", ":"))


def entry_hash(entry: dict, prev_hash: str | None) -> str:
    """The chained hash of ``entry`` after an entry whose hash is ``prev_hash``."""
    text = (prev_hash or "") + "\n" + canonical(entry)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

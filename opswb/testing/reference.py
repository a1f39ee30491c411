"""An independent, row-by-row model of SPEC §4/§5 to check the engine's counts against.

Deliberately naive (a dict of keys, one event at a time) and sharing no code with the
engine, so agreement between the two means something.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opswb.testing.synth import ALLOWLIST_CSV, BUCKETS


def load_allowlist(path: str | Path = ALLOWLIST_CSV) -> set[tuple[str, str]]:
    """``{(tenant_id, event_type)}`` from the allowlist CSV (tenant ``""`` = global)."""
    with open(path, newline="", encoding="utf-8") as f:
        return {((row.get("tenant_id") or "").strip(), row["event_type"].strip())
                for row in csv.DictReader(f)}


def _canon(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {k: _canon(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_canon(x) for x in v]
    return v


def reference_summary(lines: Iterable[bytes | str] | str | Path,
                      allowlist: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """Apply §5 row by row to JSON Lines (a path or lines) in an empty store: the §10
    summary plus ``keys`` (per state) and ``reasons`` (exceptions opened, by reason)."""
    allow = load_allowlist() if allowlist is None else allowlist
    if isinstance(lines, (str, Path)):
        with open(lines, "rb") as f:
            lines = [ln for ln in f.read().split(b"\n") if ln.strip()]
    keys: dict[tuple[str, str], tuple[str, set[str]]] = {}
    out: dict[str, Any] = dict.fromkeys(("received",) + BUCKETS, 0)
    reasons = dict.fromkeys(("IDEMPOTENCY_CONFLICT", "UNKNOWN_EVENT_TYPE", "INVALID_EVENT"), 0)
    for line in lines:
        out["received"] += 1
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        ok = isinstance(obj, dict) and isinstance(obj.get("payload"), dict) and all(
            isinstance(obj.get(f), str) and obj[f] for f in
            ("tenant_id", "idempotency_key", "event_type"))
        if not ok:
            out["exceptions_opened"] += 1
            reasons["INVALID_EVENT"] += 1
            continue
        fp = json.dumps(_canon({"event_type": obj["event_type"], "payload": obj["payload"]}),
                        sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        k = (obj["tenant_id"], obj["idempotency_key"])
        allowed = ("", obj["event_type"]) in allow or (k[0], obj["event_type"]) in allow
        state = keys.get(k)
        if state is None:
            keys[k] = ("processed" if allowed else "quarantined", {fp})
            out["processed" if allowed else "exceptions_opened"] += 1
            if not allowed:
                reasons["UNKNOWN_EVENT_TYPE"] += 1
        elif state[0] == "quarantined":
            out["attached"] += 1
        elif fp in state[1]:
            out["duplicates"] += 1
        else:
            keys[k] = ("quarantined", state[1])
            out["exceptions_opened"] += 1
            reasons["IDEMPOTENCY_CONFLICT"] += 1
    states = [s for s, _ in keys.values()]
    out["skipped_files"] = []
    out["keys"] = {s: states.count(s) for s in ("processed", "quarantined", "ignored")}
    out["reasons"] = reasons
    return out



"""What a bulk resolution would do, before it does it (issue 17's dry run).

Works over any workbench (``protocol.Workbench``) and writes nothing: the CLI shows it
for ``resolve --dry-run`` and before it asks for confirmation, and the console can show
the same count and sample before a group decision.
"""

from __future__ import annotations

from typing import Any

from opswb.core.errors import InvalidRequest, OpswbError
from opswb.engine.resolutions import parse_action
from opswb.workbench.protocol import Workbench

SAMPLE = 5
FILTER_KEYS = ("tenant_id", "reason_code", "source", "idempotency_key", "group")


def bulk_plan(wb: Workbench, ids: list[str] | None = None, filter: dict | None = None,
              action: str = "", canonical_raw_id: str | None = None,
              override_patch: Any = None, sample: int = SAMPLE) -> dict:
    """``{"action", "count", "sample": [...]}``: how many open exceptions the decision
    would apply to and, for the first ``sample`` of them, what would become of each
    (``would`` is ``resolve`` or ``refuse``, with the ``error``; a replay's ``event``)."""
    parse_action(action)
    if (ids is None) == (filter is None):
        raise InvalidRequest("give either ids or filter")
    if filter is not None:
        bad = sorted(set(filter) - set(FILTER_KEYS))
        if bad:
            raise InvalidRequest(f"filter may only use {', '.join(FILTER_KEYS)}")
        items = wb.list_exceptions(status="open", limit=None, **filter)["items"]
        count, targets = len(items), items[:sample]
    else:
        count, targets = len(ids), [_exception_or_none(wb, i) for i in ids[:sample]]
    return {"action": action, "count": count,
            "sample": [_would(wb, t, action, canonical_raw_id, override_patch)
                       for t in targets]}


def _exception_or_none(wb: Workbench, exception_id: str) -> dict:
    try:
        return wb.exception(exception_id)
    except OpswbError as e:
        return {"exception_id": str(exception_id), "error": str(e)}


def _would(wb: Workbench, ex: dict, action: str, canonical_raw_id: str | None,
           override_patch: Any) -> dict:
    out = {k: ex.get(k) for k in ("exception_id", "tenant_id", "idempotency_key",
                                  "reason_code", "group_id")}
    if ex.get("error"):
        return {**out, "would": "refuse", "error": ex["error"]}
    if ex.get("status") != "open":
        return {**out, "would": "refuse", "error": f"exception {ex['exception_id']} is not open"}
    if action != "override_and_replay":
        return {**out, "would": "resolve"}
    preview = wb.preview(ex["exception_id"], canonical_raw_id, override_patch)
    if not preview["valid"]:
        return {**out, "would": "refuse", "error": preview["error"]}
    return {**out, "would": "resolve", "event": preview["event"]}

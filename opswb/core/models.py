"""States, reason codes and actions as types (the pinned names of SPEC §5-§7)."""

from __future__ import annotations

from enum import StrEnum


class KeyState(StrEnum):
    """State of one (tenant_id, idempotency_key) record."""

    PROCESSED = "processed"
    QUARANTINED = "quarantined"
    IGNORED = "ignored"


class ReasonCode(StrEnum):
    """Why an exception was opened."""

    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
    INVALID_EVENT = "INVALID_EVENT"


class Status(StrEnum):
    """Status of an exception."""

    OPEN = "open"
    RESOLVED = "resolved"


class Action(StrEnum):
    """Resolution actions (reopen is recorded in the audit trail too)."""

    MARK_RESOLVED_NO_REPLAY = "mark_resolved_no_replay"
    OVERRIDE_AND_REPLAY = "override_and_replay"


class Role(StrEnum):
    """What a token may do (SPEC §15), each role everything the one before it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


SUMMARY_KEYS = ("received", "processed", "duplicates", "exceptions_opened", "attached")


def empty_summary() -> dict:
    """A §10 ingest summary with every count at zero."""
    summary: dict = {k: 0 for k in SUMMARY_KEYS}
    summary["skipped_files"] = []
    return summary


def add_summaries(total: dict, part: dict) -> dict:
    """Add ``part`` into ``total`` (in place) and return it."""
    for k in SUMMARY_KEYS:
        total[k] += part.get(k, 0)
    total["skipped_files"].extend(part.get("skipped_files", []))
    return total

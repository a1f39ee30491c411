"""Request and response models of the /v1 HTTP API (SPEC §9), for validation and OpenAPI.

Request bodies are validated by these models (unknown members refused, so a typo such
as ``notes`` for ``resolution_notes`` is a 422, not a silent default). Response models
document the answers; the engine's dicts are sent as they are, and the fuzz test checks
that they conform.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opswb.core.models import Action


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---- requests --------------------------------------------------------------------------

class ResolveBody(_In):
    """One resolution (SPEC §7)."""

    action: Action
    actor: str | None = Field(
        None, description="the caller's token name (SPEC §15): leave it out, or give the "
        "same name; another name is refused (422)")
    resolution_notes: str
    canonical_raw_id: str | None = Field(
        None, description="the arrival to replay (default: the exception's raw_id); \"last\""
        " replays each conflict's LAST")
    override_patch: dict[str, Any] | None = Field(
        None, description="RFC 7396 merge patch over event_type, payload, source, occurred_at")


class BulkFilter(_In):
    """Which open exceptions a bulk resolution applies to."""

    tenant_id: str | None = None
    reason_code: str | None = None
    source: str | None = None
    idempotency_key: str | None = None
    group: str | None = Field(None, description="a failure group's group_id")


class BulkResolveBody(ResolveBody):
    """One decision for many open exceptions: give ``ids`` or ``filter``."""

    ids: list[str] | None = None
    filter: BulkFilter | None = None


class ReopenBody(_In):
    """Reopen a resolved exception."""

    actor: str | None = Field(
        None, description="the caller's token name (SPEC §15): leave it out, or give the "
        "same name; another name is refused (422)")
    resolution_notes: str


class PreviewBody(_In):
    """What override_and_replay would deliver (writes nothing)."""

    canonical_raw_id: str | None = None
    override_patch: dict[str, Any] | None = None


class TypeBody(_In):
    """Allow an event type globally (no tenant) or for one tenant."""

    event_type: str
    tenant_id: str | None = None
    actor: str | None = Field(
        None, description="the caller's token name (SPEC §15): leave it out, or give the "
        "same name; another name is refused (422)")
    notes: str | None = None


# ---- responses -------------------------------------------------------------------------

class ErrorBody(BaseModel):
    """Every error answer: a readable message and the status code."""

    error: str
    status: int
    type: str | None = None
    detail: list[dict[str, Any]] | None = None


class KeyStates(BaseModel):
    """Idempotency keys in each state."""

    processed: int
    quarantined: int
    ignored: int


class Health(_Out):
    """SPEC §8 figures (more breakdowns may follow)."""

    exceptions_open: int
    raw_events: int
    idempotency: KeyStates
    deliveries: int = Field(description="deliveries in the outbox (GET /v1/deliveries)")


class ExceptionOut(_Out):
    """An exception (SPEC §6)."""

    exception_id: str
    tenant_id: str | None
    idempotency_key: str | None
    source: str | None
    reason_code: str
    details: Any
    raw_id: str
    status: Literal["open", "resolved"]
    created_at: str
    replay_attempts: int
    action: str | None = None
    actor: str | None = None
    resolution_notes: str | None = None
    canonical_raw_id: str | None = None
    override_patch: Any = None
    resolved_at: str | None = None
    group_id: str | None = Field(None, description="its failure group (GET /v1/exceptions/groups)")
    pending: dict[str, Any] | None = Field(
        None, description="a proposal awaiting approval (SPEC §15): action, proposed_by, "
        "canonical_raw_id, override_patch, resolution_notes, proposed_at")
    assignee: str | None = None


class ExceptionPage(BaseModel):
    """One page of exceptions, oldest first; pass ``next_cursor`` back for the next."""

    items: list[ExceptionOut]
    next_cursor: str | None


class Group(BaseModel):
    """A failure group: exceptions of one reason that share a signature."""

    group_id: str = Field(description="stable and URL-safe; a `group` filter of the queue")
    reason_code: str
    signature: str | list[str] = Field(description=(
        "what the group shares: the unknown event type; the sorted JSON-Pointer paths that "
        "differ between FIRST and LAST (a list); the rule an invalid arrival broke"))
    count: int
    tenants: list[str | None] = Field(description="up to 50, sorted; null: no tenant")
    tenant_count: int
    sources: list[str | None] = Field(description="up to 50, sorted; null: no source")
    source_count: int
    first_seen: str
    last_seen: str
    sample_exception_id: str = Field(description="the group's oldest exception")


class GroupPage(BaseModel):
    """One page of failure groups, largest first; pass ``next_cursor`` back for the next."""

    items: list[Group]
    next_cursor: str | None


class Raw(_Out):
    """A raw arrival (SPEC §3)."""

    raw_id: str
    received_at: str
    text: str
    tenant_id: str | None
    idempotency_key: str | None
    event_type: str | None
    source: str | None
    occurred_at: str | None
    payload: Any


class KeyRecord(_Out):
    """The key's record, ``events_processed`` (SPEC §5)."""

    tenant_id: str
    idempotency_key: str
    state: Literal["processed", "quarantined", "ignored"]
    first_raw_id: str
    last_raw_id: str
    canonical_raw_id: str | None
    canonical_fingerprint: str | None
    arrival_count: int
    delivery_count: int
    adjudicated_fingerprints: list[str]


class Diff(BaseModel):
    """FIRST to LAST over ``{event_type, payload}``, JSON-Pointer paths."""

    changed: list[dict[str, Any]]
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]


class AuditEntry(_Out):
    """One append-only audit entry."""

    audit_id: str
    at: str
    actor: str | None
    action: str
    exception_id: str | None
    tenant_id: str | None
    idempotency_key: str | None
    state_before: str | None
    state_after: str | None
    notes: str | None
    canonical_raw_id: str | None
    override_patch: Any = None
    details: Any = None


class Detail(ExceptionOut):
    """The detail of one exception (SPEC §9)."""

    raw: Raw | None
    events_processed: KeyRecord | None
    first: Raw | None
    last: Raw | None
    diff: Diff | None
    arrivals: list[Raw]
    deliveries: list[dict[str, Any]]
    decisions: list[AuditEntry] = []
    comments: list[dict[str, Any]] = []


class KeyView(BaseModel):
    """One idempotency key with its arrivals and deliveries."""

    events_processed: KeyRecord
    arrivals: list[Raw]
    deliveries: list[dict[str, Any]]


class Delivery(BaseModel):
    """One delivery of the outbox, as downstream consumers read it (SPEC §9)."""

    delivery_id: str
    tenant_id: str
    idempotency_key: str
    event_type: str | None
    payload: Any = Field(description="what was delivered: the arrival's payload, or the "
                                     "patched one of a replay")
    raw_id: str
    replay: bool = Field(description="delivered by a resolution (override_and_replay)")
    exception_id: str | None = Field(description="the exception a replay resolved")
    delivered_at: str


class DeliveryPage(BaseModel):
    """Deliveries in delivery order. Pass ``next_cursor`` back as ``after``: it is never
    null, and on an empty page it is the cursor given, so a follower skips nothing."""

    items: list[Delivery]
    next_cursor: str


class AuditPage(BaseModel):
    """Audit entries, newest first."""

    items: list[AuditEntry]
    next_cursor: str | None


class IngestSummary(BaseModel):
    """SPEC §10: received = processed + duplicates + exceptions_opened + attached."""

    received: int
    processed: int
    duplicates: int
    exceptions_opened: int
    attached: int
    skipped_files: list[str]


class ArrivalResult(BaseModel):
    """What became of one arrival of a ``POST /v1/events`` (SPEC §9): its §5 row.
    ``exception_id`` and ``reason_code`` name the exception it opened or was attached to."""

    raw_id: str
    outcome: Literal["processed", "duplicate", "exception_opened", "attached"]
    exception_id: str | None = None
    reason_code: Literal["IDEMPOTENCY_CONFLICT", "UNKNOWN_EVENT_TYPE",
                         "INVALID_EVENT"] | None = None


class EventsAnswer(IngestSummary):
    """The answer to ``POST /v1/events``: the §10 summary (zero counts for a retried
    ``Opswb-Batch-Id``) and ``results``, one per arrival in input order."""

    results: list[ArrivalResult]


class BulkItem(_Out):
    """The outcome of one item of a bulk resolution."""

    exception_id: str
    status: str
    error: str | None = None


class BulkResults(BaseModel):
    """One outcome per targeted exception."""

    results: list[BulkItem]


class Preview(_Out):
    """A validated replay preview."""

    valid: bool
    error: str | None
    event: Any
    fingerprint: str | None


class TypeEntry(_Out):
    """An allowlist entry; global entries have ``tenant_id`` null."""

    tenant_id: str | None
    event_type: str


class TypePage(BaseModel):
    """The allowlist."""

    items: list[TypeEntry]
    next_cursor: str | None


class TypeChange(BaseModel):
    """The entry after an add or remove."""

    tenant_id: str | None
    event_type: str
    allowed: bool


class Snapshot(_Out):
    """A recorded health snapshot."""

    taken_at: str
    exceptions_open: int
    raw_events: int


class SnapshotPage(BaseModel):
    """Snapshots, oldest first."""

    items: list[Snapshot]
    next_cursor: str | None

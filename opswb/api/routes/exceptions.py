"""The exception queue, one exception's detail, keys, resolutions (SPEC §6, §7, §9)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from opswb.api.gate import JSONOut
from opswb.api.models import (
    BulkResolveBody,
    BulkResults,
    Detail,
    ExceptionOut,
    ExceptionPage,
    GroupPage,
    KeyView,
    Preview,
    PreviewBody,
    ReopenBody,
    ResolveBody,
)
from opswb.api.routes.common import BY_ID, COMMON, ERR, WB, Caller, acting

router = APIRouter()


@router.get("/v1/exceptions", response_model=ExceptionPage, responses=COMMON, tags=["exceptions"])
def list_exceptions(
    wb: WB,
    status: Literal["open", "resolved", "all"] = "open",
    tenant_id: str | None = None,
    reason_code: str | None = None,
    source: str | None = None,
    idempotency_key: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
    cursor: str | None = None,
    group: Annotated[str | None, Query(description="a failure group's group_id")] = None,
    assignee: str | None = None,
    sort: Annotated[str | None, Query(
        description="age (oldest first, the default), tenant, reason or key;"
        " a leading - sorts descending (-age: newest first)")] = None,
    q: Annotated[str | None, Query(
        max_length=200,
        description="a case-insensitive substring of the idempotency key or the source")]
    = None,
    pending: Annotated[bool | None, Query(
        description="true: only those with a four-eyes proposal; false: only without")] = None,
) -> Any:
    """One page of exceptions, oldest first unless ``sort`` says otherwise; ``status``
    defaults to open; ``assignee``: only those claimed by that name; ``tenant_id=(none)``:
    those whose envelope lacked a tenant; ``pending``: with (or without) a proposal. A bad
    ``sort`` is 422."""
    return JSONOut(
        wb.list_exceptions(
            status, tenant_id, reason_code, source, idempotency_key, limit, cursor, group,
            assignee, sort, q, pending,
        )
    )


# Before /v1/exceptions/{exception_id}, or "groups" would be taken for an id.
@router.get(
    "/v1/exceptions/groups", response_model=GroupPage, responses=COMMON, tags=["exceptions"]
)
def list_groups(
    wb: WB,
    status: Literal["open", "resolved", "all"] = "open",
    tenant_id: str | None = None,
    reason_code: Literal["IDEMPOTENCY_CONFLICT", "UNKNOWN_EVENT_TYPE", "INVALID_EVENT"]
    | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> Any:
    """Failure groups: exceptions by reason and what they share (the unknown type; the
    JSON-Pointer paths that differ between FIRST and LAST; the failed rule), largest
    first. A ``group_id`` is a ``group`` filter of the queue and of bulk resolve."""
    return JSONOut(wb.groups(status, tenant_id, reason_code, limit, cursor))


@router.post(
    "/v1/exceptions/resolve", response_model=BulkResults, responses=COMMON, tags=["exceptions"]
)
def resolve_bulk(wb: WB, who: Caller, body: BulkResolveBody) -> Any:
    """One decision for many open exceptions, by ids or by a filter; per-item outcomes."""
    flt = body.filter.model_dump(exclude_none=True) if body.filter is not None else None
    return JSONOut(
        wb.resolve_many(
            ids=body.ids,
            filter=flt,
            action=body.action.value,
            actor=acting(who, body.actor),
            resolution_notes=body.resolution_notes,
            canonical_raw_id=body.canonical_raw_id,
            override_patch=body.override_patch,
        )
    )


@router.get(
    "/v1/exceptions/{exception_id}", response_model=Detail, responses=BY_ID, tags=["exceptions"]
)
def get_exception(wb: WB, exception_id: str) -> Any:
    """The detail: §6 fields, raw, events_processed, first, last, diff, arrivals,
    deliveries."""
    return JSONOut(wb.exception(exception_id))


@router.get("/v1/keys", response_model=KeyView, responses={**COMMON, 404: ERR}, tags=["exceptions"])
def get_key(wb: WB, tenant_id: str, idempotency_key: str) -> Any:
    """One idempotency key: its events_processed record, arrivals and deliveries."""
    return JSONOut(wb.key(tenant_id, idempotency_key))


@router.post(
    "/v1/exceptions/{exception_id}/resolve",
    response_model=ExceptionOut,
    responses={**BY_ID, 409: ERR},
    tags=["exceptions"],
)
def resolve_one(wb: WB, who: Caller, exception_id: str, body: ResolveBody) -> Any:
    """Resolve one open exception; 409 when it is no longer open. Under a four-eyes
    policy an override_and_replay becomes a proposal: the exception stays open with
    ``pending`` (SPEC §15)."""
    return JSONOut(
        wb.resolve(
            exception_id,
            body.action.value,
            acting(who, body.actor),
            body.resolution_notes,
            body.canonical_raw_id,
            body.override_patch,
        )
    )


@router.post(
    "/v1/exceptions/{exception_id}/reopen",
    response_model=ExceptionOut,
    responses={**BY_ID, 409: ERR},
    tags=["exceptions"],
)
def reopen(wb: WB, who: Caller, exception_id: str, body: ReopenBody) -> Any:
    """Reopen a resolved exception (status open, key quarantined)."""
    return JSONOut(wb.reopen(exception_id, acting(who, body.actor), body.resolution_notes))


@router.post(
    "/v1/exceptions/{exception_id}/preview",
    response_model=Preview,
    responses=BY_ID,
    tags=["exceptions"],
)
def preview(wb: WB, exception_id: str, body: PreviewBody | None = None) -> Any:
    """What override_and_replay would deliver, validated; writes nothing."""
    body = body or PreviewBody()
    return JSONOut(wb.preview(exception_id, body.canonical_raw_id, body.override_patch))

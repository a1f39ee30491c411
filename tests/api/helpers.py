"""What the tests against one shared server (``tests/api``) send and read alike."""

from __future__ import annotations

from tests.helpers import ev

P1 = {"amount": 1200, "currency": "EUR", "customer": {"id": "c_19"}}
P2 = {"amount": 1250, "currency": "EUR", "customer": {"id": "c_19"}}
NOTE = {"actor": "ann", "resolution_notes": "checked with billing"}


def post_events(api, events, **headers):
    r = api.post("/v1/events", json=events, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def open_ids(api, tenant, reason=None):
    r = api.get("/v1/exceptions", params={"tenant_id": tenant, "limit": 1000,
                                          **({"reason_code": reason} if reason else {})})
    assert r.status_code == 200, r.text
    return [e["exception_id"] for e in r.json()["items"]]


def conflict(api, tenant, key="K"):
    post_events(api, [ev(key, P1, tenant=tenant), ev(key, P2, tenant=tenant)])
    return open_ids(api, tenant, "IDEMPOTENCY_CONFLICT")[-1]

"""Property-based fuzzing of the /v1 API from its own OpenAPI document (schemathesis).

Runs against the real ``opswb serve`` subprocess of this module. Every response must be
no 5xx, a documented status code and content type, and conform to its schema; requests
that break the schema must get a documented 4xx. Bounded (few examples per operation, no
shrinking deadline) so the whole module stays well under two minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

# negative_data_rejection is left out: it found real gaps once (a bare JSON scalar as an
# events body, unknown and repeated query parameters; test_api now pins those), but it
# also flags query values that only look invalid before serialisation (an array of one
# string) and the Authorization header we add back, so it cannot gate CI reliably.
# Negative cases are still generated: they must get a documented 4xx, never a 5xx.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value) -> bytes:
    """NDJSON bodies: any text; a generated JSON value is sent as one line of it."""
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        value = json.dumps(value)
    return value.encode("utf-8", "surrogatepass")


# The document kept in the repo; test_api checks that the server serves exactly this one.
# (Loaded at collection: schemathesis' lazy fixture loader does not run on pytest 9.)
schema = schemathesis.openapi.from_path(
    Path(__file__).resolve().parents[2] / "docs" / "openapi.json")


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, serve_url):
    url, token = serve_url
    _short_long_polls(case)
    case.call_and_validate(base_url=url, headers={"Authorization": f"Bearer {token}"},
                           checks=CHECKS, timeout=30)


def _short_long_polls(case) -> None:
    """A valid ``wait`` on a caught-up feed waits out its seconds (up to 30): keep the
    generated ones short, so each example costs at most half a second."""
    wait = (case.query or {}).get("wait") if case.path == "/v1/deliveries" else None
    try:
        seconds = float(wait) if isinstance(wait, str | int | float) else None
    except ValueError:
        return
    if seconds is not None and 0.5 < seconds <= 30:
        case.query["wait"] = "0.5"

"""The API tests that share one server (``serve_url``) run against a server over each
store: a DuckDB file and a PostgreSQL database. A test marked ``duckdb_only`` skips the
PostgreSQL server (the reason is in the marker)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.server import Served, ServerProcess


@pytest.fixture(autouse=True)
def _duckdb_only(request):
    marker = request.node.get_closest_marker("duckdb_only")
    callspec = getattr(request.node, "callspec", None)
    if marker is not None and callspec and callspec.params.get("serve_url") == "postgres":
        pytest.skip(f"DuckDB only: {marker.args[0] if marker.args else ''}")


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def serve_url(request, tmp_path_factory) -> Iterator[Served]:
    """A real ``opswb serve`` over a fresh store for this module: ``(url, token)``."""
    d = tmp_path_factory.mktemp("serve")
    if request.param == "postgres":
        cluster = request.getfixturevalue("pg_cluster")
        name = "api_" + uuid.uuid4().hex[:12]
        cluster.admin(f"CREATE DATABASE {name}")
        db = f"{cluster.url}/{name}"
    else:
        db = str(d / "opswb.duckdb")
    server = ServerProcess(db, d / "serve.log")
    try:
        yield server.wait()
    finally:
        server.stop()
        if request.param == "postgres":
            cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

"""The API tests that share one server (``serve_url``) run against a server over each
store: a DuckDB file and a PostgreSQL database. A test marked ``duckdb_only`` skips the
PostgreSQL server (the reason is in the marker)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.people import PeopleAuth
from tests.support.server import Served, ServerProcess


@pytest.fixture(autouse=True)
def _duckdb_only(request):
    marker = request.node.get_closest_marker("duckdb_only")
    callspec = getattr(request.node, "callspec", None)
    if marker is not None and callspec and callspec.params.get("module_store") == "postgres":
        pytest.skip(f"DuckDB only: {marker.args[0] if marker.args else ''}")


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def module_store(request, tmp_path_factory) -> Iterator[str]:
    """A fresh store for this module, on each backend: a DuckDB file path, or a
    ``postgresql://`` URL of a new database of the session's cluster."""
    d = tmp_path_factory.mktemp("store")
    if request.param == "duckdb":
        yield str(d / "opswb.duckdb")
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = "api_" + uuid.uuid4().hex[:12]
    cluster.admin(f"CREATE DATABASE {name}")
    try:
        yield f"{cluster.url}/{name}"
    finally:
        cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def serve_url(module_store, tmp_path_factory) -> Iterator[Served]:
    """A real ``opswb serve`` over a fresh store for this module: ``(url, token)``."""
    server = ServerProcess(module_store, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield server.wait()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api(serve_url):
    """An HTTP client with the server's token; a body naming an actor goes with that
    person's own token (SPEC §15, ``tests/support/people.py``)."""
    url, token = serve_url
    with httpx.Client(base_url=url, auth=PeopleAuth(url, token), timeout=30) as client:
        yield client

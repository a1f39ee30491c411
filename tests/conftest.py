"""Shared fixtures: a fresh store on disk per test, and a clean environment."""

from __future__ import annotations

import pytest

import opswb

pytest_plugins = [
    "tests.support.server",
    "tests.support.browser",
    "tests.support.postgres",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Keep the developer's own store, token and actor out of test results."""
    for var in ("OPSWB_DB", "OPSWB_API_TOKEN", "OPSWB_ACTOR", "OPSWB_BUSY_TIMEOUT",
                "OPSWB_CHUNK_ROWS",
                "OPSWB_MEMORY_LIMIT"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def db_path(tmp_path) -> str:
    """Path of a fresh, migrated DuckDB store in tmp_path."""
    path = str(tmp_path / "opswb.duckdb")
    opswb.connect(path).init()
    return path


@pytest.fixture(params=["duckdb", "postgres"])
def store_url(request, tmp_path) -> str:
    """A fresh, migrated store on each backend: a DuckDB file, or a database of the
    session's PostgreSQL cluster (tests/support/postgres.py). A test marked
    ``duckdb_only`` runs on DuckDB alone (the reason is in the marker)."""
    if request.param == "postgres":
        marker = request.node.get_closest_marker("duckdb_only")
        if marker is not None:
            pytest.skip(f"DuckDB only: {marker.args[0] if marker.args else ''}")
        url = request.getfixturevalue("pg_url")
        opswb.connect(url).init()
        return url
    return request.getfixturevalue("db_path")


@pytest.fixture
def local_wb(db_path):
    """A local workbench over a fresh store."""
    return opswb.connect(db_path)

"""The engine's tests run on every store: DuckDB embedded (``local``) and over HTTP
(``remote``), and PostgreSQL embedded (``postgres``). A test marked ``duckdb_only`` skips
the PostgreSQL run (the reason is in the marker)."""

from __future__ import annotations

import pytest

import opswb


@pytest.fixture(params=["local", "remote", "postgres"])
def wb(request):
    """A workbench over a fresh store."""
    if request.param == "local":
        return opswb.connect(request.getfixturevalue("db_path"))
    if request.param == "remote":
        return request.getfixturevalue("remote_wb")
    marker = request.node.get_closest_marker("duckdb_only")
    if marker is not None:
        pytest.skip(f"DuckDB only: {marker.args[0] if marker.args else ''}")
    url = request.getfixturevalue("pg_url")
    wb = opswb.connect(url)
    wb.init()
    return wb


@pytest.fixture
def local_wb(store_url):
    """A local workbench over a fresh store, on DuckDB and on PostgreSQL."""
    return opswb.connect(store_url)

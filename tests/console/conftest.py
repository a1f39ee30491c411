"""The panels run over every store: DuckDB embedded (``local``) and through ``opswb
serve`` (``remote``), PostgreSQL embedded (``postgres``) and through an ``opswb serve
--db postgresql://…`` of its own (``postgres-remote``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import opswb
from tests.support.people import PeopleWorkbench, mint_people
from tests.support.server import ServerProcess


@pytest.fixture(params=["local", "remote", "postgres", "postgres-remote"])
def wb(request, tmp_path) -> Iterator[Any]:
    """A workbench over a fresh store."""
    if request.param == "local":
        yield opswb.connect(request.getfixturevalue("db_path"))
    elif request.param == "remote":
        yield request.getfixturevalue("remote_wb")
    elif request.param == "postgres":
        wb = opswb.connect(request.getfixturevalue("pg_url"))
        wb.init()
        yield wb
        wb.close()
    else:
        url = request.getfixturevalue("pg_url")
        people = mint_people(url)  # before the server: the setup's audit entries come first
        server = ServerProcess(url, tmp_path / "serve.log", forked=True)
        try:
            served = server.wait()
            wb = PeopleWorkbench(served.url, served.token, people)
            yield wb
            wb.close()
        finally:
            server.stop()

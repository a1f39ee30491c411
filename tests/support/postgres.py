"""A throwaway PostgreSQL cluster for the test session: a real server, never a mock.

``initdb`` into a temp dir owned by ``postgres`` (``runuser -u postgres --`` when the
tests run as root: initdb refuses root), a free loopback port, ``pg_ctl start -w``; torn
down (``pg_ctl stop -m immediate``, the dir removed) when the session ends. Each test that
asks for ``pg_url`` gets a fresh database of its own, dropped after it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One PostgreSQL server in a temp dir, on 127.0.0.1:port, trust auth."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="opswb-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", "postgres", "-E", "UTF8", "--no-sync")
        opts = (f"-p {self.port} -k {self.root} -h 127.0.0.1 -c fsync=off"
                " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts,
                  "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url + "/postgres", autocommit=True) as con:
            con.execute(sql)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's PostgreSQL server (skips when PostgreSQL or psycopg is missing:
    ``make test`` installs both)."""
    pytest.importorskip("psycopg")
    bindir = _bin_dir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (scripts/system-deps.sh installs it)")
    cluster = Cluster(bindir)
    try:
        cluster.start()
    except BaseException:
        shutil.rmtree(cluster.root, ignore_errors=True)
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster) -> Iterator[str]:
    """``postgresql://…`` of a fresh, empty database for this test; dropped after."""
    name = "t_" + uuid.uuid4().hex[:16]
    pg_cluster.admin(f"CREATE DATABASE {name}")
    try:
        yield f"{pg_cluster.url}/{name}"
    finally:
        pg_cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def dump_database(url: str) -> dict:
    """Every row of every table of a PostgreSQL store, ordered (``helpers.dump_store``)."""
    import psycopg

    out = {}
    with psycopg.connect(url) as con:
        tables = [r[0] for r in con.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        for t in tables:
            cur = con.execute(f'SELECT * FROM "{t}" ORDER BY 1, 2')
            names = [d.name for d in cur.description]
            out[t] = sorted((dict(zip(names, r)) for r in cur.fetchall()), key=repr)
    return out

"""Fixtures for serve mode: real ``opswb serve`` subprocesses on free loopback ports.

- ``serve_url``: one server per test module over a fresh store; yields ``(url, token)``
  (the tuple also carries ``.db``, ``.pid`` and ``.log``).
- ``wb``: parametrized ``["local", "remote"]`` (override with ``indirect=True``): a
  workbench over a fresh store, embedded or through a server of its own. Servers for
  ``wb`` come from a pool that starts the next one while the current test runs, so a
  fresh store per test costs little.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import opswb
from tests.support.people import PeopleWorkbench, mint_people

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(db: str, port: int) -> list[str]:
    """``opswb serve`` as the CLI runs it (``python -m opswb.api`` before the CLI exists)."""
    module = "opswb.cli" if importlib.util.find_spec("opswb.cli") else "opswb.api"
    return [sys.executable, "-m", module, "serve", "--db", db, "--host", "127.0.0.1",
            "--port", str(port)]


class Served(tuple):
    """``(url, token)`` of a running server, plus ``db``, ``pid`` and ``log``."""

    url: str
    token: str
    db: str
    pid: int
    log: Path
    people: dict[str, str]


def _serve_forked(db: str, port: int, token: str, log: str) -> None:
    """Body of a pooled server process: log to ``log``, then ``opswb.api.serve``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    for k in [k for k in os.environ if k.startswith("OPSWB_")]:
        del os.environ[k]
    os.environ.update(OPSWB_API_TOKEN=token, OPSWB_LOG_LEVEL="warning")
    from opswb.api import serve

    serve(db, "127.0.0.1", port)


_forkserver = None


def _fork_context():
    """A forkserver that has imported the server once, so each pooled server starts in
    a few milliseconds instead of a second of imports."""
    global _forkserver
    if _forkserver is None:
        _forkserver = multiprocessing.get_context("forkserver")
        _forkserver.set_forkserver_preload(["opswb.api", "opswb.workbench.in_server", "uvicorn",
                                            "tests.support.server"])
    return _forkserver


class ServerProcess:
    """One server over ``db``, started at once, ready on ``wait()``.

    By default it is ``opswb serve`` as a subprocess (the real command line); with
    ``forked=True`` it is ``opswb.api.serve`` in a process forked from a preloaded
    forkserver: the same server code, started cheaply for a fresh store per test.
    """

    def __init__(self, db: str, log: Path, env: dict | None = None, forked: bool = False,
                 generate_token: bool = False, people: dict[str, str] | None = None):
        self.db, self.log = db, log
        self.people = people or {}  # {name: token} already on the store (Served.people)
        self.port = free_port()
        # generate_token: leave OPSWB_API_TOKEN unset and read the one the server prints
        self.token: str | None = None if generate_token else secrets.token_urlsafe(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready = False
        self._log_file = None
        if forked:
            self.proc = _Forked(_fork_context().Process(
                target=_serve_forked, args=(db, self.port, self.token, str(log)), daemon=True))
            return
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("OPSWB_")}
        child_env.update(OPSWB_LOG_LEVEL="warning", **(env or {}))
        if self.token is not None:
            child_env["OPSWB_API_TOKEN"] = self.token
        self._log_file = open(log, "wb")  # noqa: SIM115 - the child writes to it until reap()
        self.proc = subprocess.Popen(serve_command(db, self.port), env=child_env,
                                     stdout=self._log_file, stderr=subprocess.STDOUT)

    def wait(self) -> Served:
        """Block until the server answers /v1/health; fail with its log if it died."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._ready:
            if self.proc.poll() is not None:
                raise RuntimeError(f"opswb serve exited with {self.proc.returncode}:\n"
                                   + self.log.read_text(errors="replace"))
            if self.token is None:
                m = re.search(r"OPSWB_API_TOKEN=(\S+)", self.log.read_text(errors="replace"))
                self.token = m.group(1) if m else None
            try:
                r = httpx.get(self.url + "/v1/health", timeout=2,
                              headers={"Authorization": f"Bearer {self.token}"})
                self._ready = r.status_code == 200
            except httpx.HTTPError:
                pass
            if not self._ready:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("opswb serve did not answer within "
                                       f"{STARTUP_TIMEOUT}s:\n" + self.log.read_text())
                time.sleep(0.05)
        served = Served((self.url, self.token))
        served.url, served.token, served.db = self.url, self.token, self.db
        served.pid, served.log = self.proc.pid, self.log
        served.people = self.people
        return served

    def stop(self, wait: bool = True) -> None:
        """Terminate (SIGTERM: uvicorn shuts down and the store is closed)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        if wait:
            self.reap()

    def reap(self) -> None:
        """Wait for the process to end (kill it if it hangs) and close its log."""
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()


class _Forked:
    """A ``multiprocessing.Process`` with the few ``Popen`` methods ServerProcess uses."""

    def __init__(self, process):
        self.process = process
        process.start()
        self.pid = process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def terminate(self) -> None:
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()

    def wait(self, timeout: float | None = None) -> int | None:
        self.process.join(timeout)
        if self.process.exitcode is None:
            raise subprocess.TimeoutExpired("forked opswb serve", timeout or 0)
        return self.process.exitcode


class ServerPool:
    """Hands out servers over fresh stores, keeping one spare starting in the background.

    Each fresh store is a copy of one made for the session that holds the cast's tokens
    (``tests/support/people.py``): minting them per store would cost a write each."""

    def __init__(self, root: Path):
        self.root = root
        self.count = 0
        self.template = str(root / "template.duckdb")
        self.people = mint_people(self.template)
        self.spare: ServerProcess | None = None
        self.stopping: list[ServerProcess] = []

    def _start(self) -> ServerProcess:
        self.count += 1
        d = self.root / f"s{self.count}"
        d.mkdir()
        shutil.copyfile(self.template, d / "opswb.duckdb")
        return ServerProcess(str(d / "opswb.duckdb"), d / "serve.log", forked=True,
                             people=self.people)

    def take(self) -> ServerProcess:
        server = self.spare or self._start()
        self.spare = self._start()
        return server

    def release(self, server: ServerProcess) -> None:
        server.stop(wait=False)  # let it shut down while the next test runs
        self.stopping.append(server)
        while len(self.stopping) > 2:
            self.stopping.pop(0).reap()

    def close(self) -> None:
        if self.spare is not None:
            self.spare.stop()
        for s in self.stopping:
            s.reap()


@pytest.fixture(scope="session")
def server_pool(tmp_path_factory) -> Iterator[ServerPool]:
    """The session's pool of ``opswb serve`` subprocesses."""
    pool = ServerPool(tmp_path_factory.mktemp("served"))
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def serve_url(tmp_path_factory) -> Iterator[Served]:
    """A real ``opswb serve`` over a fresh store for this module: ``(url, token)``."""
    d = tmp_path_factory.mktemp("serve")
    server = ServerProcess(str(d / "opswb.duckdb"), d / "serve.log")
    try:
        yield server.wait()
    finally:
        server.stop()


@pytest.fixture
def remote_wb(server_pool) -> Iterator[Any]:
    """A remote workbench over a fresh store held by its own server: the bootstrap token,
    and each named actor's calls with that actor's own token (``tests/support/people.py``)."""
    server = server_pool.take()
    try:
        served = server.wait()
        wb = PeopleWorkbench(served.url, served.token, served.people)
        try:
            yield wb
        finally:
            wb.close()
    finally:
        server_pool.release(server)


@pytest.fixture(params=["local", "remote"])
def wb(request):
    """A workbench over a fresh store, embedded (``local``) or over HTTP (``remote``)."""
    if request.param == "local":
        return opswb.connect(request.getfixturevalue("db_path"))
    if request.param == "remote":
        return request.getfixturevalue("remote_wb")
    raise ValueError(f"unknown workbench kind {request.param!r}")


@contextmanager
def served_with_tokens(root: Path, roles: dict[str, str], events: list[Any],
                       approve: str | None = None) -> Iterator[tuple[Served, dict[str, str]]]:
    """A real ``opswb serve`` over a fresh store in ``root`` holding ``events``, with a
    token per ``{name: role}`` (``(served, {name: token})``) and, given ``approve``, a
    global four-eyes policy on that action."""
    server = ServerProcess(str(root / "opswb.duckdb"), root / "serve.log")
    try:
        s = server.wait()
        boot = {"Authorization": f"Bearer {s.token}"}
        tokens = {name: httpx.post(s.url + "/v1/tokens", headers=boot, json={
            "name": name, "role": role}).raise_for_status().json()["token"]
            for name, role in roles.items()}
        httpx.post(s.url + "/v1/events", headers=boot, json=events).raise_for_status()
        if approve:
            httpx.post(s.url + "/v1/policies", headers=boot,
                       json={"approve": approve}).raise_for_status()
        yield s, tokens
    finally:
        server.stop()

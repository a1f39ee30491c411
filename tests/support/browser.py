"""Fixtures for real-browser tests: Debian's Chromium, the console under Voilà, screenshots.

- ``browser_type_launch_args`` (session): pytest-playwright launches /usr/bin/chromium
  (never ``playwright install``).
- ``console_local`` (module): ``opswb console``'s Voilà over a copy of the sample store.
- ``console_remote`` (module): the same console pointed at an ``opswb serve`` URL that
  owns another copy of the store.
- ``open_console(browser, console)``: a new page, waited until the panels are interactive.
- ``shot(page, name)``: a screenshot under ``test-artifacts/console/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest

import opswb
from opswb.console.launch import console_url, start_console, stop_console, wait_until_ready

from .server import ServerProcess, free_port

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample_events.jsonl"
ARTIFACTS = REPO / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
VIEWPORT = {"width": 1500, "height": 2000}
READY = ".opswb-queue-list select"  # present once the kernel has built the panels


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict:
    """pytest-playwright's launch arguments: the system Chromium, headless."""
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


def fallback_events() -> list[Any]:
    """A small store when the sample file is absent: conflicts and unknown types."""
    events: list[Any] = []
    for tenant in ("acme", "globex"):
        for i in range(3):
            base = {"tenant_id": tenant, "idempotency_key": f"{tenant}-ord-{i}",
                    "event_type": "payment.captured", "source": "billing-api",
                    "payload": {"amount": 1000 + i, "currency": "EUR", "customer_id": f"c{i}"}}
            changed = dict(base, payload=dict(base["payload"], amount=2000 + i))
            events += [base, changed]
        events.append({"tenant_id": tenant, "idempotency_key": f"{tenant}-cb",
                       "event_type": "payment.chargeback", "payload": {"amount": 5}})
    return events + ["not json at all"]


def build_store(root: Path) -> str:
    """A fresh store holding the sample data (a copy of the file is ingested)."""
    root.mkdir(parents=True, exist_ok=True)
    db = str(root / "opswb.duckdb")
    wb = opswb.connect(db)
    wb.init()
    if SAMPLE.exists():
        copy = root / "sample_events.jsonl"
        shutil.copyfile(SAMPLE, copy)
        wb.ingest(str(copy))
    else:
        wb.ingest(fallback_events())
    return db


@dataclass
class ConsoleServer:
    """A running console: its URL, the mode, and a workbench to check the store with."""

    url: str
    mode: str
    wb: Any
    proc: Popen
    log: Path
    extra: list[Any] = field(default_factory=list)


def _start(db: str, mode: str, log: Path, env: dict | None = None) -> ConsoleServer:
    port = free_port()
    log_file = open(log, "wb")  # noqa: SIM115 - closed when the fixture ends
    proc = start_console(db, port, env=env, log=log_file)
    try:
        wait_until_ready(port, timeout=60, proc=proc)
    except (RuntimeError, TimeoutError):
        stop_console(proc)
        log_file.close()
        raise RuntimeError("console did not start:\n" + log.read_text(errors="replace"))
    return ConsoleServer(console_url(port), mode, None, proc, log, [log_file])


@contextmanager
def local_console(db: str, root: Path) -> Iterator[ConsoleServer]:
    """The console (Voilà) over the embedded store ``db``, stopped on exit."""
    server = _start(db, "local", root / "voila.log")
    server.wb = opswb.connect(db)
    try:
        yield server
    finally:
        stop_console(server.proc)
        for f in server.extra:
            f.close()


@pytest.fixture(scope="module")
def console_local(tmp_path_factory) -> Iterator[ConsoleServer]:
    """The console (Voilà) over an embedded copy of the sample store."""
    root = tmp_path_factory.mktemp("console-local")
    with local_console(build_store(root / "store"), root) as server:
        yield server


@pytest.fixture(scope="module")
def console_remote(tmp_path_factory) -> Iterator[ConsoleServer]:
    """The console over an ``opswb serve`` URL that owns another copy of the store."""
    root = tmp_path_factory.mktemp("console-remote")
    db = build_store(root / "store")
    api = ServerProcess(db, root / "serve.log")
    served = api.wait()  # a server that does not start is a failure, not a skip
    try:
        server = _start(served.url, "remote", root / "voila.log",
                        env={"OPSWB_API_TOKEN": served.token})
    except Exception:
        api.stop()
        raise
    server.wb = opswb.connect(served.url, token=served.token)
    try:
        yield server
    finally:
        stop_console(server.proc)
        for f in server.extra:
            f.close()
        server.wb.close()
        api.stop()


def open_console(browser: Any, console: ConsoleServer, timeout: float = 60_000) -> Any:
    """A new page on the console, returned once the panels are interactive."""
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(20_000)
    page.goto(console.url)
    page.wait_for_selector(READY, timeout=timeout)
    return page


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/console/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

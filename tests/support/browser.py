"""Fixtures for real-browser tests: Debian's Chromium, the console under Voilà, screenshots.

- ``browser_type_launch_args`` (session): pytest-playwright launches /usr/bin/chromium
  (never ``playwright install``).
- ``console_local`` (module): ``opswb console``'s Voilà over a copy of the sample store.
- ``console_remote`` (module): the same console pointed at an ``opswb serve`` URL that
  owns another copy of the store, working as ``alice`` with her own token.
- ``console_postgres`` (module): the console run directly against a PostgreSQL database
  holding a copy of the store.
- ``open_console(browser, console)``: a new page, waited until the panels are interactive.
- ``shot(page, name)``: a screenshot under ``test-artifacts/console/``.
- ``open_tab(page, title)`` / ``unfold(page, title)``: a click on one of the console's
  tabs (Queue, Failure groups, Audit) / on a folded section under the detail (Four eyes,
  Casework), unless it is open already.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

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
READY = ".opswb-qt-head"  # the queue table's header: present once the kernel built the panels
WIDTHS = (1280, 1920)  # the README's screenshots: a laptop and a desktop screen
# The queue's visible rows as {id, age, tenant, reason, key, source, assignee} (rows of a
# short page are hidden, not removed).
ROWS_JS = """() => Array.from(document.querySelectorAll('.opswb-row'))
  .filter(r => r.offsetParent !== null)
  .map(r => {
    const row = {id: r.querySelector('.opswb-row-view').textContent.trim().slice(1),
                 ticked: r.querySelector('.opswb-row-tick input').checked,
                 viewed: r.classList.contains('opswb-row-viewed')};
    for (const c of r.querySelectorAll('.opswb-cell'))
      row[c.className.match(/opswb-cell-(\\w+)/)[1]] = c.textContent;
    return row;
  })"""


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


def start_server(db: str, mode: str, log: Path, env: dict | None = None,
                 preheat: bool = False) -> ConsoleServer:
    """Voilà serving the console over ``db`` on a free port, waited until it answers."""
    port = free_port()
    log_file = open(log, "wb")  # noqa: SIM115 - closed when the fixture ends
    proc = start_console(db, port, env=env, log=log_file, preheat=preheat)
    try:
        wait_until_ready(port, timeout=60, proc=proc)
    except (RuntimeError, TimeoutError):
        stop_console(proc)
        log_file.close()
        raise RuntimeError("console did not start:\n" + log.read_text(errors="replace"))
    return ConsoleServer(console_url(port), mode, None, proc, log, [log_file])


def stop_server(server: ConsoleServer) -> None:
    """Stop Voilà and its kernels, and close its log."""
    stop_console(server.proc)
    for f in server.extra:
        f.close()


@contextmanager
def serving(db: str, root: Path, preheat: bool = False,
            mode: str = "local") -> Iterator[ConsoleServer]:
    """The console run directly against store ``db`` (a file or a PostgreSQL URL) while
    the block runs."""
    server = start_server(db, mode, root / "voila.log", preheat=preheat)
    server.wb = opswb.connect(db)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def console_local(tmp_path_factory) -> Iterator[ConsoleServer]:
    """The console (Voilà) over an embedded copy of the sample store."""
    root = tmp_path_factory.mktemp("console-local")
    with serving(build_store(root / "store"), root) as server:
        yield server


@pytest.fixture(scope="module")
def console_remote(tmp_path_factory) -> Iterator[ConsoleServer]:
    """The console over an ``opswb serve`` URL that owns another copy of the store,
    working as ``alice`` with her own token (SPEC §15: decisions are recorded under the
    token's name); ``wb`` holds the bootstrap token."""
    root = tmp_path_factory.mktemp("console-remote")
    db = build_store(root / "store")
    api = ServerProcess(db, root / "serve.log")
    served = api.wait()  # a server that does not start is a failure, not a skip
    try:
        alice = httpx.post(served.url + "/v1/tokens", json={"name": "alice", "role": "admin"},
                           headers={"Authorization": f"Bearer {served.token}"})
        server = start_server(served.url, "remote", root / "voila.log",
                              env={"OPSWB_API_TOKEN": alice.raise_for_status().json()["token"]})
    except Exception:
        api.stop()
        raise
    server.wb = opswb.connect(served.url, token=served.token)
    try:
        yield server
    finally:
        stop_server(server)
        server.wb.close()
        api.stop()


@pytest.fixture(scope="module")
def console_postgres(tmp_path_factory, pg_cluster) -> Iterator[ConsoleServer]:
    """The console run directly against a PostgreSQL store (``OPSWB_DB=postgresql://…``)
    holding the sample store, copied there with ``opswb copy``."""
    import uuid

    root = tmp_path_factory.mktemp("console-postgres")
    name = "console_" + uuid.uuid4().hex[:12]
    pg_cluster.admin(f"CREATE DATABASE {name}")
    url = f"{pg_cluster.url}/{name}"
    opswb.copy(build_store(root / "store"), url)
    try:
        with serving(url, root, mode="postgres") as server:
            yield server
    finally:
        pg_cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def open_console(browser: Any, console: ConsoleServer, timeout: float = 60_000) -> Any:
    """A new page on the console, returned once the panels are interactive."""
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(20_000)
    page.goto(console.url)
    page.wait_for_selector(READY, timeout=timeout)
    return page


def shot(page: Any, name: str, width: int | None = None) -> Path:
    """Save a full-page screenshot as ``test-artifacts/console/<name>.png``; with
    ``width``, at that window width (the page is laid out again, then put back)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    before = page.viewport_size
    if width is not None:
        page.set_viewport_size({"width": width, "height": before["height"]})
        page.wait_for_timeout(300)  # let the widgets lay themselves out again
    page.screenshot(path=str(path), full_page=True)
    if width is not None:
        page.set_viewport_size(before)
    return path


def rows(page: Any) -> list[dict]:
    """The queue's visible rows, top to bottom."""
    return page.evaluate(ROWS_JS)


def view_button(page: Any, exception_id: str) -> Any:
    """The ``#id`` button of a visible queue row."""
    return page.locator(f".opswb-row-view:visible:text-is('#{exception_id}')")


def open_row(page: Any, exception_id: str) -> None:
    """View one exception in the queue, as a click on its ``#id`` would, and wait for its
    detail."""
    view_button(page, exception_id).click()
    page.locator(".opswb-detail-title").filter(
        has_text=f"Exception #{exception_id} ·").wait_for()


def row_gone(page: Any, exception_id: str) -> None:
    """Wait until the queue lists no row ``exception_id``."""
    page.wait_for_function(f"() => !({ROWS_JS})().some(r => r.id === {exception_id!r})")


def open_tab(page: Any, title: str) -> None:
    """Open the console's tab whose title starts with ``title``, as a click does."""
    tab = page.locator(".opswb-tabs .lm-TabBar-tab", has_text=title)
    tab.click()
    expect(tab).to_have_class(re.compile(r"\blm-mod-current\b"))


def unfold(page: Any, title: str) -> None:
    """Unfold the section under the detail titled ``title…`` if it is folded."""
    section = page.locator(".jupyter-widget-Collapse").filter(
        has=page.locator(".jupyter-widget-Collapse-header", has_text=title))
    if "jupyter-widget-Collapse-open" not in (section.get_attribute("class") or ""):
        section.locator(".jupyter-widget-Collapse-header").click()
    expect(section).to_have_class(re.compile(r"\bjupyter-widget-Collapse-open\b"))

"""Issue 6: the triage notebook in a real JupyterLab, run in headless Chromium, shows the
queue panel inline."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

import opswb
from tests.analysis.test_decisions import SAMPLE, build_history

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

_ALL_CELLS_RAN = """() => {
    const prompts = Array.from(document.querySelectorAll(
        '.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')).map(e => e.textContent);
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p));
}"""
_SOME_CELL_STARTED = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt'))
    .some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab on loopback (no token) serving a copy of triage.ipynb, with OPSWB_DB
    pointing at a store holding a decision history and the sample data."""
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian chromium at /usr/bin/chromium")
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "triage.ipynb", root / "triage.ipynb")
    db = tmp_path / "opswb.duckdb"
    wb = opswb.connect(str(db))
    build_history(wb)
    if SAMPLE.exists():
        wb.ingest(str(SAMPLE))
    port = _free_port()
    home = tmp_path / "jupyter"  # keep the developer's Lab settings and workspaces out
    env = dict(os.environ, OPSWB_DB=str(db), JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
    with open(tmp_path / "jupyterlab.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--port={port}", "--IdentityProvider.token=", "--allow-root",
             f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/api/status", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("jupyter lab did not start:\n"
                                + (tmp_path / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.3)
            yield base
        finally:
            # The server and the kernels it started share the session we created for it.
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group we started (server and kernels), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


def _run_all_cells(page) -> None:
    """Run > Run All Cells once the kernel is up; again if nothing got queued (a click made
    while the kernel is still connecting is dropped by JupyterLab)."""
    page.locator(".jp-StatusBar-Item", has_text=re.compile(r"\| Idle")).first.wait_for(
        timeout=60_000)
    for _ in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
        try:
            page.wait_for_function(_SOME_CELL_STARTED, timeout=15_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError("Run All Cells never started the notebook's cells")


def _screenshot(page) -> None:
    """Save the page with the queue panel in view when there is one (also on failure)."""
    queue = page.locator(".jp-OutputArea .opswb-queue")
    if queue.count():
        queue.first.scroll_into_view_if_needed(timeout=5_000)
    page.screenshot(path=str(ARTIFACTS / "triage-jupyterlab.png"))


def test_triage_notebook_renders_queue_panel_in_jupyterlab(jupyterlab, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    # One shared Chromium: pytest-playwright's session browser (see tests/support/browser.py).
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{jupyterlab}/lab/tree/triage.ipynb?reset", timeout=60_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60_000)
        _run_all_cells(page)
        try:
            queue = page.wait_for_selector(".jp-OutputArea .opswb-queue",
                                           state="visible", timeout=60_000)
            # Every code cell ran: each prompt shows an execution count, none [*] or [ ].
            page.wait_for_function(_ALL_CELLS_RAN, timeout=60_000)
        finally:
            _screenshot(page)
        assert queue.is_visible()
        text = page.locator(".jp-NotebookPanel .jp-Notebook").text_content()
        assert "LAST chosen in 9 of 10 conflicts" in text  # the suggested rule
        assert "invoice.paid" in text  # the unknown types table
        assert page.locator(".jp-OutputArea-output[data-mime-type="
                            "'application/vnd.jupyter.error']").count() == 0
    finally:
        page.close()

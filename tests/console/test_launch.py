"""`opswb console` as a user runs it: a real subprocess serving Voilà, stopped by a signal."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from opswb.console.launch import port_is_free, wait_until_ready
from tests.support.browser import REPO, build_store
from tests.support.server import free_port

OPSWB = [sys.executable, "-m", "opswb.cli"]


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> str:
    return build_store(tmp_path_factory.mktemp("launch") / "store")


def _console(db: str, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSWB_")}
    with open(log, "wb") as f:
        return subprocess.Popen(OPSWB + ["console", "--db", db, "--port", str(port)],
                                env=env, stdout=f, stderr=subprocess.STDOUT)


def _kernels(tree: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in tree if "ipykernel" in " ".join(p.cmdline())]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_stops_voila_and_its_kernels_and_frees_the_port(sample_db, tmp_path, sig):
    port, log = free_port(), tmp_path / "console.log"
    proc = _console(sample_db, port, log)
    try:
        wait_until_ready(port, timeout=60, proc=proc)
        # A page load starts a kernel, in a session of its own (as Jupyter starts them).
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=90) as page:
            assert page.status == 200
        tree = psutil.Process(proc.pid).children(recursive=True)
        assert _kernels(tree), [p.cmdline() for p in tree]
        assert any("voila" in p.cmdline() for p in tree)
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert alive == [], [p.cmdline() for p in alive]
    assert port_is_free(port)
    text = log.read_text(errors="replace")
    assert f"store {sample_db}" in text
    assert f"Ops Console on http://127.0.0.1:{port}/ (store: {sample_db})" in text


def test_a_port_in_use_is_refused_in_one_line(sample_db, tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        r = subprocess.run(OPSWB + ["console", "--db", sample_db, "--port", str(port)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"opswb: error: port {port} on 127.0.0.1 is in use")
    assert "--port" in r.stderr  # refused up front: the one line, no Voilà log after it


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_console_takes_the_port_from_port():
    def dry_run(*args: str) -> str:
        return subprocess.run(["make", "-n", "console", *args], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout

    assert "opswb console --db data/opswb.duckdb --port 8866\n" in dry_run()
    assert "opswb console --db data/opswb.duckdb --port 9123\n" in dry_run("PORT=9123")

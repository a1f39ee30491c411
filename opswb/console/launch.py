"""Serve the Ops Console (notebooks/console.ipynb) with Voilà on loopback.

``serve_console`` blocks until Ctrl-C (what ``opswb console`` calls); ``start_console``
returns the running subprocess and ``wait_until_ready`` polls it, for tests and scripts.
The store reaches the notebook's kernel through ``OPSWB_DB`` (an absolute path, since
Voilà starts kernels in the notebook's own directory, or a serve URL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from pathlib import Path
from typing import IO, Any

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "console.ipynb"
# A page left open keeps its kernel (connected kernels are never culled); a closed tab's
# kernel goes after this much idle time, so page loads do not pile up kernels.
CULL_IDLE_SECONDS = 600
CULL_INTERVAL_SECONDS = 60
PREHEAT = False  # measured no faster here (see benchmarks/console.py --preheat)


def console_url(port: int) -> str:
    """Where the console answers."""
    return f"http://127.0.0.1:{port}/"


def console_command(port: int = 8866, notebook: str | Path = NOTEBOOK,
                    cull_idle: int = CULL_IDLE_SECONDS,
                    cull_interval: int = CULL_INTERVAL_SECONDS,
                    preheat: bool = PREHEAT) -> list[str]:
    """The Voilà command line serving the console notebook on 127.0.0.1."""
    cmd = [
        sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
        "--Voila.ip=127.0.0.1",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
        f"--MappingKernelManager.cull_interval={cull_interval}",
    ]
    if preheat:
        # One kernel started and imported ahead of each page load; build_console waits
        # for the request before it reads the store, so nothing shown is stale.
        cmd += ["--preheat_kernel=True", "--pool_size=1"]
    return cmd


def console_env(db: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for Voilà and its kernels: ``OPSWB_DB`` set to the store."""
    env = {**os.environ, **(extra or {})}
    target = str(db)
    if not target.startswith(("http://", "https://")):
        target = str(Path(target).expanduser().resolve())
    env["OPSWB_DB"] = target
    return env


def start_console(db: str, port: int = 8866, env: dict[str, str] | None = None,
                  log: IO[bytes] | None = None, **kw: Any) -> subprocess.Popen:
    """Start Voilà serving the console over ``db``; returns the process (not yet ready).

    ``env`` adds variables (``OPSWB_API_TOKEN`` for a serve URL); ``log`` takes Voilà's
    output (default: inherited).
    """
    if not NOTEBOOK.exists():
        raise FileNotFoundError(f"console notebook not found: {NOTEBOOK}")
    return subprocess.Popen(console_command(port, **kw), env=console_env(db, env),
                            stdout=log, stderr=subprocess.STDOUT if log else None)


def wait_until_ready(port: int, timeout: float = 60.0,
                     proc: subprocess.Popen | None = None) -> None:
    """Poll the console until it answers; raise if it exits or the timeout passes."""
    deadline = time.monotonic() + timeout
    url = console_url(port) + "voila/static/favicon.ico"  # cheap: starts no kernel
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the console exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the console did not answer on port {port} within {timeout:.0f} s")


def stop_console(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a console started by ``start_console`` (its kernels go with it)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve_console(db: str, port: int = 8866, open_browser: bool = False) -> int:
    """Serve the Ops Console over ``db`` on 127.0.0.1:``port`` until Ctrl-C."""
    proc = start_console(db, port)
    try:
        wait_until_ready(port, proc=proc)
        print(f"Ops Console on {console_url(port)} (store: {console_env(db)['OPSWB_DB']});"
              " Ctrl-C to stop", file=sys.stderr)
        if open_browser:
            webbrowser.open(console_url(port))
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_console(proc)

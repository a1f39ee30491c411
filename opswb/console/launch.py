"""Serve the Ops Console (notebooks/console.ipynb) with Voilà on loopback.

``serve_console`` blocks until Ctrl-C, SIGTERM or SIGHUP (what ``opswb console`` calls)
and stops Voilà and its kernels before it returns; ``start_console`` returns the running
subprocess, ``wait_until_ready`` polls it and ``stop_console`` ends it, for tests and
scripts. The store reaches the notebook's kernel through ``OPSWB_DB`` (an absolute path,
since Voilà starts kernels in the notebook's own directory, or a serve URL).

Deep links (``?exception=…&tenant=…``, ``opswb.console.deeplink``) work in both modes:
Voilà puts the page's query string in a new kernel's environment as ``QUERY_STRING``;
a preheated kernel gets it when ``build_console``'s wait for the request returns
(``voila.utils.wait_for_request`` copies the request's variables into ``os.environ``).

Voilà runs in a session of its own, so a signal meant for ``opswb console`` (a Ctrl-C in
the terminal) reaches only the launcher, which then stops Voilà in order. Jupyter starts
each kernel in yet another session: ``stop_console`` finds the kernels by parentage
before it stops Voilà, and ends any that Voilà did not shut down itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "console.ipynb"
# A page left open keeps its kernel (connected kernels are never culled); a closed tab's
# kernel goes after this much idle time, so page loads do not pile up kernels.
CULL_IDLE_SECONDS = 600
CULL_INTERVAL_SECONDS = 60
# A kernel started, the notebook run and the widgets made before each page load: time
# to interactive 2.1-2.4 s against 3.6-4.7 s without, same runs (docs/benchmarks.md).
PREHEAT = True
# Kernels kept ready: a load right after another takes a kernel still starting (7 s
# against 2 s on a busy 2-core machine), so two are kept for two quick loads in a row.
POOL_SIZE = 2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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
        # Voilà would take the next free port and the launcher would print the wrong one.
        "--Voila.port_retries=0",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
        f"--MappingKernelManager.cull_interval={cull_interval}",
    ]
    if preheat:
        # Kernels started, imported and their widgets made ahead of the page loads;
        # build_console then waits for the request and reads the store again, so
        # nothing shown is stale.
        cmd += ["--preheat_kernel=True", f"--pool_size={POOL_SIZE}"]
    return cmd


def console_env(db: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for Voilà and its kernels: ``OPSWB_DB`` set to the store."""
    env = {**os.environ, **(extra or {})}
    target = str(db)
    if "://" not in target:  # a file path; a serve or postgresql:// URL stays as it is
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
                            stdout=log, stderr=subprocess.STDOUT if log else None,
                            start_new_session=True)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now (as Voilà binds it:
    ``SO_REUSEADDR``, so closed connections still in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _answers(port: int) -> bool:
    url = console_url(port) + "voila/static/favicon.ico"  # cheap: starts no kernel
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except (urllib.error.URLError, OSError):
        return False


def wait_until_ready(port: int, timeout: float = 60.0, proc: subprocess.Popen | None = None,
                     stop: Callable[[], bool] | None = None) -> bool:
    """Poll the console until it answers (True), or until ``stop()`` is true (False);
    raise if ``proc`` exits or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop is not None and stop():
            return False
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the console exited with status {proc.returncode}")
        if _answers(port):
            return True
        time.sleep(0.2)
    raise TimeoutError(f"the console did not answer on port {port} within {timeout:.0f} s")


def _listens_on(pid: int, port: int) -> bool:
    import psutil

    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
               for c in conns)


def _signal_session(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # Voilà leads its own session (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass


def stop_console(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Stop a console started by ``start_console``, its kernels with it: SIGTERM (Voilà
    then shuts its kernels down), SIGKILL after ``timeout``, and the same for any kernel
    still alive once Voilà has gone."""
    import psutil

    try:
        kernels = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        kernels = []
    if proc.poll() is None:
        _signal_session(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_session(proc, signal.SIGKILL)
            proc.wait()
    _, alive = psutil.wait_procs(kernels, timeout=min(timeout, 3.0))
    for k in alive:
        k.terminate()
    _, alive = psutil.wait_procs(alive, timeout=timeout)
    for k in alive:
        k.kill()
    psutil.wait_procs(alive, timeout=timeout)


def serve_console(db: str, port: int = 8866, open_browser: bool = False) -> int:
    """Serve the Ops Console over ``db`` on 127.0.0.1:``port`` until Ctrl-C, SIGTERM or
    SIGHUP; Voilà and its kernels are stopped and the port free again when it returns.
    Returns 0 after a stop signal, else Voilà's own exit status."""
    if not port_is_free(port):
        raise OSError(f"port {port} on 127.0.0.1 is in use (another console?); stop it or "
                      "choose another with --port")
    store = console_env(db)["OPSWB_DB"]
    print(f"Ops Console: starting Voilà over store {store} on port {port} ...",
          file=sys.stderr)
    stopped: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _frame: stopped.append(signum))
                for s in STOP_SIGNALS}
    proc = start_console(db, port)
    try:
        if not wait_until_ready(port, proc=proc, stop=lambda: bool(stopped)):
            return 0
        if not _listens_on(proc.pid, port):
            raise OSError(f"port {port} is answered by another process, not this console")
        print(f"Ops Console on {console_url(port)} (store: {store}); Ctrl-C to stop",
              file=sys.stderr)
        if open_browser:
            webbrowser.open(console_url(port))
        while proc.poll() is None and not stopped:
            time.sleep(0.1)
        return 0 if stopped else proc.returncode
    except RuntimeError as e:  # Voilà exited before it answered: its log says why
        raise OSError(f"{e}; Voilà's log is above") from None
    finally:
        stop_console(proc)
        for s, handler in previous.items():
            signal.signal(s, handler)

"""Running the API: ``opswb serve`` (uvicorn over ``create_app``), and ``python -m
opswb.api serve|openapi``."""

from __future__ import annotations

import copy
import gc
import json
import os
import secrets
import sys
import threading
from typing import Any

from opswb.api.app import DEFAULT_MAX_BODY, create_app, openapi_document
from opswb.core.errors import OpswbError


def _snapshot_every(wb: Any, seconds: float, stop: threading.Event) -> None:
    """Record a health snapshot every ``seconds`` until ``stop`` is set (SPEC §8)."""
    while not stop.wait(seconds):
        try:
            wb.record_snapshot()
        except OpswbError as e:  # keep serving; the next tick tries again
            print(f"opswb serve: health snapshot failed: {e}", file=sys.stderr, flush=True)


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with opswb's own loggers (the 500s' tracebacks, api_gate.py)
    written where and as uvicorn writes its errors: stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["opswb"] = {"handlers": ["default"], "level": "INFO",
                                  "propagate": False}
    return config


def _server(config: Any, wb: Any) -> Any:
    """uvicorn's server, which on SIGTERM/SIGINT first ends the deliveries feed's long
    polls (they answer at once), so a shutdown does not wait up to 30 s for them."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            signal = wb.store.commit_signal()
            if signal is not None:  # not from inside a signal handler: the lock it takes
                threading.Thread(target=signal.close, daemon=True).start()
            super().handle_exit(sig, frame)

    return Server(config)


def serve(db: str, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          max_body: int | None = None, snapshot_every: float | None = None) -> None:
    """Run the API server over ``db`` until interrupted; it holds the file meanwhile.

    ``snapshot_every`` (seconds, default ``OPSWB_SNAPSHOT_EVERY``, 0 = off) records health
    snapshots on a schedule, so the report's trend exists without cron.
    """
    import uvicorn

    from opswb.workbench.in_server import ServedWorkbench

    token = token or os.environ.get("OPSWB_API_TOKEN")
    if not token:
        token = secrets.token_urlsafe(32)
        print(f"opswb serve: no OPSWB_API_TOKEN set; generated token (shown once):\n"
              f"  OPSWB_API_TOKEN={token}", file=sys.stderr, flush=True)
    if max_body is None:
        max_body = int(os.environ.get("OPSWB_MAX_BODY", DEFAULT_MAX_BODY))
    if snapshot_every is None:
        snapshot_every = float(os.environ.get("OPSWB_SNAPSHOT_EVERY") or 0)
    wb = ServedWorkbench(db)
    stop = threading.Event()
    if snapshot_every > 0:
        threading.Thread(target=_snapshot_every, args=(wb, snapshot_every, stop),
                         daemon=True, name="opswb-snapshots").start()
    try:
        print(f"opswb serve: holding {db}; clients use --db http://{host}:{port}",
              file=sys.stderr, flush=True)
        config = uvicorn.Config(create_app(wb, token, max_body), host=host, port=port,
                                log_level=os.environ.get("OPSWB_LOG_LEVEL", "info"),
                                log_config=_log_config())
        server = _server(config, wb)
        # What is alive now (the libraries, the app, the store) lives as long as the
        # server: out of the cyclic GC's sight, a full collection under a 32-client load
        # took 2 ms instead of 41 (one request waits for it).
        gc.collect()
        gc.freeze()
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        if not server.started:  # as uvicorn.run: the port was taken, or the app failed
            sys.exit(3)
    finally:
        stop.set()
        wb.close()


def _main(argv: list[str] | None = None) -> None:
    """``python -m opswb.api serve --db PATH`` or ``python -m opswb.api openapi [FILE]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m opswb.api")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--db", default=None)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)
    o = sub.add_parser("openapi")
    o.add_argument("out", nargs="?")
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        from opswb.store.config import default_db

        serve(args.db or default_db(), args.host, args.port)
        return
    text = json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    _main()

"""The live gate: single-event POSTs over HTTP against the HTTP floor and a SQLite gate.

    python benchmarks/gate.py [--events 1000] [--clients 1,8,32] [--baseline-rev REV]
                              [--big N] [--workdir DIR] [--json OUT]
                              [--db postgresql://… [--replicas 2]]

Starts, each as its own process on a free 127.0.0.1 port, servers on the same
FastAPI + uvicorn stack:

  floor          a no-op ``POST /v1/events`` (reads the body, answers a fixed JSON)
  sqlite         a SQLite gate: one transaction per request behind one lock (key lookup,
                 raw insert, key insert or state change, outbox insert; WAL,
                 synchronous=NORMAL), the §5 rules for one event
  sqlite-full    the same gate with synchronous=FULL: each commit is on disk before the
                 answer (fsync of the WAL), as opswb's DuckDB commits are; NORMAL's
                 commits survive a crash of the process but not of the machine
  duckdb         the SQLite gate's design on a DuckDB file: the same statements, one
                 transaction per request behind one lock (each commit fsyncs the WAL);
                 what DuckDB itself costs a single event, without opswb
  opswb          ``opswb serve`` of this working tree over a fresh store
  opswb-before   ``opswb serve`` of ``--baseline-rev`` (``git archive``), fresh store
  opswb-big      this tree's ``opswb serve`` over a store of ``--big`` N arrivals
                 (built with ``opswb.testing.synth``, or reused)
  opswb-pg       with ``--db postgresql://…``: this tree's ``opswb serve`` over that
                 database (events get fresh keys, so it need not be empty)
  opswb-pg-xN    with ``--replicas N`` too: N ``opswb serve`` replicas of that database,
                 each client alternating between them request by request

Then, for each client count, the same client code drives each server in turn: that many
threads, each with its own keep-alive ``httpx.Client``, post one new event per request
(its own key) until ``--events`` requests are answered or ``--max-seconds`` pass, after
a few warm-up requests (the client process collects its garbage before each
measurement, so one server's leftovers are not collected in the next one's). Prints
events/s, p50, p99 and the server's CPU time per event (from /proc; and the main
thread's share, the event loop's) per server and client count, and the ratios the issue
sets targets on.
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from gate_baselines import serve_child  # the floor and the SQLite gates
from ingest import export_rev  # the baseline commit, unpacked as ingest.py does

WARMUP = 3


# -- starting servers -------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process on a free loopback port."""

    def __init__(self, name: str, argv: list[str], log: Path, token: str,
                 src: Path | None = None):
        self.name, self.port, self.token, self.log = name, free_port(), token, log
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSWB_")}
        env.update(OPSWB_API_TOKEN=token, OPSWB_LOG_LEVEL="warning")
        if src is not None:  # the baseline's package shadows the working tree's
            env["PYTHONPATH"] = str(src)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([*argv, "--port", str(self.port)], env=env,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         cwd=src or ROOT)

    def wait(self, timeout: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                httpx.get(self.url + "/v1/health", timeout=5, headers=self.headers())
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit(f"{self.name} did not come up:\n{self.log.read_text()[-3000:]}")

    @property
    def urls(self) -> list[str]:
        return [self.url]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def cpu_seconds(self, task: str = "") -> float:
        """CPU time the server process has used (all its threads), from /proc; with
        ``task``, that thread's only (``task/<tid>``; the main thread's tid is the pid)."""
        where = f"/proc/{self.proc.pid}/" + (f"task/{task}/" if task else "") + "stat"
        try:
            fields = Path(where).read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_split(self) -> tuple[float, float]:
        """(all threads, the main thread): uvicorn's event loop runs on the main thread
        (HTTP, routing, parsing a small body); opswb's writer and DuckDB's threads are
        the others."""
        return self.cpu_seconds(), self.cpu_seconds(str(self.proc.pid))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Replicas:
    """Several ``opswb serve`` processes of one database, measured as one server."""

    def __init__(self, name: str, servers: list[Server]):
        self.name, self.servers, self.token = name, servers, servers[0].token
        self.urls = [s.url for s in servers]
        self.headers = servers[0].headers

    def wait(self) -> None:
        for s in self.servers:
            s.wait()

    def cpu_seconds(self) -> float:
        return sum(s.cpu_seconds() for s in self.servers)

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


def opswb_argv(db: Path | str) -> list[str]:
    return [sys.executable, "-m", "opswb.cli", "serve", "--db", str(db), "--host", "127.0.0.1"]


def build_big(db: Path, n: int, workdir: Path) -> None:
    """A store of ``n`` generated arrivals (embedded bulk ingest), unless it has them."""
    import opswb
    from opswb.testing import synth

    if db.exists() and opswb.connect(str(db)).health()["raw_events"] >= n:
        print(f"reusing {db}", flush=True)
        return
    src = workdir / f"big-{n}.jsonl"
    if not src.exists():
        synth.write_jsonl(src, n, seed=7)
    t0 = time.perf_counter()
    opswb.connect(str(db)).ingest(str(src))
    print(f"built {db} ({n:,} arrivals) in {time.perf_counter() - t0:.0f}s", flush=True)


# -- the client ---------------------------------------------------------------------------
def event_body(run: str, i: int) -> bytes:
    return json.dumps({"tenant_id": "acme", "idempotency_key": f"{run}-{i}",
                       "event_type": "payment.captured", "source": "gate-bench",
                       "payload": {"amount": 1000 + i % 977, "currency": "EUR",
                                   "customer_id": f"c_{i % 1013}"}}).encode()


def drive(server: Server, clients: int, events: int, max_seconds: float) -> dict[str, Any]:
    """``clients`` threads posting single new events; latencies of answered requests."""
    import httpx

    run = f"{server.name}-{clients}-{secrets.token_hex(3)}"
    lock, counter, lat, errors = threading.Lock(), [0], [], []
    start = threading.Barrier(clients + 1)
    deadline: list[float] = [0.0]

    def client(c: int) -> None:
        hs = [httpx.Client(base_url=u, headers=server.headers(), timeout=60)
              for u in server.urls]  # replicas: each request to the next one
        try:
            for w in range(WARMUP * len(hs)):
                hs[w % len(hs)].post("/v1/events", content=event_body(f"{run}-w{c}", w))
            start.wait()
            mine = []
            while time.perf_counter() < deadline[0]:
                with lock:
                    i = counter[0]
                    if i >= events:
                        break
                    counter[0] += 1
                t0 = time.perf_counter()
                r = hs[(c + len(mine)) % len(hs)].post("/v1/events", content=event_body(run, i))
                mine.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:120]}")
            with lock:
                lat.extend(mine)
        finally:
            for h in hs:
                h.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + max_seconds + 60  # set before the barrier opens
    start.wait()
    t0, (cpu0, main0) = time.perf_counter(), server.cpu_split()
    deadline[0] = t0 + max_seconds
    for t in threads:
        t.join()
    (cpu1, main1), took = server.cpu_split(), time.perf_counter() - t0
    cpu, main = cpu1 - cpu0, main1 - main0
    lat.sort()
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))] if lat else 0.0
    return {"requests": len(lat), "seconds": took, "events_per_s": len(lat) / took,
            "p50_ms": statistics.median(lat) if lat else 0.0, "p99_ms": p99,
            "server_cpu_ms_per_event": cpu * 1000 / len(lat) if lat else 0.0,
            "loop_cpu_ms_per_event": main * 1000 / len(lat) if lat else 0.0,
            "errors": len(errors), "first_error": errors[0] if errors else None}


# -- the driver -------------------------------------------------------------------------
def start_servers(args: argparse.Namespace, workdir: Path) -> list[Server]:
    token = secrets.token_urlsafe(16)
    me = [sys.executable, __file__, "--serve"]
    for p in workdir.glob("gate-*"):
        p.unlink()
    servers = [Server("floor", [*me, "floor"], workdir / "floor.log", token),
               Server("sqlite", [*me, "sqlite", "--db", str(workdir / "gate-sqlite.db")],
                      workdir / "sqlite.log", token),
               Server("sqlite-full", [*me, "sqlite-full", "--db",
                                      str(workdir / "gate-sqlite-full.db")],
                      workdir / "sqlite-full.log", token),
               Server("duckdb", [*me, "duckdb", "--db", str(workdir / "gate-duckdb.duckdb")],
                      workdir / "duckdb.log", token),
               Server("opswb", opswb_argv(workdir / "gate-opswb.duckdb"),
                      workdir / "opswb.log", token)]
    if args.baseline_rev:
        src = export_rev(args.baseline_rev, workdir)
        servers.append(Server("opswb-before", opswb_argv(workdir / "gate-before.duckdb"),
                              workdir / "before.log", token, src=src))
    if args.big:
        big = Path(args.big_db) if args.big_db else workdir / f"big-{args.big}.duckdb"
        build_big(big, args.big, workdir)
        servers.append(Server("opswb-big", opswb_argv(big), workdir / "big.log", token))
    if args.db:
        servers.append(Server("opswb-pg", opswb_argv(args.db), workdir / "pg.log", token))
        if args.replicas > 1:
            servers.append(Replicas(f"opswb-pg-x{args.replicas}", [
                Server(f"opswb-pg-{i}", opswb_argv(args.db), workdir / f"pg-{i}.log", token)
                for i in range(args.replicas)]))
    for s in servers:
        s.wait()
    return servers


def report(res: dict[str, dict[int, dict]], levels: list[int]) -> dict[str, float]:
    print(f"\n{'server':<14}{'clients':>8}{'requests':>10}{'events/s':>10}{'p50 ms':>9}"
          f"{'p99 ms':>9}{'CPU ms/event':>14}{'of it loop':>12}{'errors':>8}")
    for name, by in res.items():
        for c in levels:
            r = by[c]
            print(f"{name:<14}{c:>8}{r['requests']:>10}{r['events_per_s']:>10,.0f}"
                  f"{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
                  f"{r['server_cpu_ms_per_event']:>14.2f}"
                  f"{r.get('loop_cpu_ms_per_event', 0.0):>12.2f}{r['errors']:>8}")
    ratios = {}
    for c in levels:
        rate = res["opswb"][c]["events_per_s"]
        ratios[f"opswb/floor @{c}"] = rate / res["floor"][c]["events_per_s"]
        ratios[f"opswb/sqlite @{c}"] = rate / res["sqlite"][c]["events_per_s"]
        ratios[f"opswb/sqlite-full @{c}"] = rate / res["sqlite-full"][c]["events_per_s"]
        ratios[f"opswb/duckdb @{c}"] = rate / res["duckdb"][c]["events_per_s"]
        ratios[f"duckdb/sqlite @{c}"] = (res["duckdb"][c]["events_per_s"]
                                         / res["sqlite"][c]["events_per_s"])
        for other in [n for n in res if n.startswith(("opswb-before", "opswb-big", "opswb-pg"))]:
            ratios[f"{other}/opswb @{c}"] = res[other][c]["events_per_s"] / rate
        if "opswb-pg" in res:
            for other in [n for n in res if n.startswith("opswb-pg-x")]:
                ratios[f"{other}/opswb-pg @{c}"] = (res[other][c]["events_per_s"]
                                                    / res["opswb-pg"][c]["events_per_s"])
    print("\nratios (events/s over events/s):")
    for k, v in ratios.items():
        print(f"  {k:<24}{v:7.2f}x")
    load = os.getloadavg()[0]
    print(f"\n(load average {load:.1f} on {os.cpu_count()} CPUs; the clients share the "
          "machine with the servers. Server CPU ms/event is the steadier figure when other "
          "work shares the machine: it counts the server's own threads only. 'Of it loop':\n"
          " the main thread's share, uvicorn's event loop: HTTP, routing, parsing; the rest\n"
          " is opswb's writer thread and DuckDB's threads, or a worker thread.)")
    for name, by in res.items():
        for c in levels:
            if by[c]["errors"]:
                print(f"{name} @{c}: {by[c]['errors']} errors, e.g. {by[c]['first_error']}")
    return ratios


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1000, help="requests per server and level")
    ap.add_argument("--clients", default="1,8,32", help="client counts, comma-separated")
    ap.add_argument("--max-seconds", type=float, default=20.0, help="cap per measurement")
    ap.add_argument("--baseline-rev", help="also run opswb serve of this commit")
    ap.add_argument("--big", type=int, default=0, help="also run over a store of N raws")
    ap.add_argument("--big-db", help="where the big store is (built if it lacks events)")
    ap.add_argument("--workdir", help="stores and logs (kept); default a temp dir")
    ap.add_argument("--json", dest="json_out", help="write the figures to this file")
    ap.add_argument("--serve", choices=("floor", "sqlite", "sqlite-full", "duckdb"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help="also run opswb serve over this postgresql:// database")
    ap.add_argument("--replicas", type=int, default=1,
                    help="with --db: also N replicas of it, clients alternating")
    args = ap.parse_args(argv)
    if args.serve:
        serve_child(args.serve, args.port, args.db)
        return 0
    if args.db and "://" not in args.db or args.replicas > 1 and not args.db:
        ap.error("--db takes a postgresql:// URL; --replicas needs it")
    levels = [int(c) for c in args.clients.split(",")]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="opswb-gate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    servers = start_servers(args, workdir)
    res: dict[str, dict[int, dict]] = {s.name: {} for s in servers}
    try:
        for c in levels:  # every server at one level before the next level
            for s in servers:
                # The clients' garbage of the last measurement is collected now, not
                # in this one: a full collection in the client process stalls all 32
                # clients, and showed as the p99 of whichever server came next.
                gc.collect()
                gc.freeze()
                res[s.name][c] = drive(s, c, args.events, args.max_seconds)
                print(f"{s.name:<14} {c:>3} clients: {res[s.name][c]['events_per_s']:8,.0f}"
                      f" events/s  p50 {res[s.name][c]['p50_ms']:6.1f} ms", flush=True)
    finally:
        for s in servers:
            s.stop()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    ratios = report(res, levels)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            {"levels": levels, "events": args.events, "results": res, "ratios": ratios,
             "baseline_rev": args.baseline_rev, "big": args.big,
             "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()[0]}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""HTTP latency and ingest rate of ``opswb serve`` over a large store (SPEC §9, issue 3).

    python benchmarks/api.py [--n 5000000] [--db STORE] [--requests 200] [--batches 30]

Builds a store of N generated arrivals with ``opswb.testing.synth`` (3% duplicates, 0.5%
conflicts, 0.2% unknown types), or reuses ``--db`` if it already holds events, starts a
real ``opswb serve`` subprocess on a free loopback port, and measures over one
keep-alive HTTP connection:

  health        GET /v1/health
  queue page    GET /v1/exceptions?limit=50 (first page, a tenant's page, a cursor page)
  detail        GET /v1/exceptions/{id} over a spread of conflict exceptions
  groups        GET /v1/exceptions/groups (open; all statuses; one tenant; one reason) and
                the queue filtered by the largest group (issue 17)
  POST events   /v1/events with JSON arrays of 1,000 new events: latency and events/s

Targets: health, queue page and detail <= 50 ms median (issue 3); a groups page
<= 100 ms (issue 17). Prints figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 50.0
GROUPS_TARGET_MS = 100.0


def build_store(db: Path, n: int, workdir: Path) -> None:
    """Generate N events and ingest them embedded (the fast path), unless db has events."""
    import opswb
    from opswb.testing import synth

    if db.exists() and opswb.connect(str(db)).health()["raw_events"] > 0:
        print(f"reusing {db} ({opswb.connect(str(db)).health()['raw_events']:,} raws)")
        return
    src = workdir / f"events-{n}.jsonl"
    if not src.exists():
        t0 = time.perf_counter()
        synth.write_jsonl(src, n, seed=1)
        print(f"generated {n:,} events in {time.perf_counter() - t0:.1f}s -> {src}")
    t0 = time.perf_counter()
    summary = opswb.connect(str(db)).ingest(str(src))
    took = time.perf_counter() - t0
    print(f"ingested {summary['received']:,} in {took:.1f}s "
          f"({summary['received'] / took:,.0f}/s): {summary}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path, log: Path) -> tuple[subprocess.Popen, str, str]:
    """``opswb serve`` as an operator runs it; returns (process, url, token)."""
    import httpx

    port, token = free_port(), secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSWB_")}
    env.update(OPSWB_API_TOKEN=token, OPSWB_LOG_LEVEL="warning")
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([sys.executable, "-m", "opswb.cli", "serve", "--db", str(db),
                                 "--port", str(port)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"opswb serve exited:\n{log.read_text()}")
        try:
            if httpx.get(url + "/v1/health", headers={"Authorization": f"Bearer {token}"},
                         timeout=10).status_code == 200:
                return proc, url, token
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit("opswb serve did not come up")


def timed(client: Any, method: str, paths: list[str], **kw: Any) -> list[float]:
    """Milliseconds per request (sequential, keep-alive), after 3 warm-up calls."""
    for p in paths[:3]:
        client.request(method, p, **kw)
    out = []
    for p in paths:
        t0 = time.perf_counter()
        r = client.request(method, p, **kw)
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code >= 300:
            raise SystemExit(f"{method} {p}: {r.status_code} {r.text[:200]}")
    return out


def stats(name: str, ms: list[float], target: float | None = TARGET_MS) -> dict[str, Any]:
    ms_sorted = sorted(ms)
    p99 = ms_sorted[min(len(ms_sorted) - 1, round(0.99 * (len(ms_sorted) - 1)))]
    row = {"name": name, "n": len(ms), "median_ms": statistics.median(ms), "p99_ms": p99,
           "target_ms": target}
    verdict = "" if target is None else ("ok" if row["median_ms"] <= target else "SLOW")
    print(f"  {name:<28} n={len(ms):>4}  median {row['median_ms']:8.1f} ms  "
          f"p99 {p99:8.1f} ms  {f'target <= {target:g} ms ' if target else ''}{verdict}")
    return row


def run(url: str, token: str, requests: int, batches: int) -> dict[str, Any]:
    import httpx

    from opswb.testing import synth

    rows = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=120) as c:
        health = c.get("/v1/health").json()
        print(f"store: {health['raw_events']:,} raws, {health['exceptions_open']:,} open, "
              f"keys {health['idempotency']}")
        rows.append(stats("health", timed(c, "GET", ["/v1/health"] * requests)))
        rows.append(stats("queue page (first 50)",
                          timed(c, "GET", ["/v1/exceptions?limit=50"] * requests)))
        tenant = next(iter(health.get("open_by_tenant") or {"acme": 0}))
        rows.append(stats(f"queue page (tenant {tenant})", timed(
            c, "GET", [f"/v1/exceptions?limit=50&tenant_id={tenant}"] * requests)))
        conflicts = c.get("/v1/exceptions", params={
            "reason_code": "IDEMPOTENCY_CONFLICT", "limit": 10_000}).json()["items"]
        mid = conflicts[len(conflicts) // 2]["raw_id"] if conflicts else None
        if mid:
            rows.append(stats("queue page (cursor, middle)", timed(
                c, "GET", [f"/v1/exceptions?limit=50&cursor={mid}"] * requests)))
        step = max(1, len(conflicts) // requests)
        ids = [e["exception_id"] for e in conflicts[::step]][:requests]
        if ids:
            rows.append(stats("detail (conflicts)",
                              timed(c, "GET", [f"/v1/exceptions/{i}" for i in ids])))
        rows += groups_rows(c, tenant, requests)
        events = list(synth.generate_events(batches * 1000, seed=int(time.time()),
                                            key_prefix=f"bench{secrets.token_hex(3)}_"))
        bodies = [json.dumps(events[i:i + 1000]).encode() for i in range(0, len(events), 1000)]
        lat = []
        t0 = time.perf_counter()
        for body in bodies:
            t1 = time.perf_counter()
            r = c.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
            lat.append((time.perf_counter() - t1) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"POST /v1/events: {r.status_code} {r.text[:200]}")
        took = time.perf_counter() - t0
        rows.append(stats("POST /v1/events (1,000)", lat, target=None))
        rate = len(events) / took
        print(f"  {'POST /v1/events rate':<28} {rate:,.0f} events/s over {len(events):,} events")
    return {"rows": rows, "events_per_s": rate, "raws": health["raw_events"]}


def groups_rows(c: Any, tenant: str, requests: int) -> list[dict[str, Any]]:
    """Failure groups (issue 17): a groups page under filters, and the queue by a group."""
    first = c.get("/v1/exceptions/groups").json()["items"]
    print(f"  {len(first)} open groups; largest: "
          + ", ".join(f"{g['reason_code']} {g['signature']} x{g['count']:,}" for g in first[:3]))
    rows = [stats("groups page (open)", timed(c, "GET", ["/v1/exceptions/groups"] * requests),
                  GROUPS_TARGET_MS),
            stats("groups page (all statuses)", timed(
                c, "GET", ["/v1/exceptions/groups?status=all"] * requests), GROUPS_TARGET_MS),
            stats(f"groups page (tenant {tenant})", timed(
                c, "GET", [f"/v1/exceptions/groups?tenant_id={tenant}"] * requests),
                GROUPS_TARGET_MS),
            stats("groups page (conflicts)", timed(c, "GET", [
                "/v1/exceptions/groups?reason_code=IDEMPOTENCY_CONFLICT"] * requests),
                GROUPS_TARGET_MS)]
    if first:
        gid = first[0]["group_id"]
        rows.append(stats("queue page (largest group)", timed(
            c, "GET", [f"/v1/exceptions?limit=50&group={gid}"] * requests)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5_000_000, help="arrivals to generate")
    ap.add_argument("--db", help="store to build or reuse (default: in --workdir)")
    ap.add_argument("--workdir", help="where generated files go (default: a temp dir)")
    ap.add_argument("--requests", type=int, default=200, help="requests per measurement")
    ap.add_argument("--batches", type=int, default=30, help="POST batches of 1,000")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args(argv)
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix="opswb-bench-api-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = Path(a.db or workdir / f"opswb-{a.n}.duckdb")
    build_store(db, a.n, workdir)
    proc, url, token = start_server(db, workdir / "serve.log")
    try:
        print(f"opswb serve on {url} (PID {proc.pid}) over {db}")
        result = run(url, token, a.requests, a.batches)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What a named token costs per request (SPEC §15): GET /v1/health with the bootstrap
token (compared in memory) against a named token (looked up by its sha256 in the store),
interleaved rounds over one keep-alive connection each, on a real ``opswb serve``.

    python benchmarks/auth.py [--requests 300] [--rounds 5]

Prints medians per round and overall; the baseline (bootstrap) is measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.api import start_server


def median_ms(client, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get("/v1/health")
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    import httpx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, token = start_server(Path(tmp) / "auth.duckdb", Path(tmp) / "serve.log")
        try:
            boot = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
            named_token = boot.post("/v1/tokens", json={"name": "bench", "role": "viewer"})
            named = httpx.Client(base_url=url, headers={
                "Authorization": f"Bearer {named_token.json()['token']}"})
            figures = {"bootstrap": [], "named": []}
            for i in range(args.rounds):
                order = [("bootstrap", boot), ("named", named)]
                for name, client in order if i % 2 == 0 else order[::-1]:
                    figures[name].append(median_ms(client, args.requests))
            for name, ms in figures.items():
                print(f"{name:9}  GET /v1/health median per round: "
                      + ", ".join(f"{m:.2f}" for m in ms)
                      + f" ms; overall {statistics.median(ms):.2f} ms")
            extra = statistics.median(figures["named"]) - statistics.median(figures["bootstrap"])
            print(f"a named token's lookup adds {extra:.2f} ms per request (median of medians)")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

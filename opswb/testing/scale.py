"""A store the size an operator meets on a bad day, for browser tests and benchmarks.

``write_scale_events`` writes ``n`` synthetic arrivals (``opswb.testing.synth``) of which
``unknown`` carry one event type no tenant allows (``payout.settled``), each on its own
key: one failure group of ``unknown`` open ``UNKNOWN_EVENT_TYPE`` exceptions — the
"58,706 exceptions, one real cause" case — beside the ordinary mix of duplicates,
conflicts and other unknown types. Same arguments, same bytes.

    python -m opswb.testing.scale OUT.jsonl --n 100000 --unknown 20000
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from random import Random
from typing import Any

from opswb.testing.synth import SynthStream, write_items

GROUP_TYPE = "payout.settled"
_TENANTS = ("acme", "globex", "initech", "umbrella")
_SOURCES = ("billing-api", "partner-webhook")


def _unknown(i: int, rng: Random) -> dict[str, Any]:
    return {"tenant_id": _TENANTS[i % len(_TENANTS)], "idempotency_key": f"payout-{i:07d}",
            "event_type": GROUP_TYPE, "source": _SOURCES[i % len(_SOURCES)],
            "occurred_at": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
            "payload": {"payout_id": f"po_{i:07d}", "amount": rng.randint(100, 99_999),
                        "currency": "EUR"}}


def scale_items(n: int, unknown: int, seed: int = 0) -> Iterator[tuple[Any, str, None]]:
    """``n`` stream items, ``unknown`` of them the one-cause group, spread evenly."""
    if not 0 <= unknown <= n:
        raise ValueError(f"unknown must be between 0 and n ({n}), not {unknown}")
    rng = Random(seed)
    rest = iter(SynthStream(n - unknown, seed=seed))
    every = n / unknown if unknown else 0.0
    placed = 0
    for i in range(n):
        if unknown and placed < unknown and i >= placed * every:
            yield _unknown(placed, rng), "exceptions_opened", None
            placed += 1
        else:
            el, bucket, style = next(rest)
            yield el, bucket, style


def write_scale_events(path: str | Path, n: int = 100_000, unknown: int = 20_000,
                       seed: int = 0) -> Path:
    """Write the scale stream to ``path`` as JSON Lines."""
    return write_items(path, scale_items(n, unknown, seed))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m opswb.testing.scale")
    p.add_argument("out")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--unknown", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    write_scale_events(a.out, a.n, a.unknown, a.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

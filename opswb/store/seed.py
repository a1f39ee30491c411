"""The allowlist's first entries: a CSV file of ``tenant_id,event_type`` rows (SPEC §5).

Read when a store is created, by whichever backend creates it.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

BUILTIN = ("payment.authorized", "payment.captured", "payment.refunded", "order.created",
           "order.cancelled")


def seed_file() -> Path | None:
    """``OPSWB_TYPES_FILE``, else ``data/event_types.csv`` beside the package or cwd."""
    env = os.environ.get("OPSWB_TYPES_FILE")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "data" / "event_types.csv",
                   Path("data/event_types.csv")]
    return next((p for p in candidates if p.is_file()), None)


def seed_rows() -> list[tuple[str, str]]:
    """``(tenant_id, event_type)`` rows of the seed file (global: tenant ''), or the
    built-in defaults when there is no file or it names no type."""
    path = seed_file()
    rows: list[tuple[str, str]] = []
    if path is not None:
        with open(path, newline="") as f:
            for rec in csv.DictReader(f):
                et = (rec.get("event_type") or "").strip()
                if et:
                    rows.append(((rec.get("tenant_id") or "").strip(), et))
    return rows or [("", t) for t in BUILTIN]

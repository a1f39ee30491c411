"""Ops Console responsiveness on a large store: time-to-interactive and click-to-diff.

    python benchmarks/console.py [--n 1000000] [--store PATH] [--pages 3] [--clicks 10]
                                 [--preheat]

Builds a store of N synthetic raws (``opswb.testing.synth``; skipped with ``--store``), serves
the console with Voilà exactly as ``opswb console`` does, and drives Debian's Chromium:

  time-to-interactive  navigation start → the queue list holds rows (target ≤ 3 s)
  click-to-diff        picking a conflict in the queue → its FIRST/LAST diff drawn
                       (target ≤ 300 ms)
  kernel-side          the same click measured inside Python, without the browser

Prints figures; asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import opswb
from opswb.console.launch import console_url, start_console, stop_console, wait_until_ready

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
FIND = ("id => Array.from(document.querySelectorAll('.opswb-queue-list option'))"
        ".findIndex(o => o.textContent.startsWith('#' + id + '\\u00a0'))")


def build_store(workdir: Path, n: int, seed: int) -> str:
    """A store holding ``n`` synthetic raws."""
    from opswb.testing.synth import write_jsonl

    path = workdir / "events.jsonl"
    t0 = time.perf_counter()
    write_jsonl(path, n, seed=seed)
    db = str(workdir / "opswb.duckdb")
    wb = opswb.connect(db)
    wb.init()
    summary = wb.ingest(str(path))
    print(f"store: {summary['received']:,} raws ingested in {time.perf_counter() - t0:.1f} s "
          f"({summary['exceptions_opened']:,} exceptions opened)")
    return db


def conflicts_on_first_page(wb: Any, limit: int) -> list[tuple[str, str]]:
    """(exception id, FIRST raw id) of conflicts the console lists on its first page."""
    out = []
    for e in wb.list_exceptions(limit=50)["items"]:
        if e["reason_code"] == "IDEMPOTENCY_CONFLICT":
            d = wb.exception(e["exception_id"])
            if d["first"]:
                out.append((e["exception_id"], d["first"]["raw_id"]))
    return out[:limit]


def kernel_side(wb: Any, targets: list[tuple[str, str]]) -> tuple[list[float], list[float]]:
    """Milliseconds from picking a row to its diff drawn, and to the whole click handled
    (the resolve form's replay preview comes after the diff), inside Python."""
    from opswb.console.panels import build_console

    console = build_console(wb)
    drawn: list[float] = []
    render = console.diff.render
    console.diff.render = lambda: (render(), drawn.append(time.perf_counter()))  # type: ignore
    to_diff, whole = [], []
    for ex_id, _ in targets:
        t0 = time.perf_counter()
        console.queue.show_exception(ex_id)
        whole.append((time.perf_counter() - t0) * 1000)
        to_diff.append((drawn[-1] - t0) * 1000)
    return to_diff, whole


def browser_side(url: str, pages: int, targets: list[tuple[str, str]]) -> tuple[list, list]:
    """Seconds to interactive per page load; milliseconds per click-to-diff."""
    from playwright.sync_api import sync_playwright

    tti, clicks = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for i in range(pages):
            page = browser.new_page(viewport={"width": 1500, "height": 1200})
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_selector(".opswb-queue-list option", timeout=60_000)
            tti.append(time.perf_counter() - t0)
            if i == pages - 1:
                for ex_id, first_raw in targets:
                    index = page.evaluate(FIND, ex_id)
                    t0 = time.perf_counter()
                    page.select_option(".opswb-queue-list select", index=index)
                    page.wait_for_function(
                        "raw => { const t = document.querySelector("
                        "'.opswb-diff-left .opswb-diff-title');"
                        " return t && t.textContent.includes('raw #' + raw + ' '); }",
                        arg=first_raw, timeout=10_000)
                    clicks.append((time.perf_counter() - t0) * 1000)
            page.close()
        browser.close()
    return tti, clicks


def report(name: str, values: list[float], unit: str, target: float) -> None:
    if not values:
        print(f"{name:<22} no samples")
        return
    med = statistics.median(values)
    verdict = "meets" if med <= target else "MISSES"
    print(f"{name:<22} median {med:8.2f} {unit}  min {min(values):8.2f}  max "
          f"{max(values):8.2f}  (n={len(values)}; target ≤ {target:g} {unit}: {verdict})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="raws in the generated store")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--store", help="use this existing store instead of generating one")
    ap.add_argument("--pages", type=int, default=3, help="page loads to time")
    ap.add_argument("--clicks", type=int, default=10, help="conflicts to click")
    ap.add_argument("--port", type=int, default=8877)
    ap.add_argument("--preheat", action="store_true", help="Voilà pre-heated kernels")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="opswb-console-bench-") as tmp:
        db = a.store or build_store(Path(tmp), a.n, a.seed)
        wb = opswb.connect(db)
        print(f"health: {wb.health()['raw_events']:,} raws, "
              f"{wb.health()['exceptions_open']:,} open exceptions")
        targets = conflicts_on_first_page(wb, a.clicks)
        t0 = time.perf_counter()
        wb.exception(targets[0][0]) if targets else None
        print(f"wb.exception (one call): {(time.perf_counter() - t0) * 1000:.1f} ms")
        kernel, whole = kernel_side(wb, targets)
        with open(Path(tmp) / "voila.log", "wb") as log:
            proc = start_console(db, a.port, log=log, preheat=a.preheat)
            try:
                wait_until_ready(a.port, proc=proc)
                tti, clicks = browser_side(console_url(a.port), a.pages, targets)
            finally:
                stop_console(proc)
    report("time-to-interactive", tti, "s", 3.0)
    report("click-to-diff", clicks, "ms", 300.0)
    report("kernel: click→diff", kernel, "ms", 300.0)
    report("kernel: whole click", whole, "ms", 300.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

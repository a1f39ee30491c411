"""Ops Console responsiveness on a large store: time to interactive, click to diff, and
the failure-groups page over the API.

    python benchmarks/console.py [--scale N] [--unknown U] [--synth N] [--store PATH]
                                 [--pages 3] [--clicks 10] [--requests 200] [--no-preheat]
                                 [--baseline-tree DIR]

The store (default ``--scale 100000``): ``opswb.testing.scale.write_scale_events`` — N
arrivals, U of them one failure group of open ``UNKNOWN_EVENT_TYPE`` exceptions (the
browser tests' store); ``--synth N`` generates the older mix instead, ``--store`` uses an
existing one. The console is served with Voilà exactly as ``opswb console`` does and
driven by Debian's Chromium:

  time-to-interactive  navigation start → the queue table holds rows (target ≤ 3 s);
                       baseline: the same console over a 1k-arrival store, same run;
                       with its phases (first byte of Voilà's answer, the HTML streamed
                       to its end as the notebook ran, DOM ready) and the websocket's
                       widget traffic; ``--baseline-tree`` also serves another source
                       tree's console (say main's), and with preheating (the default, as
                       ``opswb console``) one without; page loads take turns among them
  click-to-diff        a click on a conflict's #id → its FIRST/LAST diff drawn (≤ 300 ms)
  kernel-side          the same click measured inside Python, without the browser
  API                  ``GET /v1/exceptions/groups`` p50/p99 (target ≤ 100 ms) against
                       ``GET /v1/health`` and the plain queue page in the same run, and
                       the queue sorted by key and searched

Prints figures and CPU seconds; asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import opswb
from benchmarks.api import free_port, start_server, stats, timed
from opswb.console.launch import (
    PREHEAT,
    console_url,
    start_console,
    stop_console,
    wait_until_ready,
)

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
ROWS = ".opswb-row-view:visible"  # the queue table's #id buttons, once rows are drawn


def build_store(workdir: Path, n: int, seed: int, unknown: int | None = None) -> str:
    """A store holding ``n`` raws: the scale stream when ``unknown`` is given (that many
    in one failure group), else the synthetic mix."""
    from opswb.testing.scale import write_scale_events
    from opswb.testing.synth import write_jsonl

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "events.jsonl"
    t0 = time.perf_counter()
    if unknown is not None:
        write_scale_events(path, n, unknown, seed)
    else:
        write_jsonl(path, n, seed=seed)
    db = str(workdir / "opswb.duckdb")
    wb = opswb.connect(db)
    wb.init()
    summary = wb.ingest(str(path))
    print(f"store: {summary['received']:,} raws ingested in {time.perf_counter() - t0:.1f} s "
          f"({summary['exceptions_opened']:,} exceptions opened)")
    return db


def conflicts_on_first_page(wb: Any, limit: int) -> list[tuple[str, str]]:
    """(exception id, FIRST raw id) of the conflicts on the queue's first page when it is
    filtered to conflicts (as an operator looking at conflicts sees it)."""
    out = []
    for e in wb.list_exceptions(limit=25, reason_code="IDEMPOTENCY_CONFLICT")["items"]:
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


# Where a page load's time goes, from the browser's navigation timing (ms after the
# navigation started): Voilà's HTML answer begins (responseStart), ends (responseEnd: the
# notebook has run, Voilà streams the page as it executes), the DOM is parsed.
PHASES_JS = """() => { const n = performance.getEntriesByType('navigation')[0];
  return {first_byte: n.responseStart, html_done: n.responseEnd,
          dom_ready: n.domContentLoadedEventEnd}; }"""


def load_page(page: Any, url: str) -> dict:
    """Load the console once: seconds to interactive, the phases (s) and the widget
    traffic over the kernel's websocket (frames, kB, models in comm_open messages)."""
    traffic = {"frames": 0, "bytes": 0, "models": 0, "ws_first": 0.0, "ws_state": 0.0}

    def on_frame(payload: Any) -> None:
        text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
        traffic["frames"] += 1
        traffic["bytes"] += len(text)
        traffic["models"] += text.count('"model_name"')
        now = time.perf_counter() - t0
        traffic["ws_first"] = traffic["ws_first"] or now
        if text.count('"model_name"') > 10:  # the widgets' state, all in one message
            traffic["ws_state"] = now

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(ROWS, timeout=60_000)
    tti = time.perf_counter() - t0
    phases = {k: v / 1000 for k, v in page.evaluate(PHASES_JS).items()}
    return {"tti": tti, **phases, "kB": traffic["bytes"] / 1000, "frames": traffic["frames"],
            "models": traffic["models"], "ws_first": traffic["ws_first"],
            "ws_state": traffic["ws_state"]}


def click_to_diff(page: Any, targets: list[tuple[str, str]]) -> list[float]:
    """Milliseconds from a click on each conflict's ``#id`` to its diff drawn."""
    page.select_option(".opswb-filter-reason select", label="IDEMPOTENCY_CONFLICT")
    page.wait_for_selector(f"{ROWS}:text-is('#{targets[0][0]}')")
    clicks = []
    for ex_id, first_raw in targets:
        t0 = time.perf_counter()
        page.locator(f"{ROWS}:text-is('#{ex_id}')").click()
        page.wait_for_function(
            "raw => { const t = document.querySelector('.opswb-diff-left .opswb-diff-title');"
            " return t && t.textContent.includes('raw #' + raw + ' '); }",
            arg=first_raw, timeout=10_000)
        clicks.append((time.perf_counter() - t0) * 1000)
    return clicks


def browser_side(urls: dict[str, str], pages: int,
                 targets: list[tuple[str, str]]) -> tuple[dict[str, list], list]:
    """Page loads per console (``load_page``'s figures each), taking turns in a rotating
    order so that a change in the machine's load falls on all of them; milliseconds per
    click-to-diff on the first console."""
    from playwright.sync_api import sync_playwright

    loads: dict[str, list] = {name: [] for name in urls}
    clicks: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        names = list(urls)
        for i in range(pages):  # each round starts with the next console (a preheated
            # console starts its next kernel after a load, which slows the load after it)
            for name in names[i % len(names):] + names[:i % len(names)]:
                page = browser.new_page(viewport={"width": 1500, "height": 1200})
                loads[name].append(load_page(page, urls[name]))
                if i == pages - 1 and name == names[0] and targets:
                    clicks = click_to_diff(page, targets)
                page.close()
        browser.close()
    return loads, clicks


def console_run(consoles: dict[str, dict], workdir: Path, pages: int,
                targets: list) -> tuple:
    """Serve each console (name → ``db``, ``preheat``, ``tree``: a source tree whose
    notebook and package to run instead of this one) and drive them; (loads, clicks)."""
    procs, urls, logs = [], {}, []
    try:
        for name, c in consoles.items():
            port = free_port()
            logs.append(open(workdir / f"voila-{port}.log", "wb"))  # noqa: SIM115
            env, kw = {}, {}
            if c.get("tree"):
                env["PYTHONPATH"] = str(c["tree"])
                kw["notebook"] = Path(c["tree"]) / "notebooks" / "console.ipynb"
            procs.append(start_console(c["db"], port, env=env, log=logs[-1],
                                       preheat=c.get("preheat", False), **kw))
            wait_until_ready(port, proc=procs[-1])
            urls[name] = console_url(port)
        return browser_side(urls, pages, targets)
    finally:
        for proc in procs:
            stop_console(proc)
        for log in logs:
            log.close()


def api_run(db: str, workdir: Path, requests: int) -> None:
    """Groups page latency over HTTP against health and the plain queue page."""
    import httpx

    proc, url, token = start_server(Path(db), workdir / "serve.log")
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                          timeout=60) as c:
            print(f"API over {url} ({requests} sequential requests each):")
            for name, path, target in (
                    ("GET /v1/health (baseline)", "/v1/health", None),
                    ("GET /v1/exceptions (queue)", "/v1/exceptions?limit=25", None),
                    ("GET /v1/exceptions/groups", "/v1/exceptions/groups", 100.0),
                    ("queue sorted by key", "/v1/exceptions?limit=25&sort=key", None),
                    ("queue sorted by -tenant", "/v1/exceptions?limit=25&sort=-tenant", None),
                    ("queue searched (q=)", "/v1/exceptions?limit=25&q=payout-00012", None)):
                stats(name, timed(c, "GET", [path] * requests), target)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def report(name: str, values: list[float], unit: str, target: float) -> None:
    if not values:
        print(f"{name:<22} no samples")
        return
    med = statistics.median(values)
    verdict = "meets" if med <= target else "MISSES"
    print(f"{name:<22} median {med:8.2f} {unit}  min {min(values):8.2f}  max "
          f"{max(values):8.2f}  (n={len(values)}; target ≤ {target:g} {unit}: {verdict})")


def phases(name: str, loads: list[dict]) -> None:
    """Time to interactive and its phases, medians over the page loads."""
    report(name, [x["tti"] for x in loads], "s", 3.0)
    if loads:
        med = {k: statistics.median(x[k] for x in loads) for k in loads[0]}
        print(f"{'':<22} first byte {med['first_byte']:.2f} s, HTML done "
              f"{med['html_done']:.2f} s, DOM ready {med['dom_ready']:.2f} s, kernel "
              f"websocket's first message {med['ws_first']:.2f} s, widget state "
              f"{med['ws_state']:.2f} s; websocket "
              f"{med['frames']:.0f} frames, {med['kB']:.0f} kB, {med['models']:.0f} model "
              "mentions")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=100_000,
                    help="arrivals in the scale store (write_scale_events; the default)")
    ap.add_argument("--unknown", type=int, default=20_000, help="the scale store's one group")
    ap.add_argument("--synth", type=int, help="use the synthetic mix of this many raws instead")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--store", help="use this existing store instead of generating one")
    ap.add_argument("--pages", type=int, default=3, help="page loads to time")
    ap.add_argument("--clicks", type=int, default=10, help="conflicts to click")
    ap.add_argument("--requests", type=int, default=200, help="API requests per endpoint")
    ap.add_argument("--preheat", action=argparse.BooleanOptionalAction, default=PREHEAT,
                    help="Voilà pre-heated kernels, as `opswb console` has them by default "
                         "(then also a console without, same run)")
    ap.add_argument("--baseline-tree", type=Path,
                    help="also serve the console of this source tree (e.g. main's, from "
                         "`git archive REV | tar -x -C DIR`) over the same store, same run")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="opswb-console-bench-") as tmp:
        work = Path(tmp)
        db = a.store or (build_store(work / "big", a.synth, a.seed) if a.synth else
                         build_store(work / "big", a.scale, a.seed, a.unknown))
        small = build_store(work / "small", 1_000, a.seed, 200)  # the baseline's store
        wb = opswb.connect(db)
        h = wb.health()
        print(f"health: {h['raw_events']:,} raws, {h['exceptions_open']:,} open exceptions")
        targets = conflicts_on_first_page(wb, a.clicks)
        kernel, whole = kernel_side(wb, targets)
        consoles = {"this tree": {"db": db, "preheat": a.preheat},
                    "1k-arrival store": {"db": small, "preheat": a.preheat}}
        if a.baseline_tree:
            consoles["baseline tree"] = {"db": db, "tree": a.baseline_tree}
        if a.preheat:
            consoles["not preheated"] = {"db": db}
        loads, clicks = console_run(consoles, work, a.pages, targets)
        for name, figures in loads.items():
            phases(f"TTI, {name}", figures)
        report("click-to-diff", clicks, "ms", 300.0)
        report("kernel: click→diff", kernel, "ms", 300.0)
        report("kernel: whole click", whole, "ms", 300.0)
        if a.requests:
            api_run(db, work, a.requests)
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"CPU seconds: this process {me.ru_utime + me.ru_stime:.1f}, children "
          f"(Voilà, kernels, serve, Chromium) {kids.ru_utime + kids.ru_stime:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

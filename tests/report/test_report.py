"""The papermill health report: real kernel, real store with a history, offline HTML.

The fixture store gets a history of several days: the engine stamps ``now()``, so after
building it through the workbench the test moves those stamps back in time (the only way
to get ages and days without waiting for them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from bs4 import BeautifulSoup

import opswb
from opswb.report.run import report_paths, run_report
from tests.support.people import PeopleWorkbench

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "health_report.ipynb"
XSS = "<img src=x onerror=alert(1)>"
NOW = datetime.now(UTC).replace(microsecond=0)
# Hours ahead of the import: each run's own snapshot (stamped with the real now()) must
# fall before AS_OF however long the suite takes to reach these tests (a loaded 2-core
# machine once took 40 minutes, past a half-hour margin).
AS_OF = NOW + timedelta(hours=3)
# Hours before AS_OF at which each exception was opened / resolved (None: still open).
HISTORY = {
    "E1": (50.0, 26.0),   # acme conflict, override with a patch: 24 h to resolve
    "E2": (80.0, None),   # acme conflict, open: the oldest (> 3 d)
    "E3": (30.0, 29.0),   # acme unknown type: resolved, reopened, resolved again: 1 h
    "E4": (10.0, 6.0),    # globex conflict, override without a patch: 4 h
    "E5": (2.0, 1.5),     # globex unknown type, no replay: 0.5 h
    "E6": (0.75, None),   # invalid, no tenant, open (< 1 h)
    "E7": (10.0, None),   # invalid for globex, open (4-24 h)
}
SNAPSHOT_AGES = (72.0, 48.0, 24.0)


def _ev(tenant: str, key: str, etype: str, amount: int, source: str = "billing-api") -> dict:
    return {"tenant_id": tenant, "idempotency_key": key, "event_type": etype,
            "source": source, "payload": {"amount": amount, "currency": "EUR"}}


def _build_history(path: str) -> dict[str, str]:
    """Ingest, resolve and snapshot through the workbench; return name -> exception id."""
    wb = opswb.connect(path)
    wb.init()
    wb.ingest([
        _ev("acme", "a1", "payment.captured", 100), _ev("acme", "a2", "payment.captured", 200),
        _ev("acme", "a3", "payment.chargeback", 1), _ev("acme", "a4", "order.created", 5),
        _ev("acme", "a4", "order.created", 5),                     # duplicate
        _ev("globex", "g1", "payment.captured", 300, "erp-sync"),
        _ev("globex", "g2", "payout.settled", 7, "erp-sync"),
        _ev("acme", "a1", "payment.captured", 150),                # conflict E1
        _ev("acme", "a2", "payment.captured", 250),                # conflict E2
        _ev("globex", "g1", "payment.captured", 350, "partner-webhook"),  # conflict E4
        "not an event",                                            # invalid E6
        {"tenant_id": "globex", "idempotency_key": "g9"},          # invalid E7
    ])
    ex = wb.exceptions()
    ids = {}
    for _, row in ex.iterrows():
        name = {("acme", "a1"): "E1", ("acme", "a2"): "E2", ("acme", "a3"): "E3",
                ("globex", "g1"): "E4", ("globex", "g2"): "E5",
                ("globex", "g9"): "E7"}.get((row.tenant_id, row.idempotency_key), "E6")
        ids[name] = row.exception_id
    assert sorted(ids) == sorted(HISTORY)
    wb.record_snapshot()                                           # 7 open
    wb.resolve(ids["E1"], action="override_and_replay", actor="ann",
               resolution_notes="<b>kept</b> the later amount",
               override_patch={"payload": {"amount": 175, "memo": XSS}})
    wb.resolve(ids["E3"], action="mark_resolved_no_replay", actor="bob",
               resolution_notes="chargebacks go elsewhere")
    wb.record_snapshot()                                           # 5 open
    wb.reopen(ids["E3"], actor="carol", resolution_notes="backlog item done")
    wb.resolve(ids["E3"], action="mark_resolved_no_replay", actor="bob",
               resolution_notes="still elsewhere")
    wb.resolve(ids["E4"], action="override_and_replay", actor="ann",
               resolution_notes="partner resent")
    wb.resolve(ids["E5"], action="mark_resolved_no_replay", actor="ann",
               resolution_notes="payouts are not ours")
    wb.record_snapshot()                                           # 3 open
    return ids


def _age_history(path: str, ids: dict[str, str]) -> None:
    """Move the engine's now() stamps back to the planned history."""
    con = duckdb.connect(path)
    try:
        for name, (opened, resolved) in HISTORY.items():
            ex_id = int(ids[name])
            con.execute("UPDATE exceptions SET created_at = ? WHERE exception_id = ?",
                        [AS_OF - timedelta(hours=opened), ex_id])
            if resolved is not None:
                at = AS_OF - timedelta(hours=resolved)
                con.execute("UPDATE exceptions SET resolved_at = ? WHERE exception_id = ?",
                            [at, ex_id])
                con.execute("UPDATE audit_log SET created_at = ? WHERE exception_id = ?",
                            [at, ex_id])
        taken = [r[0] for r in con.execute(
            "SELECT taken_at FROM health_snapshots ORDER BY taken_at").fetchall()]
        for t, hours in zip(taken, SNAPSHOT_AGES):
            con.execute("UPDATE health_snapshots SET taken_at = ? WHERE taken_at = ?",
                        [AS_OF - timedelta(hours=hours), t])
    finally:
        con.close()


@pytest.fixture(scope="module")
def history_db(tmp_path_factory) -> str:
    """A store with seven exceptions, five decisions and three snapshots over four days."""
    path = str(tmp_path_factory.mktemp("report") / "opswb.duckdb")
    ids = _build_history(path)
    _age_history(path, ids)
    return path


@pytest.fixture(scope="module")
def breached(history_db, tmp_path_factory) -> dict:
    """One `run_report` with thresholds that the history breaches."""
    out = tmp_path_factory.mktemp("reports")
    code = run_report(history_db, str(out), AS_OF.isoformat(),
                      {"max_open": "2", "max_oldest_open_hours": "72", "max_invalid": "5"})
    paths = report_paths(out, AS_OF)
    return {"code": code, "paths": paths,
            "summary": json.loads(paths["json"].read_text(encoding="utf-8"))}


def _snapshot_count(path: str) -> int:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute("SELECT count(*) FROM health_snapshots").fetchone()[0]
    finally:
        con.close()


def test_breach_exits_2_after_writing_both_files(breached):
    assert breached["code"] == 2
    for kind in ("ipynb", "html", "json"):
        assert breached["paths"][kind].stat().st_size > 0, kind
    s = breached["summary"]
    assert s["breached"] is True
    assert s["breaches"] == [
        "3 exceptions are open, above the limit of 2 (max_open).",
        (f"The oldest open exception ({s['oldest_open_exception_id']}, IDEMPOTENCY_CONFLICT,"
         " tenant acme) has been open for 80.0 hours, above the limit of 72 hours"
         " (max_oldest_open_hours)."),
    ]
    assert s["thresholds"] == {"max_open": 2.0, "max_oldest_open_hours": 72.0,
                               "max_invalid": 5.0}


def test_summary_numbers_match_the_history(breached):
    s = breached["summary"]
    assert s["as_of"] == AS_OF.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert s["exceptions_open"] == 3 and s["health"]["exceptions_open"] == 3
    assert s["raw_events"] == 12
    assert s["idempotency"] == {"processed": 3, "quarantined": 1, "ignored": 2}
    assert s["oldest_open_hours"] == 80.0
    assert s["aging"] == {"<1h": 1, "1-4h": 0, "4-24h": 1, "1-3d": 0, ">3d": 1}
    assert s["open_by_reason"] == {"INVALID_EVENT": 2, "IDEMPOTENCY_CONFLICT": 1}
    assert s["open_by_tenant"] == {"(none)": 1, "acme": 1, "globex": 1}
    assert s["decisions"] == {"mark_resolved_no_replay": 3, "override_and_replay": 2,
                              "reopen": 1}
    assert s["decisions_by_actor"] == {"ann": 3, "bob": 2}
    assert s["overrides"] == 2 and s["override_share"] == 0.4
    # Times to resolve: 24, 1, 4 and 0.5 hours.
    assert s["median_hours_to_resolve"] == 2.5 and s["p90_hours_to_resolve"] == 18.0
    assert s["opened_in_window"] == 7 and s["resolved_in_window"] == 4
    opened = Counter((AS_OF - timedelta(hours=o)).strftime("%Y-%m-%d")
                     for o, _ in HISTORY.values())
    resolved = Counter((AS_OF - timedelta(hours=r)).strftime("%Y-%m-%d")
                       for _, r in HISTORY.values() if r is not None)
    by_day = {d["day"]: (d["opened"], d["resolved"]) for d in s["opened_resolved_by_day"]}
    assert len(by_day) == 31
    assert {d: v for d, v in by_day.items() if v != (0, 0)} == {
        d: (opened[d], resolved[d]) for d in set(opened) | set(resolved)}
    # Three snapshots from the history plus the one this run recorded.
    assert s["snapshots"] == 4


def _outputs(nb_path: Path) -> dict[str, str]:
    """The text/html of each code cell's outputs, by cell id."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    found = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            found[cell["id"]] = "".join("".join(o.get("data", {}).get("text/html", ""))
                                        for o in cell.get("outputs", []))
    return found


def _table(markup: str, index: int = 0) -> list[list[str]]:
    table = BeautifulSoup(markup, "html.parser").select("table.opswb-table")[index]
    return [[c.get_text() for c in tr.find_all(["th", "td"])] for tr in table.find_all("tr")]


def test_notebook_outputs_show_trend_decisions_and_escaped_overrides(breached):
    out = _outputs(breached["paths"]["ipynb"])
    trend = _table(out["trend"])
    assert trend[0][:3] == ["taken_at", "exceptions_open", "raw_events"]
    assert [int(r[1]) for r in trend[1:]] == [3, 3, 5, 7]          # newest first
    assert out["trend"].count("data:image/png;base64,") == 1
    decisions = {r[0]: r[1:] for r in _table(out["resolutions"], 1)}
    assert decisions["ann"] == ["1", "2", "0", "3"]
    assert decisions["carol"] == ["0", "0", "1", "1"]
    assert decisions["(all)"] == ["3", "2", "1", "6"]
    overrides = _table(out["resolutions"], 2)
    assert len(overrides) == 3 and overrides[0][1] == "actor"
    assert XSS not in out["resolutions"]                             # escaped, not markup
    assert '"memo": "' + XSS.replace("<", "&lt;").replace(">", "&gt;") in out["resolutions"]
    assert "Threshold breached" in out["load"]


def test_each_run_records_a_snapshot(history_db, breached, tmp_path):
    before = _snapshot_count(history_db)
    env = {**os.environ, "OPSWB_DB": history_db}
    proc = subprocess.run(
        [sys.executable, "-m", "opswb.cli", "report", "--out", str(tmp_path),
         "--as-of", AS_OF.isoformat(), "-p", "max_open", "10"],
        cwd=ROOT, env=env, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _snapshot_count(history_db) == before + 1
    s = json.loads(report_paths(tmp_path, AS_OF)["json"].read_text(encoding="utf-8"))
    assert s["breached"] is False and s["breaches"] == []
    assert s["snapshots"] == 5


def test_plain_papermill_for_one_tenant(history_db, tmp_path):
    out_json = tmp_path / "globex.json"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "papermill"), str(NOTEBOOK),
         str(tmp_path / "out.ipynb"), "-p", "db", history_db, "-p", "tenant_id", "globex",
         "-p", "as_of", AS_OF.isoformat(), "-p", "max_open", "1",
         "-p", "record_snapshot", "False", "-p", "out_json", str(out_json)],
        cwd=tmp_path, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(out_json.read_text(encoding="utf-8"))
    assert s["tenant_id"] == "globex"
    assert s["exceptions_open"] == 1 and s["open_by_reason"] == {"INVALID_EVENT": 1}
    assert s["aging"]["4-24h"] == 1 and s["oldest_open_hours"] == 10.0
    assert s["decisions"] == {"mark_resolved_no_replay": 1, "override_and_replay": 1}
    assert s["override_share"] == 0.5 and s["breached"] is False


def test_failed_run_leaves_its_notebook_and_exits_1(tmp_path):
    missing = tmp_path / "nowhere.duckdb"
    code = run_report(str(missing), str(tmp_path / "out"), AS_OF.isoformat())
    paths = report_paths(tmp_path / "out", AS_OF)
    assert code == 1
    assert "FileNotFoundError" in paths["ipynb"].read_text(encoding="utf-8")
    assert not paths["json"].exists() and not missing.exists()


@pytest.mark.browser
def test_html_opens_offline_with_charts_and_tables(breached, browser):
    html_path = breached["paths"]["html"]
    markup = html_path.read_text(encoding="utf-8")
    assert "rv.load(" not in markup and "import reportview" not in markup   # no code cells
    attempted: list[str] = []

    def guard(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.route("**/*", guard)
        page = context.new_page()
        page.goto(html_path.as_uri(), wait_until="load")
        images = page.eval_on_selector_all(
            "img.opswb-chart", "els => els.map(e => [e.src.slice(0, 22), e.naturalWidth,"
            " e.getBoundingClientRect().height])")
        assert len(images) == 3
        for src, width, height in images:
            assert src == "data:image/png;base64," and width > 0 and height > 0
        assert page.locator("table.opswb-table").count() >= 10
        banner = page.locator(".opswb-breach").inner_text()
        assert "max_open" in banner and "max_oldest_open_hours" in banner
        assert XSS in page.locator("body").inner_text()           # shown as text
        assert page.locator("img[src='x']").count() == 0
        shot = ROOT / "test-artifacts" / "report.png"
        shot.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
    finally:
        context.close()
    assert attempted == []
    docs = ROOT / "docs" / "img"
    docs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, docs / "report.png")


def test_report_over_a_serve_url(serve_url, tmp_path, monkeypatch):
    url, token = serve_url
    wb = PeopleWorkbench(url, token)  # dana decides with her own token (SPEC §15)
    wb.ingest([_ev("acme", "s1", "payment.captured", 1), _ev("acme", "s1", "payment.captured", 2),
               _ev("acme", "s2", "payment.captured", 3), _ev("acme", "s2", "payment.captured", 4),
               _ev("globex", "s3", "payment.chargeback", 5), "not an event"])
    first = wb.exceptions()["exception_id"].iloc[0]
    wb.resolve(first, action="override_and_replay", actor="dana", resolution_notes="ok",
               override_patch={"payload": {"amount": 9}})
    wb.record_snapshot()
    # The kernel inherits the token from the environment; it is never a parameter.
    monkeypatch.setenv("OPSWB_API_TOKEN", token)
    code = run_report(url, str(tmp_path), None, {"max_open": "3"})
    paths = list(tmp_path.glob("health_*.json"))
    assert code == 0 and len(paths) == 1
    s = json.loads(paths[0].read_text(encoding="utf-8"))
    assert s["store"] == url and token not in paths[0].read_text(encoding="utf-8")
    assert s["exceptions_open"] == 3 and s["raw_events"] == 6
    assert s["open_by_reason"] == {"IDEMPOTENCY_CONFLICT": 1, "INVALID_EVENT": 1,
                                   "UNKNOWN_EVENT_TYPE": 1}
    assert s["decisions"] == {"override_and_replay": 1} and s["override_share"] == 1.0
    assert s["snapshots"] == 2 and s["breached"] is False
    assert paths[0].with_suffix(".html").stat().st_size > 0
    assert token not in paths[0].with_suffix(".ipynb").read_text(encoding="utf-8")


def test_html_loads_nothing_from_the_network_unlike_the_stock_template(breached):
    import nbformat
    from nbconvert import HTMLExporter

    from opswb.report.run import remote_references

    assert remote_references(breached["paths"]["html"].read_text(encoding="utf-8")) == []
    stock, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nbformat.read(str(breached["paths"]["ipynb"]), as_version=4))
    assert any("cdn" in ref for ref in remote_references(stock))     # what we strip


def _same_report(s: dict, expected: dict) -> None:
    """The same summary but for where it came from and the snapshots since recorded."""
    skip = {"store", "snapshots", "generated_at", "health"}
    assert {k: v for k, v in s.items() if k not in skip} == \
        {k: v for k, v in expected.items() if k not in skip}
    now = {"oldest_open_age_seconds"}  # measured at the run, not as of AS_OF
    assert {k: v for k, v in s["health"].items() if k not in now} == \
        {k: v for k, v in expected["health"].items() if k not in now}


def test_the_report_on_postgresql_directly_and_through_serve(history_db, breached, pg_url,
                                                             tmp_path, monkeypatch):
    """The history copied into PostgreSQL (``opswb copy``) reports the same figures,
    run against the database directly and through ``opswb serve --db postgresql://…``."""
    from tests.support.server import ServerProcess

    opswb.copy(history_db, pg_url)
    thresholds = {"max_open": "2", "max_oldest_open_hours": "72", "max_invalid": "5"}
    direct = tmp_path / "direct"
    assert run_report(pg_url, str(direct), AS_OF.isoformat(), thresholds) == 2
    s = json.loads(report_paths(direct, AS_OF)["json"].read_text(encoding="utf-8"))
    _same_report(s, breached["summary"])
    assert s["store"] == pg_url.replace("postgres@", "")  # no user or password shown
    server = ServerProcess(pg_url, tmp_path / "serve.log")
    try:
        url, token = server.wait()
        monkeypatch.setenv("OPSWB_API_TOKEN", token)
        served = tmp_path / "served"
        assert run_report(url, str(served), AS_OF.isoformat(), thresholds) == 2
    finally:
        server.stop()
    _same_report(json.loads(report_paths(served, AS_OF)["json"].read_text(encoding="utf-8")),
                 breached["summary"])

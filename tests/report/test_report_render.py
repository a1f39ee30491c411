"""The report's words and charts as a person reads them (issue 17's report fixes), on a
real store; sections are rendered straight from ``opswb.report.render``."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from matplotlib.figure import Figure

from opswb.report import render
from opswb.report.data import build_report
from tests.helpers import ev

NOTE = {"actor": "ann", "resolution_notes": "checked"}


@pytest.fixture
def shown(monkeypatch):
    """The HTML each section displays, in order."""
    out: list[str] = []
    monkeypatch.setattr(render, "_display_html", out.append)
    return out


def test_counts_agree_after_a_reopen(local_wb, shown):
    local_wb.ingest_batch([ev(f"u{i}", {"a": i}, "invoice.paid") for i in range(3)])
    ids = [e["exception_id"] for e in local_wb.list_exceptions()["items"]]
    for i in ids[:2]:
        local_wb.resolve(i, action="mark_resolved_no_replay", **NOTE)
    local_wb.reopen(ids[0], **NOTE)
    local_wb.resolve(ids[0], action="mark_resolved_no_replay", **NOTE)
    report = build_report(local_wb)
    render.show_resolutions(report)
    text = shown[0]
    assert "0 of 3 resolutions were override_and_replay" in text
    assert "with 1 reopen, 4 decisions in all" in text
    assert "None" not in text


def test_health_figures_have_names_for_people(local_wb, shown):
    report = build_report(local_wb)
    render.show_health(report)
    assert "Keys quarantined" in shown[0] and "Arrivals stored" in shown[0]
    assert "idempotency." not in shown[0]
    render.show_resolutions(report)  # nothing resolved: no "None" for the hours
    assert "None" not in shown[1]


def test_missing_values_show_a_dash():
    df = pd.DataFrame({"action": ["all"], "median_hours": [None]}, dtype=object)
    html = render.table_html(df)
    assert "None" not in html and "—" in html


def test_one_snapshot_does_not_spread_the_axis_over_years():
    ax = Figure().subplots()
    x = pd.Series(pd.to_datetime(["2026-12-01T10:00:00"]))
    ax.plot(x, [3])
    render._pad_time_axis(ax, x)
    low, high = ax.get_xlim()  # in days
    assert 0 < high - low <= 1 / 24 * 1.01


def test_report_help_names_the_parameters():
    r = subprocess.run([sys.executable, "-m", "opswb.cli", "report", "--help"],
                       capture_output=True, text=True, check=False)
    for name in ("-p NAME VALUE", "max_open", "max_oldest_open_hours", "max_invalid",
                 "tenant_id", "since"):
        assert name in r.stdout

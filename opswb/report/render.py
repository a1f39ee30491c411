"""Rendering for the health report notebook: static HTML tables and PNG charts.

Everything shown is computed by ``opswb.report.data``; these functions only draw it. The
output must read offline in a plain HTML file, so there are no widgets and no scripts:
tables are escaped HTML, charts are matplotlib PNGs embedded as ``data:`` URIs (with the
PNG also in the output bundle for notebook viewers).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd

from opswb.report.data import ReportData, build_report, iso, summary_json

_CSS = """
<style>
.opswb-report { font-family: system-ui, sans-serif; }
.opswb-banner { padding: .6em 1em; border-radius: 4px; margin: .4em 0; }
.opswb-breach { background: #fde8e8; border: 1px solid #c81e1e; color: #771d1d; }
.opswb-ok { background: #e6f4ea; border: 1px solid #2e7d32; color: #1b4d20; }
.opswb-meta { color: #555; font-size: 90%; }
table.opswb-table { border-collapse: collapse; margin: .3em 0 1em 0; font-size: 90%; }
table.opswb-table th, table.opswb-table td { border: 1px solid #ccc; padding: 2px 8px; }
table.opswb-table th { background: #f2f2f2; text-align: left; }
table.opswb-table td { font-variant-numeric: tabular-nums; max-width: 28em; overflow-wrap: break-word; }
img.opswb-chart { max-width: 100%; height: auto; display: block; margin: .3em 0 1em 0; }
</style>
"""
_COLORS = {"exceptions_open": "#c81e1e", "processed": "#2e7d32", "quarantined": "#ef6c00",
           "ignored": "#757575", "opened": "#ef6c00", "resolved": "#1565c0", "open": "#c81e1e"}


# ---- loading ------------------------------------------------------------------------------

def load(db: str | None = None, as_of: Any = None, since: Any = None,
         tenant_id: str | None = None, max_open: Any = None,
         max_oldest_open_hours: Any = None, max_invalid: Any = None,
         record_snapshot: Any = True, out_json: str | None = None) -> ReportData:
    """Connect, record this run's health snapshot, compute the report, write the JSON."""
    import opswb
    from opswb.store.config import default_db

    target = str(db or default_db())
    is_url = "://" in target  # a serve or postgresql:// URL: its store answers
    if not is_url and not Path(target).exists():
        # Opening a missing path would create an empty store: a typo would report all-clear.
        raise FileNotFoundError(f"no opswb store at {target} (set db, or OPSWB_DB)")
    wb = opswb.connect(target)
    if _truthy(record_snapshot):
        wb.record_snapshot()
    report = build_report(wb, as_of=as_of, since=since, tenant_id=tenant_id or None,
                          thresholds={"max_open": max_open,
                                      "max_oldest_open_hours": max_oldest_open_hours,
                                      "max_invalid": max_invalid})
    report.extra["store"] = _store_label(target)
    if out_json:
        path = Path(out_json)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = summary_json(report)
        body["store"] = report.extra["store"]
        path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off", "none")
    return bool(value)


def _store_label(target: str) -> str:
    # A URL may carry credentials in its userinfo part; never print them.
    if "@" in target and "://" in target:
        scheme, rest = target.split("://", 1)
        return f"{scheme}://{rest.split('@', 1)[1]}"
    return target


# ---- primitives ---------------------------------------------------------------------------

def _display_html(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(markup))


def table_html(df: pd.DataFrame, empty: str = "nothing to show") -> str:
    """A DataFrame as a static, escaped HTML table (or an escaped note when empty)."""
    if df.empty:
        return f'<p class="opswb-meta">{html.escape(empty)}</p>'
    # A missing value in a column of Python objects would print as "None": show a dash,
    # as na_rep does for numbers.
    df = df.assign(**{str(c): df[c].where(df[c].notna(), "—")
                      for c in df.columns if df[c].dtype == object})
    return df.to_html(index=False, escape=True, border=0, na_rep="—",
                      classes="opswb-table", float_format=lambda v: f"{v:,.2f}")


def chart_png(fig: Any) -> bytes:
    """A matplotlib Figure rendered to PNG bytes with the Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def show_chart(fig: Any, alt: str) -> None:
    """Display a figure as an embedded PNG (HTML ``img`` with a data URI, plus image/png)."""
    from IPython.display import display

    data = base64.b64encode(chart_png(fig)).decode("ascii")
    markup = (f'<img class="opswb-chart" alt="{html.escape(alt)}" '
              f'src="data:image/png;base64,{data}"/>')
    display({"text/html": markup, "image/png": data, "text/plain": f"[chart: {alt}]"},
            raw=True)


def _figure(width: float = 9, height: float = 3.2) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


# ---- sections -----------------------------------------------------------------------------

def show_header(report: ReportData) -> None:
    """Title, scope and the threshold verdict in plain words, at the top of the report."""
    scope = f"tenant {report.tenant_id}" if report.tenant_id else "all tenants"
    meta = (f"as of {iso(report.as_of)} · window from {iso(report.since)} · {scope} · "
            f"store {report.extra.get('store', '?')}")
    parts = [_CSS, '<div class="opswb-report">', f'<p class="opswb-meta">{html.escape(meta)}</p>']
    if report.breaches:
        items = "".join(f"<li>{html.escape(b)}</li>" for b in report.breaches)
        parts.append(f'<div class="opswb-banner opswb-breach"><strong>Threshold breached'
                     f'</strong><ul>{items}</ul></div>')
    else:
        set_ = [f"{k} = {v:g}" for k, v in report.thresholds.items() if v is not None]
        text = ("All thresholds met (" + ", ".join(set_) + ")." if set_
                else "No thresholds set.")
        parts.append(f'<div class="opswb-banner opswb-ok">{html.escape(text)}</div>')
    parts.append("</div>")
    _display_html("".join(parts))


def show_health(report: ReportData) -> None:
    """The SPEC §8 figures (store-wide) and the open count in scope."""
    h, s = report.health, report.summary
    rows = [("Exceptions open", h["exceptions_open"]), ("Arrivals stored", h["raw_events"]),
            ("Keys processed", h["idempotency"]["processed"]),
            ("Keys quarantined (waiting on an open exception)",
             h["idempotency"]["quarantined"]),
            ("Keys ignored (resolved without replay)", h["idempotency"]["ignored"])]
    for key, label in (("arrivals_today", "Arrivals today (UTC)"),
                       ("duplicates_today", "Duplicates today (UTC)")):
        if key in h:
            rows.append((label, h[key]))
    rows.append(("Oldest open exception (hours)", "—" if s["oldest_open_hours"] is None
                 else f"{s['oldest_open_hours']:.1f}"))
    if report.tenant_id:
        rows.append((f"Exceptions open for tenant {report.tenant_id}", s["exceptions_open"]))
    df = pd.DataFrame(rows, columns=["figure", "value"]).astype({"value": "object"})
    _display_html(table_html(df))


def show_trend(report: ReportData) -> None:
    """Charts of exceptions_open and of the key states over the recorded snapshots."""
    snaps = report.snapshots
    if snaps.empty:
        _display_html(table_html(snaps, "No health snapshots recorded in this window yet."))
        return
    fig = _figure(9, 5.2)
    top, bottom = fig.subplots(2, 1, sharex=True)
    x = snaps["taken_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    marker = "o" if len(snaps) < 50 else None
    top.plot(x, snaps["exceptions_open"], color=_COLORS["exceptions_open"], marker=marker,
             label="exceptions_open")
    top.set_ylabel("open exceptions")
    top.set_ylim(bottom=0)
    for state in ("processed", "quarantined", "ignored"):
        bottom.plot(x, snaps[state], color=_COLORS[state], marker=marker, label=state)
    bottom.set_ylabel("keys")
    bottom.set_ylim(bottom=0)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    _pad_time_axis(bottom, x)
    fig.autofmt_xdate()
    top.set_title(f"Health snapshots ({len(snaps)}), UTC")
    show_chart(fig, "Trend of exceptions_open and key states over the health snapshots")
    last = snaps.tail(10).copy()
    last["taken_at"] = last["taken_at"].map(iso)
    _display_html(table_html(last.iloc[::-1]))


def _pad_time_axis(ax: Any, x: pd.Series) -> None:
    """Limits of a time axis around its points: with one snapshot (or several close
    together) matplotlib would otherwise spread the axis over years."""
    span = x.max() - x.min()
    pad = max(span * 0.05, pd.Timedelta(minutes=30))
    ax.set_xlim(x.min() - pad, x.max() + pad)


def show_per_day(report: ReportData) -> None:
    """Bars of exceptions opened and resolved per UTC day of the window."""
    days = report.per_day
    fig = _figure(9, 3.2)
    ax = fig.subplots()
    pos = range(len(days))
    ax.bar([p - 0.2 for p in pos], days["opened"], width=0.4, color=_COLORS["opened"],
           label="opened")
    ax.bar([p + 0.2 for p in pos], days["resolved"], width=0.4, color=_COLORS["resolved"],
           label="resolved")
    step = max(1, len(days) // 10)
    ax.set_xticks(list(pos)[::step], [d[5:] for d in days["day"]][::step], fontsize=8)
    ax.set_ylabel("exceptions")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Opened vs resolved per day (UTC)")
    show_chart(fig, "Exceptions opened and resolved per day")
    active = days[(days["opened"] > 0) | (days["resolved"] > 0)]
    _display_html(table_html(active.iloc[::-1].head(14),
                             "No exception opened or resolved in this window."))


def show_aging(report: ReportData) -> None:
    """Open exceptions by age bucket, and the oldest ones."""
    aging = report.aging
    fig = _figure(6, 2.8)
    ax = fig.subplots()
    bars = ax.bar(aging["age"], aging["open"], color=_COLORS["open"])
    ax.bar_label(bars, fontsize=8)
    ax.set_ylabel("open exceptions")
    ax.set_title(f"Age of open exceptions at {iso(report.as_of)}")
    show_chart(fig, "Open exceptions by age bucket")
    _display_html(table_html(aging) + "<p><strong>Oldest open</strong></p>"
                  + table_html(report.oldest_open, "No open exception."))


def show_breakdowns(report: ReportData) -> None:
    """Tables by tenant, reason code and source: open now, opened and resolved in window."""
    parts = []
    for title, df in (("By tenant", report.by_tenant), ("By reason code", report.by_reason),
                      ("By source", report.by_source)):
        parts.append(f"<p><strong>{html.escape(title)}</strong></p>"
                     + table_html(df, "No exceptions."))
    _display_html("".join(parts))


def show_resolutions(report: ReportData) -> None:
    """Time to resolve, decisions by action and actor, and the overrides with patches."""
    s = report.summary
    reopens = s["decisions"].get("reopen", 0)
    share = ("no resolution in this window" if s["override_share"] is None
             else f"{s['overrides']} of {sum(s['decisions_by_actor'].values())} resolutions "
                  f"were override_and_replay ({s['override_share']:.0%})")
    if reopens:  # the decisions table counts reopens too: say so, or the totals disagree
        share += (f"; with {reopens} reopen{'s' if reopens > 1 else ''}, "
                  f"{sum(s['decisions'].values())} decisions in all")
    if s["decisions_complete_since"] != s["since"]:
        share += (f" (decisions before {s['decisions_complete_since']} are beyond the audit "
                  "page and not counted)")
    parts = [f"<p>{html.escape(share[0].upper() + share[1:])}.</p>",
             "<p><strong>Time to resolve (hours)</strong></p>",
             table_html(report.resolution_times),
             "<p><strong>Decisions by actor and action</strong></p>",
             table_html(report.decisions, "No decisions in this window."),
             "<p><strong>Overrides and their patches</strong></p>",
             table_html(report.overrides, "No override_and_replay in this window.")]
    _display_html("".join(parts))


def show_all(report: ReportData) -> None:
    """Every section in order (for quick use in an analyst's own notebook)."""
    for fn in (show_header, show_health, show_trend, show_per_day, show_aging,
               show_breakdowns, show_resolutions):
        fn(report)

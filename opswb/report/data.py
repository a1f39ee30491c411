"""Everything the health report shows, computed from a workbench (local or remote).

The notebook ``notebooks/health_report.ipynb`` only renders what ``build_report`` returns;
``summary_json`` is the machine-readable part a scheduler keeps next to the HTML. Only
workbench methods are used (``health``, ``snapshots``, ``list_exceptions``, ``audit``), so
the same report runs over an embedded file and over an ``opswb serve`` URL.

``as_of`` is the report's clock: ages are measured against it and nothing that happened
after it is counted; ``since`` (default ``as_of`` minus 30 days) starts the window of the
trend, the per-day counts and the resolution analytics. Open counts and aging are about
the queue as it stands now, whatever the window.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from opswb.core.models import Action, ReasonCode

DEFAULT_WINDOW_DAYS = 30
AGING_BUCKETS = ("<1h", "1-4h", "4-24h", "1-3d", ">3d")
_AGING_EDGES_H = (1.0, 4.0, 24.0, 72.0)
_RESOLUTIONS = (Action.MARK_RESOLVED_NO_REPLAY.value, Action.OVERRIDE_AND_REPLAY.value)
_DECISIONS = _RESOLUTIONS + ("reopen",)
_AUDIT_LIMIT = 10_000  # the API's largest audit page (the audit list has no cursor)
THRESHOLD_NAMES = ("max_open", "max_oldest_open_hours", "max_invalid")


@dataclass
class ReportData:
    """The tables and figures of one health report."""

    as_of: pd.Timestamp
    since: pd.Timestamp
    tenant_id: str | None
    health: dict
    summary: dict
    thresholds: dict
    breaches: list[str]
    snapshots: pd.DataFrame
    per_day: pd.DataFrame
    aging: pd.DataFrame
    by_tenant: pd.DataFrame
    by_reason: pd.DataFrame
    by_source: pd.DataFrame
    resolution_times: pd.DataFrame
    decisions: pd.DataFrame
    overrides: pd.DataFrame
    oldest_open: pd.DataFrame
    extra: dict = field(default_factory=dict)


# ---- parameters ---------------------------------------------------------------------------

def parse_time(value: Any, default: pd.Timestamp | None = None) -> pd.Timestamp:
    """A UTC timestamp from ISO text, a datetime or None (then ``default`` or now)."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "now")):
        return default if default is not None else pd.Timestamp.now(tz="UTC")
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_threshold(value: Any) -> float | None:
    """A threshold from a papermill parameter (which may arrive as text); None disables."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if value.lower() in ("", "none", "null", "off"):
            return None
    number = float(value)
    return None if math.isnan(number) else number  # NaN disables too


def iso(ts: pd.Timestamp | datetime | None) -> str | None:
    """ISO-8601 UTC text with a ``Z``, seconds precision."""
    if ts is None or ts is pd.NaT:
        return None
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def file_stamp(as_of: pd.Timestamp) -> str:
    """``as_of`` as a filename-safe stamp, e.g. ``2026-11-27T100000Z``."""
    return as_of.tz_convert("UTC").strftime("%Y-%m-%dT%H%M%SZ")


# ---- reading the workbench ----------------------------------------------------------------

def fetch_exceptions(wb: Any, tenant_id: str | None) -> pd.DataFrame:
    """All exceptions (open and resolved) of the tenant, or of every tenant, oldest first."""
    items: list[dict] = []
    for status in ("open", "resolved"):
        cursor = None
        while True:
            # A server may cap a page even when no limit is asked for: follow the cursor.
            page = wb.list_exceptions(status=status, tenant_id=tenant_id, limit=None,
                                      cursor=cursor)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    df = pd.DataFrame(items, columns=["exception_id", "tenant_id", "idempotency_key", "source",
                                      "reason_code", "raw_id", "status", "created_at",
                                      "action", "actor", "resolved_at", "override_patch"])
    for col in ("created_at", "resolved_at"):
        df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
    df["raw_order"] = pd.to_numeric(df["raw_id"])
    return df.sort_values("raw_order", kind="stable").reset_index(drop=True)


def fetch_decisions(wb: Any, tenant_id: str | None) -> tuple[pd.DataFrame, pd.Timestamp | None]:
    """Resolution and reopen entries of the audit trail, oldest first.

    Also returns the time before which the trail was cut off by the page limit (or None).
    """
    entries = wb.audit(tenant_id=tenant_id, limit=_AUDIT_LIMIT)
    cut = None
    if len(entries) >= _AUDIT_LIMIT:
        cut = pd.to_datetime(entries[-1]["at"], utc=True, format="ISO8601")
    rows = [e for e in entries if e.get("action") in _DECISIONS]
    df = pd.DataFrame(rows, columns=["audit_id", "at", "actor", "action", "exception_id",
                                     "tenant_id", "idempotency_key", "notes",
                                     "canonical_raw_id", "override_patch", "details"])
    df["at"] = pd.to_datetime(df["at"], utc=True, format="ISO8601")
    return df.sort_values("at", kind="stable").reset_index(drop=True), cut


def fetch_snapshots(wb: Any, since: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """Health snapshots taken in [since, as_of], oldest first."""
    cols = ["taken_at", "exceptions_open", "raw_events", "processed", "quarantined", "ignored"]
    rows = wb.snapshots(since=iso(since))
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    df["taken_at"] = pd.to_datetime(df["taken_at"], utc=True, format="ISO8601")
    df = df[(df["taken_at"] >= since) & (df["taken_at"] <= as_of)]
    for c in cols[1:]:
        df[c] = df[c].astype("int64")
    return df.reset_index(drop=True)


# ---- computing ----------------------------------------------------------------------------

def aging_table(open_ex: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Open exceptions per age bucket, relative to ``as_of``."""
    hours = ((as_of - open_ex["created_at"]).dt.total_seconds() / 3600).clip(lower=0)
    edges = [-0.1, *_AGING_EDGES_H, float("inf")]
    cats = pd.cut(hours, bins=edges, labels=list(AGING_BUCKETS), right=False)
    counts = cats.value_counts().reindex(list(AGING_BUCKETS), fill_value=0)
    return pd.DataFrame({"age": list(AGING_BUCKETS), "open": counts.astype("int64").values})


def per_day_table(ex: pd.DataFrame, since: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """Exceptions opened and resolved on each UTC day of the window."""
    days = pd.date_range(since.floor("D"), as_of.floor("D"), freq="D", tz="UTC")

    def count(col: pd.Series) -> pd.Series:
        inside = col[(col >= since) & (col <= as_of)]
        return inside.dt.floor("D").value_counts().reindex(days, fill_value=0)

    out = pd.DataFrame({"day": days.strftime("%Y-%m-%d"),
                        "opened": count(ex["created_at"]).astype("int64").values,
                        "resolved": count(ex["resolved_at"].dropna()).astype("int64").values})
    return out


def breakdown(ex: pd.DataFrame, col: str, since: pd.Timestamp,
              as_of: pd.Timestamp) -> pd.DataFrame:
    """Per value of ``col``: open now, opened and resolved in the window."""
    key = ex[col].astype("object").where(ex[col].notna(), "(none)")
    frame = pd.DataFrame({
        col: key,
        "open": ex["status"].eq("open"),
        "opened": ex["created_at"].between(since, as_of),
        "resolved": ex["resolved_at"].between(since, as_of).fillna(False).astype(bool),
    })
    out = frame.groupby(col, sort=False)[["open", "opened", "resolved"]].sum().astype("int64")
    out = out.sort_values(["open", "opened"], ascending=False, kind="stable").reset_index()
    return out[(out["open"] + out["opened"] + out["resolved"]) > 0].reset_index(drop=True)


def resolution_times(ex: pd.DataFrame, since: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """Hours from opening to resolution, per action, for resolutions in the window."""
    done = ex[ex["resolved_at"].between(since, as_of).fillna(False).astype(bool)]
    hours = (done["resolved_at"] - done["created_at"]).dt.total_seconds() / 3600
    frame = pd.DataFrame({"action": done["action"].astype("object"), "hours": hours})
    rows = []
    for label, part in [("all", frame), *sorted(frame.groupby("action"), key=lambda g: g[0])]:
        h = part["hours"]
        rows.append({"action": label, "resolved": len(h),
                     "median_hours": _round(h.median()), "p90_hours": _round(h.quantile(0.9)),
                     "max_hours": _round(h.max())})
    return pd.DataFrame(rows, columns=["action", "resolved", "median_hours", "p90_hours",
                                       "max_hours"])


def decision_table(decisions: pd.DataFrame) -> pd.DataFrame:
    """Decisions in the window: one row per actor, one column per action, with totals."""
    table = pd.crosstab(decisions["actor"], decisions["action"])
    table = table.reindex(columns=list(_DECISIONS), fill_value=0)
    table["total"] = table.sum(axis=1)
    table = table.sort_values("total", ascending=False, kind="stable")
    table.loc["(all)"] = table.sum(axis=0)
    table.columns.name = None
    return table.astype("int64").reset_index().rename(columns={"index": "actor"})


def override_table(decisions: pd.DataFrame) -> pd.DataFrame:
    """The override_and_replay decisions of the window with their patches, newest first."""
    ov = decisions[decisions["action"] == Action.OVERRIDE_AND_REPLAY.value]
    return pd.DataFrame({
        "at": ov["at"].map(iso),
        "actor": ov["actor"],
        "exception_id": ov["exception_id"],
        "tenant_id": ov["tenant_id"],
        "idempotency_key": ov["idempotency_key"],
        "reason_code": ov["details"].map(lambda d: (d or {}).get("reason_code")
                                         if isinstance(d, dict) else None),
        "canonical_raw_id": ov["canonical_raw_id"],
        "override_patch": ov["override_patch"].map(_json_text),
        "notes": ov["notes"],
    }).iloc[::-1].reset_index(drop=True)


def find_breaches(summary: dict, thresholds: dict, oldest: dict | None) -> list[str]:
    """Each threshold exceeded, as a sentence a team lead can act on."""
    out: list[str] = []
    scope = f" for tenant {summary['tenant_id']}" if summary.get("tenant_id") else ""
    limit = thresholds.get("max_open")
    if limit is not None and summary["exceptions_open"] > limit:
        out.append(f"{summary['exceptions_open']} exceptions are open{scope}, above the "
                   f"limit of {_num(limit)} (max_open).")
    limit = thresholds.get("max_oldest_open_hours")
    hours = summary["oldest_open_hours"]
    if limit is not None and hours is not None and hours > limit and oldest:
        out.append(f"The oldest open exception{scope} ({oldest['exception_id']}, "
                   f"{oldest['reason_code']}, tenant {oldest['tenant_id'] or '(none)'}) has "
                   f"been open for {hours:.1f} hours, above the limit of {_num(limit)} hours "
                   "(max_oldest_open_hours).")
    limit = thresholds.get("max_invalid")
    invalid = summary["open_by_reason"].get(ReasonCode.INVALID_EVENT.value, 0)
    if limit is not None and invalid > limit:
        out.append(f"{invalid} INVALID_EVENT exceptions are open{scope}, above the limit of "
                   f"{_num(limit)} (max_invalid).")
    return out


def build_report(wb: Any, as_of: Any = None, since: Any = None, tenant_id: str | None = None,
                 thresholds: dict | None = None) -> ReportData:
    """Read the workbench once and compute every table and figure of the health report."""
    as_of = parse_time(as_of)
    since = parse_time(since, default=as_of - timedelta(days=DEFAULT_WINDOW_DAYS))
    tenant_id = tenant_id or None
    limits = {k: parse_threshold((thresholds or {}).get(k)) for k in THRESHOLD_NAMES}

    health = wb.health()
    ex = _exceptions_as_of(wb, tenant_id, as_of)
    decisions, cut = fetch_decisions(wb, tenant_id)
    decisions = decisions[decisions["at"].between(since, as_of)].copy()
    snaps = fetch_snapshots(wb, since, as_of)

    open_ex = ex[ex["status"] == "open"]
    oldest_row = open_ex.sort_values("created_at", kind="stable").head(1)
    oldest = None if oldest_row.empty else oldest_row.iloc[0].to_dict()
    oldest_hours = None if oldest is None else _round(
        max((as_of - oldest["created_at"]).total_seconds(), 0) / 3600)
    resolutions = decisions[decisions["action"].isin(_RESOLUTIONS)]
    overrides = int((resolutions["action"] == Action.OVERRIDE_AND_REPLAY.value).sum())

    aging = aging_table(open_ex, as_of)
    per_day = per_day_table(ex, since, as_of)
    times = resolution_times(ex, since, as_of)
    summary: dict[str, Any] = {
        "as_of": iso(as_of), "since": iso(since), "tenant_id": tenant_id,
        "exceptions_open": len(open_ex),
        "raw_events": int(health["raw_events"]),
        "idempotency": {k: int(v) for k, v in health["idempotency"].items()},
        "oldest_open_hours": oldest_hours,
        "oldest_open_exception_id": None if oldest is None else str(oldest["exception_id"]),
        "open_by_reason": _counts(open_ex["reason_code"]),
        "open_by_tenant": _counts(open_ex["tenant_id"]),
        "open_by_source": _counts(open_ex["source"]),
        "aging": dict(zip(aging["age"], aging["open"].astype(int).tolist())),
        "opened_in_window": int(per_day["opened"].sum()),
        "resolved_in_window": int(per_day["resolved"].sum()),
        "decisions": _counts(decisions["action"]),
        "decisions_by_actor": _counts(resolutions["actor"]),
        "override_share": round(overrides / len(resolutions), 4) if len(resolutions) else None,
        "overrides": overrides,
        "median_hours_to_resolve": times["median_hours"].iloc[0],
        "p90_hours_to_resolve": times["p90_hours"].iloc[0],
        "snapshots": len(snaps),
        # Decisions older than this were beyond the audit page: the counts are partial.
        "decisions_complete_since": iso(since if cut is None or cut <= since else cut),
        "health": health,
    }
    breaches = find_breaches(summary, limits, oldest)
    return ReportData(
        as_of=as_of, since=since, tenant_id=tenant_id, health=health, summary=summary,
        thresholds=limits, breaches=breaches, snapshots=snaps, per_day=per_day, aging=aging,
        by_tenant=breakdown(ex, "tenant_id", since, as_of),
        by_reason=breakdown(ex, "reason_code", since, as_of),
        by_source=breakdown(ex, "source", since, as_of),
        resolution_times=times, decisions=decision_table(decisions),
        overrides=override_table(decisions), oldest_open=_oldest_open(open_ex, as_of))


def _exceptions_as_of(wb: Any, tenant_id: str | None, as_of: Any) -> pd.DataFrame:
    """The exceptions as they stood at ``as_of``: those created by then, and a resolution
    after it not yet happened."""
    ex = fetch_exceptions(wb, tenant_id)
    ex = ex[ex["created_at"] <= as_of].copy()
    later = ex["resolved_at"] > as_of
    ex.loc[later, ["status", "resolved_at"]] = ["open", pd.NaT]
    return ex


def _oldest_open(open_ex: pd.DataFrame, as_of: Any) -> pd.DataFrame:
    """The ten oldest open exceptions, with their age in hours."""
    cols = ["exception_id", "tenant_id", "idempotency_key", "source", "reason_code",
            "created_at"]
    oldest = open_ex.sort_values("created_at", kind="stable").head(10)[cols].copy()
    oldest["age_hours"] = ((as_of - oldest["created_at"]).dt.total_seconds() / 3600
                           ).clip(lower=0).round(1)
    oldest["created_at"] = oldest["created_at"].map(iso)
    return oldest.reset_index(drop=True)


def summary_json(report: ReportData) -> dict:
    """The JSON summary written next to the HTML: figures, thresholds and breaches."""
    body = dict(report.summary)
    body["thresholds"] = {k: report.thresholds.get(k) for k in THRESHOLD_NAMES}
    body["breaches"] = list(report.breaches)
    body["breached"] = bool(report.breaches)
    body["opened_resolved_by_day"] = report.per_day.to_dict(orient="records")
    # Round-trip so the result holds only JSON types (numpy ints, NaN and the like).
    return json.loads(json.dumps(body, default=_jsonable))


def _counts(col: pd.Series) -> dict[str, int]:
    values = col.astype("object").where(col.notna(), "(none)")
    counts = values.value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def _round(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 2)


def _num(value: float) -> str:
    return f"{value:g}"


def _json_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (pd.Timestamp, datetime)):
        return iso(value)
    return str(value)


__all__ = ["AGING_BUCKETS", "ReportData", "build_report", "file_stamp", "iso",
           "parse_threshold", "parse_time", "summary_json"]

"""Decision analytics for analysts: rules suggested by past decisions, unknown types,
override patches as learnings, and exports for sharing.

History scans read the store file through the read-only views (``opswb.store.duckdb.views``), so they
are local-only (``LocalOnly`` against a serve URL). Every change goes through workbench
methods, one audited call per exception, so ``apply_rule`` and ``allow_type_and_replay``
work on a local and a remote workbench alike.

    rules = suggest_rules(wb)                     # "acme / billing-api: LAST chosen in 47 of 48 conflicts"
    apply_rule(wb, rules.iloc[0], actor="ann")    # resolves exactly the matching open exceptions
    unknown_types(wb); allow_type_and_replay(wb, "invoice.paid", "acme", "ann", "new type")
    override_learnings(wb); export_queue(wb, "queue.csv", tenant_id="acme")
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from opswb.core.errors import InvalidRequest, OpswbError
from opswb.core.fingerprint import dumps, loads
from opswb.core.models import Action, ReasonCode
from opswb.engine.resolutions import require_text
from opswb.store.duckdb.views import run_sql

DECISIONS = ("FIRST kept", "LAST chosen", "ignored", "patched", "replayed")
# Patches differ per exception and replays of unknown types need the allowlist first,
# so only these decisions make a rule that can be applied in bulk.
APPLICABLE = ("FIRST kept", "LAST chosen", "ignored")
_COUNT_COLS = {d: d.lower().replace(" ", "_") for d in DECISIONS}
_NOUNS = {ReasonCode.IDEMPOTENCY_CONFLICT: "conflicts",
          ReasonCode.UNKNOWN_EVENT_TYPE: "unknown-type exceptions",
          ReasonCode.INVALID_EVENT: "invalid events"}
_MISSING = object()


# ---- what conflicts change ------------------------------------------------------------------

def conflict_fields(db: Any, status: str | None = "open") -> pd.DataFrame:
    """Which fields differ between FIRST and LAST, per tenant and source: the same field
    corrected again and again (a status, an amount) hints that LAST is a legitimate
    correction; scattered fields hint at noise or a bug at the source."""
    parts = [f"""SELECT tenant_id, source, '{kind}' AS kind,
                    unnest(from_json(details->'{kind}_paths', '["VARCHAR"]')) AS path
                 FROM exceptions WHERE reason_code = 'IDEMPOTENCY_CONFLICT'
                   AND (?::VARCHAR IS NULL OR status = ?::VARCHAR)"""
             for kind in ("changed", "added", "removed")]
    status = None if status in (None, "", "all") else status
    return run_sql(db, f"""
        SELECT tenant_id, source, kind, path, count(*) AS conflicts
        FROM ({" UNION ALL ".join(parts)}) GROUP BY ALL
        ORDER BY conflicts DESC, tenant_id, source, path""", [status, status] * 3)


# ---- how past exceptions were decided ----------------------------------------------------

def decision_summary(db: Any) -> pd.DataFrame:
    """Per (tenant, source, reason code): how past exceptions were decided, how
    consistently (``share`` of the most common decision) and how many are open now."""
    counts = ", ".join(f"count(*) FILTER (WHERE decision = '{d}') AS {c}"
                       for d, c in _COUNT_COLS.items())
    df = run_sql(db, f"""
        WITH d AS (SELECT tenant_id, source, reason_code, count(*) AS decisions, {counts}
                   FROM decisions WHERE is_latest GROUP BY ALL),
             o AS (SELECT tenant_id, source, reason_code, count(*) AS open_matching
                   FROM exceptions WHERE status = 'open' GROUP BY ALL)
        SELECT coalesce(d.tenant_id, o.tenant_id) AS tenant_id,
               coalesce(d.source, o.source) AS source,
               coalesce(d.reason_code, o.reason_code) AS reason_code,
               coalesce(d.decisions, 0) AS decisions,
               {", ".join(f"coalesce(d.{c}, 0) AS {c}" for c in _COUNT_COLS.values())},
               coalesce(o.open_matching, 0) AS open_matching
        FROM d FULL OUTER JOIN o
          ON d.tenant_id IS NOT DISTINCT FROM o.tenant_id
         AND d.source IS NOT DISTINCT FROM o.source AND d.reason_code = o.reason_code
        ORDER BY decisions DESC, open_matching DESC, tenant_id, source""")
    cols = list(_COUNT_COLS.values())
    top = df[cols].astype("int64").idxmax(axis=1) if len(df) else pd.Series(dtype=str)
    names = {c: d for d, c in _COUNT_COLS.items()}
    df["top_decision"] = [names[c] if n else None
                          for c, n in zip(top, df["decisions"], strict=True)]
    df["agreeing"] = [int(df.at[i, c]) for i, c in zip(df.index, top, strict=True)]
    df["share"] = (df["agreeing"] / df["decisions"].where(df["decisions"] > 0)).fillna(0.0)
    return df


def _sentence(tenant: Any, source: Any, reason: str, decision: str, agreeing: int,
              total: int) -> str:
    noun = _NOUNS.get(reason, "exceptions")
    return f"{tenant} / {source or '(no source)'}: {decision} in {agreeing} of {total} {noun}"


def _rule_id(tenant: Any, source: Any, reason: str, decision: str) -> str:
    return f"{tenant}/{source or '-'}/{reason}/{decision.lower().replace(' ', '-')}"


def suggest_rules(db: Any, min_decisions: int = 5, min_share: float = 0.9) -> pd.DataFrame:
    """Rules the decision history supports: groups with at least ``min_decisions`` past
    decisions, ``min_share`` of them the same applicable decision."""
    df = decision_summary(db)
    ok = ((df["decisions"] >= min_decisions) & (df["share"] >= min_share)
          & df["top_decision"].isin(APPLICABLE)
          & ((df["top_decision"] == "ignored")
             | (df["reason_code"] == ReasonCode.IDEMPOTENCY_CONFLICT)))
    rules = df[ok].copy()
    rules["decision"] = rules["top_decision"]
    rules["rule_id"] = [_rule_id(t, s, r, d) for t, s, r, d in zip(
        rules.tenant_id, rules.source, rules.reason_code, rules.decision, strict=True)]
    rules["rule"] = [_sentence(t, s, r, d, a, n) for t, s, r, d, a, n in zip(
        rules.tenant_id, rules.source, rules.reason_code, rules.decision, rules.agreeing,
        rules.decisions, strict=True)]
    cols = ["rule_id", "tenant_id", "source", "reason_code", "decision", "agreeing",
            "decisions", "share", "open_matching", "rule"]
    return rules.sort_values(["open_matching", "share", "decisions"],
                             ascending=False)[cols].reset_index(drop=True)


def _open_matching(wb: Any, tenant: Any, source: Any, reason: str) -> list[str]:
    """Ids of the open exceptions of one (tenant, source, reason code), oldest first."""
    df = wb.exceptions(status="open", tenant_id=tenant, reason_code=reason,
                       source=source or None)
    if not source:  # a rule for arrivals without a source matches only those
        df = df[df["source"].isna() | (df["source"] == "")]
    return [str(i) for i in df["exception_id"]]


def _field(rule: Any, name: str) -> Any:
    value = rule.get(name) if hasattr(rule, "get") else None
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


def apply_rule(wb: Any, rule: Any, actor: str, notes: str | None = None) -> dict:
    """Resolve every open exception the rule matches, one audited call each, citing the
    rule in the notes: ``{"rule_id", "results": [{"exception_id", "status", ...}]}``."""
    actor = require_text("actor", actor)
    tenant, source = _field(rule, "tenant_id"), _field(rule, "source")
    reason, decision = _field(rule, "reason_code"), _field(rule, "decision")
    if decision not in APPLICABLE or not tenant or not reason:
        raise InvalidRequest(f"not an applicable rule: decision must be one of "
                             f"{', '.join(APPLICABLE)}, with tenant_id and reason_code")
    if decision != "ignored" and reason != ReasonCode.IDEMPOTENCY_CONFLICT:
        raise InvalidRequest(f"{decision} applies only to IDEMPOTENCY_CONFLICT exceptions")
    rule_id = _field(rule, "rule_id") or _rule_id(tenant, source, reason, decision)
    sentence = _field(rule, "rule") or rule_id
    text = f"rule {rule_id}: {sentence}" + (f" — {notes.strip()}" if notes and notes.strip()
                                            else "")
    results = []
    for ex_id in _open_matching(wb, tenant, source, reason):
        try:
            results.append(_apply_one(wb, ex_id, decision, actor, text))
        except OpswbError as e:  # one failing item does not stop the others (SPEC §7)
            status = {404: "not_found", 409: "conflict", 422: "invalid"}.get(
                e.http_status, "error")
            results.append({"exception_id": ex_id, "status": status, "error": str(e)})
    return {"rule_id": rule_id, "results": results}


def _apply_one(wb: Any, ex_id: str, decision: str, actor: str, notes: str) -> dict:
    if decision == "ignored":
        ex = wb.resolve(ex_id, action=Action.MARK_RESOLVED_NO_REPLAY.value, actor=actor,
                        resolution_notes=notes)
        return {"exception_id": ex_id, "status": ex["status"], "canonical_raw_id": None}
    detail = wb.exception(ex_id)
    side = detail.get("last" if decision == "LAST chosen" else "first")
    if not side:
        return {"exception_id": ex_id, "status": "skipped",
                "error": f"no {decision.split()[0]} arrival to replay"}
    # FIRST as it was delivered: its raw with the patch it was delivered with, if any.
    patch = side.get("override_patch") if decision == "FIRST kept" else None
    ex = wb.resolve(ex_id, action=Action.OVERRIDE_AND_REPLAY.value, actor=actor,
                    resolution_notes=notes, canonical_raw_id=side["raw_id"],
                    override_patch=patch)
    return {"exception_id": ex_id, "status": ex["status"],
            "canonical_raw_id": str(side["raw_id"])}


# ---- unknown event types -------------------------------------------------------------------

def unknown_types(db: Any) -> pd.DataFrame:
    """Event types that opened exceptions for not being allowed: how often, for which
    tenants and sources, first and last seen, how many still open, where allowed now."""
    return run_sql(db, """
        WITH u AS (
            SELECT a.*, e.status
            FROM arrivals a JOIN exceptions e ON e.exception_id = a.exception_id
            WHERE a.valid AND (
                (e.reason_code = 'UNKNOWN_EVENT_TYPE' AND a.event_type = e.details->>'event_type')
                OR a.event_type = e.details->>'also_unknown_event_type'))
        SELECT event_type, count(*) AS arrivals,
               count(DISTINCT (tenant_id, idempotency_key)) AS distinct_keys,
               count(DISTINCT tenant_id) AS tenant_count,
               string_agg(DISTINCT tenant_id, ', ' ORDER BY tenant_id) AS tenants,
               string_agg(DISTINCT source, ', ' ORDER BY source) AS sources,
               count(DISTINCT exception_id) FILTER (WHERE status = 'open') AS open_exceptions,
               count(DISTINCT exception_id) FILTER (WHERE status = 'resolved')
                   AS resolved_exceptions,
               min(received_at) AS first_seen, max(received_at) AS last_seen,
               (SELECT string_agg(coalesce(t.tenant_id, '*'), ', ' ORDER BY t.tenant_id)
                FROM types t WHERE t.event_type = u.event_type) AS allowed_for
        FROM u GROUP BY event_type ORDER BY arrivals DESC, event_type""")


def allow_type_and_replay(wb: Any, event_type: str, tenant_id: str | None, actor: str,
                          notes: str) -> dict:
    """Allow ``event_type`` (for ``tenant_id``, or globally when None) and replay its open
    UNKNOWN_EVENT_TYPE exceptions: the allowlist change and each replay are audited."""
    event_type = require_text("event_type", event_type)
    actor = require_text("actor", actor)
    notes = require_text("notes", notes)
    added = wb.add_type(event_type, tenant_id, actor=actor, notes=notes)
    queue = wb.exceptions(status="open", tenant_id=tenant_id,
                          reason_code=ReasonCode.UNKNOWN_EVENT_TYPE.value)
    where = f"for {tenant_id}" if tenant_id else "globally"
    text = f"{notes} (event type {event_type} allowed {where}; replayed)"
    results = []
    for ex_id, details in zip(queue["exception_id"], queue["details"], strict=True):
        if (_as_dict(details) or {}).get("event_type") != event_type:
            continue
        try:
            ex = wb.resolve(str(ex_id), action=Action.OVERRIDE_AND_REPLAY.value, actor=actor,
                            resolution_notes=text)
            results.append({"exception_id": str(ex_id), "status": ex["status"]})
        except OpswbError as e:
            results.append({"exception_id": str(ex_id), "status": "error", "error": str(e)})
    return {"type": added, "results": results}


def _as_dict(value: Any) -> Any:
    return loads(value) if isinstance(value, str) else value


# ---- override patches as learnings ---------------------------------------------------------

def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def flatten_patch(patch: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """The leaves of a JSON merge patch as (JSON pointer, value); null means removed."""
    if not isinstance(patch, dict) or not patch:
        return [(prefix, patch)]
    out: list[tuple[str, Any]] = []
    for k, v in patch.items():
        out += flatten_patch(v, f"{prefix}/{_escape(str(k))}")
    return out


def _at(doc: Any, pointer: str) -> Any:
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(doc, dict) or token not in doc:
            return _MISSING
        doc = doc[token]
    return doc


def suggest_validation(path: str, pairs: list[tuple[Any, Any]]) -> str:
    """The validation rule at the source that a set of (before, after) corrections suggests."""
    field = path.rsplit("/", 1)[-1] or path
    before = [b for b, _ in pairs]
    after = [a for _, a in pairs]
    strs = all(isinstance(b, str) and isinstance(a, str) for b, a in pairs)
    if all(a is None for a in after):
        return f"stop sending {field} at source (always removed)"
    if all(b is _MISSING or b is None for b in before):
        return f"require {field} at source (always added)"
    if path == "/event_type":
        return "map the event type at source, or allow it (opswb types add)"
    if strs and all(a == b.upper() != b for b, a in pairs):
        if "currency" in field.lower() and all(re.fullmatch(r"[A-Z]{3}", a) for a in after):
            return f"validate {field} is ISO-4217 upper-case at source"
        return f"validate {field} is upper-case at source"
    if strs and all(a == b.strip() != b for b, a in pairs):
        return f"trim whitespace from {field} at source"
    if all(isinstance(b, str) and isinstance(a, int | float) for b, a in pairs):
        return f"send {field} as a number, not a string, at source"
    if len({dumps(a) for a in after}) == 1:
        return f"default {field} to {dumps(after[0])} at source"
    return f"validate {field} at source"


def override_learnings(db: Any, min_count: int = 1) -> pd.DataFrame:
    """Past override patches grouped by field path, tenant and source, with the validation
    rule they suggest ("/payload/currency patched 12× for acme/erp-sync: validate …")."""
    rows = run_sql(db, """
        SELECT d.tenant_id, d.source, d.exception_id, d.override_patch::VARCHAR AS patch,
               r.event_type, r.payload::VARCHAR AS payload, r.source AS raw_source,
               r.occurred_at
        FROM decisions d LEFT JOIN arrivals r ON r.raw_id = d.canonical_raw_id
        WHERE d.decision = 'patched' AND d.is_latest ORDER BY d.audit_id""")
    groups: dict[tuple, list] = {}
    for rec in rows.to_dict("records"):
        envelope = {"event_type": rec["event_type"], "source": rec["raw_source"],
                    "occurred_at": rec["occurred_at"],
                    "payload": loads(rec["payload"]) if isinstance(rec["payload"], str)
                    else None}
        for path, value in flatten_patch(loads(rec["patch"])):
            before = _at(envelope, path)
            if _unchanged(before, value):  # the patch left this field as it was
                continue
            key = (path, rec["tenant_id"], _none(rec["source"]))
            groups.setdefault(key, []).append((rec["exception_id"], before, value))
    out = []
    for (path, tenant, source), items in groups.items():
        if len(items) < min_count:
            continue
        pairs = [(b, a) for _, b, a in items]
        rule = suggest_validation(path, pairs)
        examples = sorted({f"{'∅' if b is _MISSING else dumps(b)} → {dumps(a)}"
                           for b, a in pairs})[:3]
        out.append({"path": path, "tenant_id": tenant, "source": source,
                    "patched": len(items), "examples": "; ".join(examples),
                    "exception_ids": ", ".join(str(i) for i, _, _ in items),
                    "suggested_rule": rule,
                    "learning": f"{path} patched {len(items)}× for {tenant}/"
                                f"{source or '(no source)'}: {rule}"})
    cols = ["path", "tenant_id", "source", "patched", "examples", "exception_ids",
            "suggested_rule", "learning"]
    df = pd.DataFrame(out, columns=cols)
    return df.sort_values(["patched", "path"], ascending=[False, True]).reset_index(drop=True)


def _unchanged(before: Any, after: Any) -> bool:
    """Whether a patch leaf changed nothing: it set the value already there, or removed
    (null) a member that was not there."""
    if before is _MISSING:
        return after is None
    # JSON compares numbers by value (1 and 1.0 are one number) but true is not 1
    return before == after and isinstance(before, bool) == isinstance(after, bool)


def _none(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else value


# ---- export ---------------------------------------------------------------------------------

def _write_frame(df: pd.DataFrame, path: str | Path) -> dict:
    """Write ``df`` as CSV or Parquet, chosen by the file's extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise InvalidRequest(f"export to .csv or .parquet, not {suffix or 'no extension'!r}")
    df = df.copy()
    for col in df.columns:  # JSON values (details, patches) travel as JSON text
        if df[col].dtype == object and df[col].map(lambda v: isinstance(v, dict | list)).any():
            df[col] = df[col].map(lambda v: dumps(v) if isinstance(v, dict | list) else v)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return {"path": str(path), "rows": len(df)}


def export_queue(wb: Any, path: str | Path, **filters: Any) -> dict:
    """Export the exceptions matching ``filters`` (as ``wb.exceptions``) to CSV/Parquet."""
    return _write_frame(wb.exceptions(**filters), path)


def export_decisions(db: Any, path: str | Path) -> dict:
    """Export the whole decision history (the ``decisions`` view) to CSV/Parquet."""
    return _write_frame(run_sql(db, "SELECT * FROM decisions ORDER BY audit_id"), path)

"""Write ``data/sample_events.jsonl``: the demo/test file that exercises every row of §5.

    python data/make_sample.py [OUT] [--check]

Deterministic: the same code writes the same bytes. About 3,000 arrivals for the tenants
acme, globex, initech and umbrella from billing-api, checkout-web, erp-sync and
partner-webhook: processed events; exact duplicates and duplicates that differ only in key
order, whitespace, number spelling (``129900`` / ``129900.0`` / ``1.299e5``), ``\\u``
escapes, ``source`` or ``occurred_at``; unknown event types; conflicts that look like
genuine corrections and conflicts that look like upstream bugs, in all four tenants;
arrivals after a conflict (attached); invalid lines; and payload strings carrying HTML/JS
that a console must escape. Prints the expected §10 summary of an ingest into an empty
store (from ``opswb.testing.synth.reference_summary``, an independent model of §5).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from random import Random
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from opswb.testing.reference import reference_summary
from opswb.testing.synth import SynthStream, write_items

SEED = 20261127
OUT = Path(__file__).resolve().parent / "sample_events.jsonl"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"

# (tenant, conflict kind, note on the re-sent version or None, attach after it)
CONFLICTS = [
    ("acme", "amount_corrected", "amount corrected per invoice INV-20931", "again"),
    ("globex", "amount_corrected", "price adjustment approved by finance", None),
    ("initech", "amount_corrected", "corrected: shipping was double-charged", "original"),
    ("umbrella", "amount_corrected", "manual correction after POS outage", None),
    ("acme", "currency_fixed", "currency fixed: customer billed in USD", None),
    ("initech", "currency_fixed", "wrong currency on first send", "third"),
    ("umbrella", "currency_fixed", None, None),
    ("globex", "customer_typo", "customer id typo fixed", "again"),
    ("acme", "customer_typo", "customer id typo fixed (support ticket 4411)", None),
    ("umbrella", "customer_typo", None, None),
    ("initech", "line_item_qty", "quantity corrected by warehouse", None),
    ("globex", "line_item_qty", None, "original"),
    ("acme", "amount_x100", None, "again"),
    ("globex", "amount_x100", None, None),
    ("initech", "amount_x100", None, None),
    ("umbrella", "amount_x100", None, "third"),
    ("acme", "currency_null", None, None),
    ("globex", "currency_null", None, "again"),
    ("initech", "currency_null", None, None),
    ("acme", "status_flip", None, None),
    ("umbrella", "status_flip", None, "original"),
    ("globex", "status_flip", XSS_SCRIPT, None),
    ("initech", "country_changed", None, None),
    ("umbrella", "unit_price_string", None, None),
    ("acme", "type_changed_unknown", None, None),
]
UNKNOWN = [
    ("acme", "payment.chargeback", None), ("umbrella", "payment.chargeback", None),
    ("initech", "payment.chargeback", None), ("globex", "payment.chargeback", None),
    ("acme", "invoice.paid", None), ("globex", "invoice.paid", None),
    ("umbrella", "invoice.paid", "請求書-0007"), ("acme", "subscription.renewed", None),
    ("umbrella", "subscription.renewed", None), ("initech", "payout.settled", None),
    ("globex", "order.returned", None), ("acme", "Payment.Captured", None),
    ("umbrella", "payment.chargeback", None), ("globex", "invoice.issued", None),
]


class Sample:
    """Base traffic from ``SynthStream`` plus hand-planted scenarios, ordered by a
    position key (``base`` items sit at 0..n-1, planted ones at fractions after the
    arrivals they depend on)."""

    def __init__(self, n_base: int = 2_840) -> None:
        self.s = SynthStream(n_base, seed=SEED, dup_rate=0.05, conflict_rate=0.0,
                             unknown_rate=0.0, payload_bytes=360, key_prefix="evt")
        self.rows: list[tuple[float, Any, str, str | None]] = [
            (float(i), el, b, st) for i, (el, b, st) in enumerate(self.s)]
        self.n = float(len(self.rows))
        self.rnd = Random(SEED + 1)
        self.last: dict[tuple[str, str], float] = {}
        self.first: dict[tuple[str, str], Any] = {}
        for pos, el, bucket, _ in self.rows:
            k = (el["tenant_id"], el["idempotency_key"])
            self.last[k] = pos
            if bucket == "processed":
                self.first.setdefault(k, el)
        self.used: set[tuple[str, str]] = set()

    def add(self, el: Any, bucket: str, after: float = -1.0, style: str | None = None,
            before: float | None = None) -> float:
        """Place ``el`` somewhere after position ``after``; returns its position."""
        hi = self.n if before is None else before
        pos = self.rnd.uniform(after + (hi - after) * 0.02, hi)
        if isinstance(el, dict) and "occurred_at" in el and bucket != "duplicates":
            el = {**el, "occurred_at": self.s._ts(pos + 1)}
        self.rows.append((pos, el, bucket, style))
        return pos

    def target(self, tenant: str) -> tuple[dict, float]:
        """A processed base key of ``tenant`` not used by another scenario yet."""
        keys = sorted(k for k in self.first if k[0] == tenant and k not in self.used
                      and self.last[k] < self.n * 0.7)
        k = keys[self.rnd.randrange(len(keys))]
        self.used.add(k)
        return self.first[k], self.last[k]

    def items(self) -> list[tuple[Any, str, str | None]]:
        return [(el, b, st) for _, el, b, st in sorted(self.rows, key=lambda r: r[0])]


def _with_note(env: dict, note: str | None) -> dict:
    if note is None:
        return env
    p = dict(env["payload"])
    p["metadata"] = {**p["metadata"], "note": note}
    return {**env, "payload": p}


def plant_duplicates(sm: Sample) -> None:
    """A unicode key with every harmless variation, and an integer beyond 2^53."""
    s = sm.s
    env = s.new_event(tenant="acme")
    p = {**env["payload"], "amount": 129900, "customer": {
        "name": "Zoë Ångström", "email": "zoe@example.se", "country": "SE"}}
    env = {**env, "idempotency_key": "ordre_été_0042", "payload": p}
    pos = sm.add(env, "processed", before=sm.n * 0.3)
    for variant in ("dup_ascii_escaped", "dup_reordered", "dup_whitespace"):
        el, style, got = s.duplicate_of(env)
        while got != variant:
            el, style, got = s.duplicate_of(env)
        sm.add(el, "duplicates", pos, style)
    other = "erp-sync" if env["source"] != "erp-sync" else "partner-webhook"
    sm.add({**env, "source": other, "occurred_at": "2026-11-02T09:15:00+01:00"},
           "duplicates", pos)
    text = orjson.dumps(env).decode().replace('"amount":129900', '"amount":1.299e5')
    sm.add(text, "duplicates", pos, "raw")
    text = orjson.dumps(env).decode().replace('"amount":129900', '"amount":129900.0')
    sm.add(text, "duplicates", pos, "raw")

    big = s.new_event(tenant="initech")
    big = {**big, "idempotency_key": "ledger-7731",
           "payload": {**big["payload"], "ledger_seq": 9007199254740993}}
    pos = sm.add(big, "processed", before=sm.n * 0.4)
    pos = sm.add(dict(big), "duplicates", pos, before=sm.n * 0.6)
    bug = {**big, "payload": {**big["payload"], "ledger_seq": 9007199254740992}}
    sm.add(_with_note(bug, "re-sent by JS client (float64 rounding)"), "exceptions_opened",
           pos)


def plant_unknown(sm: Sample) -> None:
    """UNKNOWN_EVENT_TYPE keys; a few re-sent afterwards (attached)."""
    s = sm.s
    for i, (tenant, etype, key) in enumerate(UNKNOWN):
        env = s.new_event(tenant=tenant)
        env["event_type"] = etype
        p = dict(env["payload"], status="disputed" if "chargeback" in etype else "paid")
        if i == 12:
            p["customer"] = {**p["customer"], "name": XSS_IMG}
        env["payload"] = p
        if key:
            env["idempotency_key"] = key
        pos = sm.add(env, "exceptions_opened")
        if i in (0, 6):
            sm.add(dict(env), "attached", pos)
        if i == 4:
            sm.add({**env, "payload": {**p, "amount": p["amount"] + 500}}, "attached", pos)


def plant_conflicts(sm: Sample) -> None:
    """IDEMPOTENCY_CONFLICT keys: corrections and upstream bugs, some with later arrivals."""
    s = sm.s
    for tenant, kind, note, after in CONFLICTS:
        orig, last = sm.target(tenant)
        if kind == "unit_price_string":
            items = [dict(i) for i in orig["payload"]["line_items"]]
            items[0]["unit_price"] = f"{items[0]['unit_price'] / 100:.2f}"
            new = {**orig, "payload": {**orig["payload"], "line_items": items}}
        elif kind == "type_changed_unknown":
            new = {**orig, "event_type": "payment.chargeback",
                   "payload": {**orig["payload"], "status": "disputed"}}
        else:
            new, _ = s.conflict_of(orig, kind)
        new = _with_note(new, note)
        pos = sm.add(new, "exceptions_opened", last)
        if after == "again":
            sm.add(dict(new), "attached", pos, "spaced")
        elif after == "original":
            sm.add(dict(orig), "attached", pos)
        elif after == "third":
            third, _ = s.conflict_of(new, "amount_corrected")
            sm.add(third, "attached", pos)


def plant_invalid(sm: Sample) -> None:
    """INVALID_EVENT arrivals; two reuse a live key (row 6 wins over rows 3-5)."""
    s = sm.s
    e = [s.new_event(tenant=t) for t in ("acme", "globex", "initech", "umbrella") * 3]
    t0 = orjson.dumps(e[0]).decode()
    lines: list[tuple[Any, str | None]] = [
        (t0[: len(t0) // 2], "notjson"),
        (orjson.dumps(e[1]).decode()[:-2], "notjson"),
        ("tenant_id=initech&idempotency_key=evt_legacy_17&event_type=order.created", "notjson"),
        ({k: v for k, v in e[3].items() if k != "idempotency_key"}, None),
        ({k: v for k, v in e[4].items() if k != "idempotency_key"}, None),
        ({**e[5], "payload": "amount=1200;currency=EUR"}, None),
        ({**e[6], "payload": [e[6]["payload"]]}, None),
        ({**e[7], "payload": None}, None),
        ({**e[8], "tenant_id": ""}, None),
        ({**e[9], "tenant_id": ""}, None),
        ({k: v for k, v in e[10].items() if k != "event_type"}, None),
        ([e[11]["tenant_id"], e[11]["idempotency_key"]], None),
    ]
    for el, style in lines:
        sm.add(el, "exceptions_opened", style=style)
    live, last = sm.target("globex")
    sm.add({**live, "payload": json.dumps(live["payload"])}, "exceptions_opened", last)
    quarantined = next(r for r in sm.rows if isinstance(r[1], dict)
                       and r[1].get("event_type") == "order.returned")
    sm.add({**quarantined[1], "event_type": 42}, "exceptions_opened", quarantined[0])


def build() -> list[tuple[Any, str, str | None]]:
    """The sample's arrivals in order, each with the §10 bucket it should count in."""
    sm = Sample()
    plant_duplicates(sm)
    plant_unknown(sm)
    plant_conflicts(sm)
    plant_invalid(sm)
    return sm.items()


def write_sample(path: str | Path = OUT) -> dict[str, Any]:
    """Write the sample and return its expected summary (checked against the planted
    buckets)."""
    items = build()
    write_items(path, items)
    planted = {b: sum(1 for _, bb, _ in items if bb == b)
               for b in ("processed", "duplicates", "exceptions_opened", "attached")}
    expected = reference_summary(path)
    mismatch = {b: (planted[b], expected[b]) for b in planted if planted[b] != expected[b]}
    if mismatch:
        raise AssertionError(f"planted buckets disagree with the §5 model: {mismatch}")
    return expected


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else OUT
    print(json.dumps({"file": str(out), "expected": write_sample(out)}, ensure_ascii=False))

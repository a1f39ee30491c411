"""Seeded synthetic event streams for tests, demos and benchmarks (SPEC §2, §4, §5).

``generate_events`` yields envelopes in arrival order with planted duplicates (exact
copies and copies that differ only in key order, whitespace, number spelling, ``source``
or ``occurred_at``: all still duplicates per §4), conflicts (an earlier key re-sent with a
changed nested value), unknown event types and, optionally, invalid arrivals. The stream
knows the §10 bucket each arrival should land in, so ``expected_summary`` (and the
``expected=`` argument of ``write_jsonl``) say what an ingest into an empty store must
report. ``opswb.testing.reference.reference_summary`` re-derives the same counts from a file with an independent
few-line model of §5. The demo file ``data/sample_events.jsonl`` is built from these
pieces by ``data/make_sample.py``.

The stream assumes the default allowlist (``GLOBAL_TYPES``, ``TENANT_TYPES``, mirroring
``data/event_types.csv``). Only the standard library and orjson are imported. Same
arguments, same bytes.

    python -m opswb.testing.synth OUT.jsonl --n 1000000 --seed 1
"""

from __future__ import annotations

import argparse
import calendar
import gc
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from random import Random
from typing import Any

import orjson

DEFAULT_TENANTS = ("acme", "globex", "initech", "umbrella")
DEFAULT_SOURCES = ("billing-api", "checkout-web", "erp-sync", "partner-webhook")
GLOBAL_TYPES = ("payment.authorized", "payment.captured", "payment.refunded",
                "order.created", "order.cancelled", "order.shipped", "refund.requested")
TENANT_TYPES = {"globex": ("subscription.renewed",), "initech": ("invoice.issued",)}
UNKNOWN_TYPES = ("payment.chargeback", "invoice.paid", "subscription.renewed",
                 "payout.settled", "invoice.issued", "order.returned")
BUCKETS = ("processed", "duplicates", "exceptions_opened", "attached")
ALLOWLIST_CSV = Path(__file__).resolve().parents[2] / "data" / "event_types.csv"

_STATUS = {"payment.authorized": "authorized", "payment.captured": "captured",
           "payment.refunded": "refunded", "order.created": "created",
           "order.cancelled": "cancelled", "order.shipped": "shipped",
           "refund.requested": "requested", "subscription.renewed": "active",
           "invoice.issued": "open", "payment.chargeback": "disputed",
           "invoice.paid": "paid", "payout.settled": "settled", "order.returned": "returned"}
_COUNTRIES = (("DE", "EUR"), ("FR", "EUR"), ("NL", "EUR"), ("GB", "GBP"), ("US", "USD"),
              ("US", "USD"), ("CH", "CHF"), ("JP", "JPY"), ("SE", "SEK"), ("ES", "EUR"))
_FIRST = ("Zoë", "José", "Anna", "Björn", "Chloé", "Dmitri", "Émile", "Fatima", "Grace",
          "Hiro", "Ingrid", "Jürgen", "Kenji", "Léa", "Mateo", "Nadia", "Olu", "Priya",
          "Søren", "Wei", "Yuki", "Ana", "Ömer", "Łukasz")
_LAST = ("Müller", "García", "Smith", "Nakamura", "Dubois", "Novák", "O'Brien", "Rossi",
         "Kowalski", "Andersson", "Silva", "Chen", "Nguyen", "Schmidt", "Yılmaz", "Ivanova",
         "田中", "Brontë")
_CHANNELS = ("web", "ios", "android", "pos", "api", "phone")
_METHODS = ("card", "sepa_debit", "paypal", "apple_pay", "bank_transfer", "klarna")
_WORDS = ("priority handling requested by customer", "gift wrap", "deliver to reception",
          "leave at the back door", "invoice to head office", "split shipment allowed",
          "contact before delivery", "B2B order, VAT id on file", "promo AUTUMN26 applied",
          "customer prefers email", "fragile: glassware", "Lieferung an Packstation",
          "livraison express", "同梱不可", "re-sent by nightly reconciliation")
_FILLER = " · ".join(_WORDS * 40)

Envelope = dict[str, Any]
Item = tuple[Any, str, str | None]  # (element, expected bucket, rendering style)


class SynthStream:
    """An iterable of ``(element, bucket, style)`` in arrival order.

    ``element`` is an envelope dict, or (style ``"notjson"``) the text of a line that is
    not JSON. ``style`` is None (orjson, compact), ``"spaced"`` (extra whitespace) or
    ``"ascii"`` (non-ASCII as ``\\uXXXX`` escapes): renderings that §4 ignores.
    After iteration ``counts`` holds the expected §10 summary and ``pool`` the keys that
    are still cleanly processed (usable by another stream's ``overlap_from``).
    """

    def __init__(self, n: int, seed: int = 0, dup_rate: float = 0.03,
                 conflict_rate: float = 0.005, unknown_rate: float = 0.002,
                 invalid_rate: float = 0.0, attach_rate: float = 0.0,
                 payload_bytes: int = 400, tenants: Iterable[str] = DEFAULT_TENANTS,
                 sources: Iterable[str] = DEFAULT_SOURCES, key_prefix: str = "k",
                 overlap_from: SynthStream | dict[str, Any] | None = None,
                 overlap_rate: float = 0.001, pool_size: int = 20_000,
                 start: str = "2026-11-01T00:00:00Z", seconds_per_event: float = 2.5) -> None:
        self.n, self.seed, self.payload_bytes = n, seed, payload_bytes
        self.key_prefix, self.pool_size = key_prefix, pool_size
        self.tenants = tuple(tenants)
        self.sources = tuple(sources)
        if overlap_from is None:
            overlap_rate = 0.0
        cum, acc = [], 0.0
        for rate in (invalid_rate, unknown_rate, conflict_rate, dup_rate, attach_rate,
                     overlap_rate):
            acc += rate
            cum.append(acc)
        if acc >= 1.0:
            raise ValueError("the rates add up to 1 or more")
        self._cum = tuple(cum)
        self._overlap_src = overlap_from
        self._t0 = calendar.timegm(time.strptime(start, "%Y-%m-%dT%H:%M:%SZ"))
        self._spe = seconds_per_event
        self.counts: dict[str, int] = dict.fromkeys(("received",) + BUCKETS, 0)
        self.kinds: dict[str, int] = {}
        self.pool: list[Envelope] = []
        self.quarantined: list[tuple[Envelope, ...]] = []
        self.counter = 0
        self.r = Random(seed)
        self._setup()

    # -- building blocks ----------------------------------------------------------
    def _setup(self) -> None:
        r = Random(self.seed * 7919 + 17)
        self._customers = []
        for i in range(4096):
            country, cur = _COUNTRIES[r.randrange(len(_COUNTRIES))]
            cust = {"name": f"{r.choice(_FIRST)} {r.choice(_LAST)}",
                    "email": f"cust{i:04d}@example.{country.lower()}", "country": country}
            self._customers.append((f"c_{r.getrandbits(24):06x}", cur, cust,
                                    len(orjson.dumps(cust))))
        self._baskets = []
        skus = [(f"SKU-{r.randrange(10000, 99999)}", r.choice((199, 499, 999, 1250, 2499,
                 4999, 8900, 12900, 19999))) for _ in range(600)]
        for _ in range(2048):
            items = []
            for _ in range(r.choice((1, 1, 1, 2, 2, 3))):
                sku, price = skus[r.randrange(len(skus))]
                items.append({"sku": sku, "qty": r.choice((1, 1, 1, 2, 3)), "unit_price": price})
            amount = sum(i["qty"] * i["unit_price"] for i in items) * 119 // 100
            self._baskets.append((items, amount, len(orjson.dumps(items))))
        self._tenant_types = [(t, GLOBAL_TYPES + TENANT_TYPES.get(t, ())) for t in self.tenants]
        self._unknown = [(t, tuple(u for u in UNKNOWN_TYPES if u not in TENANT_TYPES.get(t, ())))
                         for t in self.tenants]
        self._minutes: dict[int, str] = {}

    def _ts(self, i: float) -> str:
        sec = self._t0 + int(i * self._spe)
        minute = sec // 60
        prefix = self._minutes.get(minute)
        if prefix is None:
            if len(self._minutes) > 100_000:
                self._minutes.clear()
            prefix = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))
            self._minutes[minute] = prefix
        return f"{prefix}{sec % 60:02d}Z"

    def new_event(self, unknown: bool = False, tenant: str | None = None) -> Envelope:
        """A fresh key: a new envelope with a realistic payload of ~payload_bytes."""
        r = self.r.random
        self.counter = c = self.counter + 1
        if tenant is None:
            tenant, types = (self._unknown if unknown else self._tenant_types)[
                int(r() * len(self.tenants))]
        else:
            types = dict(self._unknown if unknown else self._tenant_types)[tenant]
        etype = types[int(r() * len(types))]
        cid, cur, cust, csize = self._customers[int(r() * 4096)]
        items, amount, isize = self._baskets[int(r() * 2048)]
        h = (c * 0x9E3779B97F4A7C15 + self.seed) & 0xFFFFFFFFFFFFFFFF
        if etype[0] == "o":
            payload = {"amount": amount, "currency": cur, "customer_id": cid,
                       "status": _STATUS[etype], "order_id": f"o_{c + 100000:07d}",
                       "customer": cust, "line_items": items,
                       "metadata": {"channel": _CHANNELS[c % 6], "attempt": 1,
                                    "trace_id": f"{h:016x}"}}
            size = 213 + csize + isize
        else:
            payload = {"amount": amount, "currency": cur, "customer_id": cid,
                       "status": _STATUS[etype], "order_id": f"o_{c + 100000:07d}",
                       "payment_id": f"pay_{h >> 24:010x}", "method": _METHODS[h % 6],
                       "customer": cust, "line_items": items,
                       "metadata": {"channel": _CHANNELS[c % 6], "attempt": 1,
                                    "trace_id": f"{h:016x}"}}
            size = 250 + csize + isize
        pad = self.payload_bytes - size - 12
        if pad > 0:
            off = (h >> 7) % 2000
            payload["description"] = _FILLER[off:off + pad]
        return {"tenant_id": tenant, "idempotency_key": f"{self.key_prefix}_{c:08x}",
                "event_type": etype, "source": self.sources[(h >> 3) % len(self.sources)],
                "occurred_at": self._ts(c), "payload": payload}

    def duplicate_of(self, env: Envelope) -> tuple[Envelope, str | None, str]:
        """A re-send of ``env`` that §4 must still call the same event."""
        u = self.r.random()
        if u < 0.40:
            return dict(env), None, "dup_exact"
        if u < 0.55:
            p = env["payload"]
            rp = {k: p[k] for k in reversed(p)}
            if isinstance(p.get("customer"), dict):
                rp["customer"] = {k: v for k, v in reversed(p["customer"].items())}
            return {k: (rp if k == "payload" else env[k]) for k in reversed(env)}, None, "dup_reordered"
        if u < 0.72:
            return {**env, "occurred_at": self._ts(self.counter + 3)}, None, "dup_occurred_at"
        if u < 0.84:
            others = [s for s in self.sources if s != env.get("source")] or ["retry-worker"]
            return {**env, "source": others[int(self.r.random() * len(others))]}, None, "dup_source"
        if u < 0.90 and isinstance(env["payload"].get("amount"), int):
            p = dict(env["payload"])
            p["amount"] = float(p["amount"])
            return {**env, "payload": p}, None, "dup_float_amount"
        if u < 0.95:
            return dict(env), "spaced", "dup_whitespace"
        return dict(env), "ascii", "dup_ascii_escaped"

    def conflict_of(self, env: Envelope, kind: str | None = None) -> tuple[Envelope, str]:
        """A re-send of ``env`` whose payload differs in one (possibly nested) value."""
        kinds = ("amount_corrected", "amount_x100", "currency_fixed", "currency_null",
                 "customer_typo", "status_flip", "line_item_qty", "country_changed")
        kind = kind or kinds[int(self.r.random() * len(kinds))]
        p = dict(env["payload"])
        if kind == "amount_corrected":
            p["amount"] = p["amount"] - 1 - int(self.r.random() * 500)
        elif kind == "amount_x100":
            p["amount"] = p["amount"] * 100
        elif kind == "currency_fixed":
            p["currency"] = "USD" if p.get("currency") != "USD" else "EUR"
        elif kind == "currency_null":
            p["currency"] = None
        elif kind == "customer_typo":
            cid = p["customer_id"]
            swapped = cid[:-2] + cid[-1] + cid[-2]
            p["customer_id"] = swapped if swapped != cid else cid + "0"
        elif kind == "status_flip":
            p["status"] = "failed" if p.get("status") != "failed" else "succeeded"
        elif kind == "line_item_qty":
            items = [dict(i) for i in p["line_items"]]
            items[0]["qty"] += 1
            p["line_items"] = items
        elif kind == "country_changed":
            cust = dict(p["customer"])
            cust["country"] = "IE" if cust.get("country") != "IE" else "GB"
            p["customer"] = cust
        else:
            raise ValueError(f"unknown conflict kind {kind}")
        return {**env, "occurred_at": self._ts(self.counter + 2), "payload": p}, "conflict_" + kind

    def invalid_arrival(self) -> tuple[Any, str | None, str]:
        """An arrival that §5 row 6 turns into an INVALID_EVENT."""
        env = self.new_event()
        u = self.r.random()
        if u < 0.25:
            text = orjson.dumps(env).decode()
            return text[: len(text) // 2], "notjson", "invalid_truncated"
        if u < 0.45:
            env.pop("idempotency_key")
            return env, None, "invalid_missing_key"
        if u < 0.65:
            return {**env, "payload": "amount=1200&currency=EUR"}, None, "invalid_payload_string"
        if u < 0.80:
            return {**env, "tenant_id": ""}, None, "invalid_empty_tenant"
        if u < 0.90:
            return {**env, "payload": [env["payload"]]}, None, "invalid_payload_array"
        env.pop("event_type")
        return env, None, "invalid_missing_type"

    # -- the stream ---------------------------------------------------------------
    def _remember(self, env: Envelope) -> None:
        pool = self.pool
        if len(pool) < self.pool_size:
            pool.append(env)
        else:
            pool[int(self.r.random() * len(pool))] = env

    def _take(self, i: int) -> Envelope:
        pool = self.pool
        env = pool[i]
        pool[i] = pool[-1]
        pool.pop()
        return env

    def _overlap_pool(self) -> list[Envelope]:
        src = self._overlap_src
        if isinstance(src, dict):
            src = SynthStream(**src)
        if src is not None and src.counts["received"] == 0 and src.n:
            for _ in src:
                pass
        return list(src.pool) if src is not None else []

    def __iter__(self) -> Iterator[Item]:
        r = self.r.random
        c_att, c_ovl = self._cum[4:]
        overlap = self._overlap_pool() if c_ovl > c_att else []
        counts, kinds = self.counts, self.kinds
        new_event, pool, cap = self.new_event, self.pool, self.pool_size
        fresh = 0  # the common case is counted here and flushed at the end
        try:
            for _ in range(self.n):
                u = r()
                if u >= c_ovl:
                    el = new_event()
                    if len(pool) < cap:
                        pool.append(el)
                    else:
                        pool[int(r() * cap)] = el
                    fresh += 1
                    yield el, "processed", None
                    continue
                el, bucket, style, kind = self._planted(u, overlap)
                counts["received"] += 1
                counts[bucket] += 1
                kinds[kind] = kinds.get(kind, 0) + 1
                yield el, bucket, style
        finally:
            counts["received"] += fresh
            counts["processed"] += fresh
            kinds["new"] = kinds.get("new", 0) + fresh

    def _planted(self, u: float, overlap: list[Envelope]) -> tuple[Any, str, str | None, str]:
        """The arrival for a draw ``u`` below the planted-rate thresholds."""
        r = self.r.random
        c_inv, c_unk, c_con, c_dup, c_att, _ = self._cum
        style: str | None = None
        if u < c_inv:
            el, style, kind = self.invalid_arrival()
            return el, "exceptions_opened", style, kind
        if u < c_unk:
            el = self.new_event(unknown=True)
            self.quarantined.append((el,))
            return el, "exceptions_opened", None, "unknown_type"
        if u < c_con and self.pool:
            orig = self._take(int(r() * len(self.pool)))
            el, kind = self.conflict_of(orig)
            self.quarantined.append((orig, el))
            return el, "exceptions_opened", None, kind
        if c_con <= u < c_dup and self.pool:
            el, style, kind = self.duplicate_of(self.pool[int(r() * len(self.pool))])
            return el, "duplicates", style, kind
        if c_dup <= u < c_att and self.quarantined:
            versions = self.quarantined[int(r() * len(self.quarantined))]
            el, style, kind = self.duplicate_of(versions[int(r() * len(versions))])
            return el, "attached", style, "attach_" + kind
        if c_att <= u and overlap:
            el, style, kind = self.duplicate_of(overlap[int(r() * len(overlap))])
            return el, "duplicates", style, "overlap_" + kind
        el = self.new_event()
        self._remember(el)
        return el, "processed", None, "new"


def render(el: Any, style: str | None) -> bytes:
    """One JSON Lines line (without the newline) for a stream item."""
    if style is None:
        return orjson.dumps(el)
    if style == "notjson" or style == "raw":
        return el.encode("utf-8")
    if style == "spaced":
        return json.dumps(el, ensure_ascii=False, separators=(" ,  ", " : ")).encode("utf-8")
    if style == "ascii":
        return json.dumps(el, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    raise ValueError(f"unknown style {style!r}")


def generate_events(n: int, seed: int = 0, dup_rate: float = 0.03,
                    conflict_rate: float = 0.005, unknown_rate: float = 0.002,
                    invalid_rate: float = 0.0, payload_bytes: int = 400,
                    tenants: Iterable[str] = DEFAULT_TENANTS, key_prefix: str = "k",
                    **kw: Any) -> Iterator[Any]:
    """Yield ``n`` envelopes (dicts) in arrival order; see ``SynthStream`` for ``kw``.

    An invalid arrival that is not JSON at all is yielded as its text (a ``str``), which
    an iterable ingest also treats as an invalid arrival.
    """
    stream = SynthStream(n, seed=seed, dup_rate=dup_rate, conflict_rate=conflict_rate,
                         unknown_rate=unknown_rate, invalid_rate=invalid_rate,
                         payload_bytes=payload_bytes, tenants=tenants,
                         key_prefix=key_prefix, **kw)
    for el, _, _ in stream:
        yield el


def expected_summary(n: int, seed: int = 0, **kw: Any) -> dict[str, Any]:
    """The §10 summary an ingest of ``generate_events(n, seed, **kw)`` into an empty store
    must report (overlapping re-sends count as duplicates: their source came first)."""
    stream = SynthStream(n, seed=seed, **kw)
    for _ in stream:
        pass
    return {**stream.counts, "skipped_files": []}


def write_items(path: str | Path, items: Iterable[Item]) -> Path:
    """Write stream items as JSON Lines, in batches."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dumps = orjson.dumps
    was_enabled = gc.isenabled()
    gc.disable()  # the stream keeps a large pool alive: full collections cost ~30%
    try:
        with open(path, "wb") as f:
            buf: list[bytes] = []
            for el, _, style in items:
                buf.append(dumps(el) if style is None else render(el, style))
                if len(buf) >= 20_000:
                    buf.append(b"")
                    f.write(b"\n".join(buf))
                    buf.clear()
            if buf:
                buf.append(b"")
                f.write(b"\n".join(buf))
    finally:
        if was_enabled:
            gc.enable()
    return path


def write_jsonl(path: str | Path, n: int, seed: int = 0,
                expected: dict[str, Any] | None = None, **kw: Any) -> Path:
    """Write ``n`` events (``generate_events`` arguments) to ``path`` as JSON Lines.

    If ``expected`` is a dict it receives the expected §10 summary of the file (into an
    empty store), plus ``kinds``: how many arrivals of each planted variety it holds.
    """
    stream = SynthStream(n, seed=seed, **kw)
    write_items(path, stream)
    if expected is not None:
        expected.update(stream.counts, skipped_files=[], kinds=dict(stream.kinds))
    return Path(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m opswb.testing.synth OUT.jsonl --n N --seed S``: write a file, print its plan."""
    ap = argparse.ArgumentParser(prog="python -m opswb.testing.synth", description=main.__doc__)
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    for name, default in (("dup", 0.03), ("conflict", 0.005), ("unknown", 0.002),
                          ("invalid", 0.0), ("attach", 0.0)):
        ap.add_argument(f"--{name}-rate", type=float, default=default)
    ap.add_argument("--payload-bytes", type=int, default=400)
    ap.add_argument("--key-prefix", default="k")
    ap.add_argument("--tenants", default=",".join(DEFAULT_TENANTS))
    a = vars(ap.parse_args(argv))
    out, n, t0 = a.pop("out"), a.pop("n"), time.perf_counter()
    a["tenants"] = tuple(t for t in a["tenants"].split(",") if t)
    expected: dict[str, Any] = {}
    write_jsonl(out, n, expected=expected, **a)
    print(json.dumps({"file": out, "seconds": round(time.perf_counter() - t0, 2),
                      "expected": expected}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

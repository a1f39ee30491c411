"""Hostile inputs for the reader tests: a corpus of named cases and a hypothesis strategy
of envelopes with hostile mutations, plus what a store made of them looks like.

Every case is the exact bytes of one element without a raw line end, blank-free at both
ends, so the same bytes can go through every path: a JSON Lines file (bulk reader), an
NDJSON body (per-line reader), a JSON array file or body (array reader), over HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
from hypothesis import strategies as st

from opswb.core.fingerprint import fingerprint, loads

TYPES = ("payment.captured", "order.created", "invoice.paid")  # the last is not allowed


def env_text(tenant: Any = "acme", key: Any = "k1", etype: Any = "payment.captured",
             payload: str = '{"amount":1200,"currency":"EUR"}', extra: str = "") -> bytes:
    """An envelope's text with ``payload`` (JSON text) spliced in as given."""
    head = ",".join(f"{json.dumps(k)}:{v if isinstance(v, _Raw) else json.dumps(v)}"
                    for k, v in (("tenant_id", tenant), ("idempotency_key", key),
                                 ("event_type", etype)))
    return f'{{{head},"payload":{payload}{extra}}}'.encode("utf-8", "surrogatepass")


class _Raw(str):
    """A field value spliced into the text as is (not JSON-quoted)."""


def corpus() -> dict[str, list[bytes]]:
    """The issue's reproductions and their kin: name -> elements (valid ones around)."""
    deep = "[" * 2000 + "]" * 2000
    return {
        "lone surrogate in tenant_id": [env_text(_Raw('"a\\ud800"'), "s1")],
        "lone surrogate in idempotency_key": [env_text("acme", _Raw('"k\\udc00"'))],
        "lone surrogate in payload": [env_text("acme", "s2", payload='{"x":"\\ud800"}')],
        "array as a JSON Lines line": [b"[1,2]"],
        "payload nested 2,000 deep, then the same key": [
            env_text("acme", "deep", payload='{"d":' + deep + "}"),
            env_text("acme", "deep", payload='{"d":1}')],
        "1e400 then null on one key": [
            env_text("acme", "big", payload='{"n":1e400}'),
            env_text("acme", "big", payload='{"n":null}'),
            env_text("acme", "big", payload='{"n":10e399}'),
            env_text("acme", "big", payload='{"n":-1e400}')],
        "1e-400 is not 0": [env_text("acme", "tiny", payload='{"n":0}'),
                            env_text("acme", "tiny", payload='{"n":1e-400}')],
        "NaN literal": [env_text("acme", "nan", payload='{"n":NaN}')],
        "Infinity literal": [env_text("acme", "inf", payload='{"n":-Infinity}')],
        "lower-case nan": [env_text("acme", "nan2", payload='{"n":nan}')],
        "duplicate payload member": [
            (b'{"tenant_id":"acme","idempotency_key":"dup","event_type":"payment.captured",'
            b'"payload":{"a":1},"payload":{"a":2}}')],
        "duplicate tenant_id": [
            (b'{"tenant_id":"acme","tenant_id":"globex","idempotency_key":"dup2",'
            b'"event_type":"payment.captured","payload":{"a":1}}')],
        "duplicate nested member": [env_text("acme", "dup3", payload='{"a":{"b":1,"b":1}}')],
        "trailing comma": [env_text("acme", "tc", payload='{"a":1,}')],
        "control character in a string": [env_text("acme", "ctl", payload='{"a":"x\x01y"}')],
        "exact text kept": [env_text("acme", "exact", payload='{ "amount" : 100.00,'
                                                              ' "name": "\\u00e9" }')],
        "huge string": [env_text("acme", "huge", payload='{"s":"' + "x" * 200_000 + '"}')],
        "huge integer": [env_text("acme", "hugeint", payload='{"n":' + "9" * 500 + "}")],
        "not JSON": [b"{broken"],
        "a bare string": [b'"just a string"'],
        "payload an array": [env_text("acme", "pa", payload="[1,2]")],
        "tenant a number": [env_text(_Raw("42"), "tn")],
    }


VALID = [env_text("acme", f"ok{i}", payload=f'{{"amount":{i}}}') for i in range(3)]


def corpus_lines() -> list[bytes]:
    """Every corpus case between valid lines."""
    out = [VALID[0]]
    for elements in corpus().values():
        out.extend(elements)
        out.append(VALID[1])
    return out + [VALID[2]]


# ---- hypothesis -------------------------------------------------------------------

_numbers = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1e400", "-1e400", "10e399", "1e-400", "100.00", "1e2", "-0",
                     "123456789012345678901234567890"]).map(_Raw))
_strings = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_leaf = st.one_of(_numbers, _strings, st.booleans(), st.none())
_payload = st.dictionaries(st.sampled_from("abcdef"), st.one_of(
    _leaf, st.lists(_leaf, max_size=3), st.dictionaries(st.sampled_from("xyz"), _leaf,
                                                        max_size=3)), max_size=4)


def _dump(value: Any, rng: Any) -> str:
    """JSON text of ``value`` with random spacing and escapes (``_Raw`` spliced as is)."""
    sp = rng.choice(["", " ", "\t", "  "])
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + f",{sp}".join(f"{_dump(k, rng)}{sp}:{sp}{_dump(v, rng)}"
                                   for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + f",{sp}".join(_dump(v, rng) for v in value) + "]"
    return json.dumps(value, ensure_ascii=rng.random() < 0.5)


_MUTATIONS = (
    "none", "none", "none", "dup_top", "dup_payload", "surrogate", "nan", "deep", "deep_ok",
    "control", "wrong_type", "not_json", "trailing_comma", "bad_ws", "huge")


@st.composite
def elements(draw: Any, prefix: str = "") -> list[bytes]:
    """1-10 elements over three keys: copies, respellings, conflicts and mutations."""
    rng = draw(st.randoms(use_true_random=False))
    out: list[bytes] = []
    for _ in range(draw(st.integers(1, 10))):
        tenant = draw(st.sampled_from(["acme", "globex"]))
        key = prefix + draw(st.sampled_from(["k1", "k2", "k3"]))
        etype = draw(st.sampled_from(TYPES))
        payload = draw(_payload)
        out.append(_mutate(draw(st.sampled_from(_MUTATIONS)), tenant, key, etype,
                           payload, rng))
    return out


def _mutate(how: str, tenant: str, key: str, etype: str, payload: dict, rng: Any) -> bytes:
    p = _dump(payload, rng)
    if how == "dup_top":
        return env_text(tenant, key, etype, p, extra=f',"tenant_id":{json.dumps(tenant)}')
    if how == "dup_payload":
        return env_text(tenant, key, etype, '{"a":1,"a":1}' if not payload else
                        p[:-1] + ("," if payload else "") + p[1:])
    if how == "surrogate":
        return env_text(tenant, key, etype, '{"s":"\\udead"}')
    if how == "nan":
        return env_text(tenant, key, etype, '{"n":' + rng.choice(["NaN", "Infinity",
                                                                 "-Infinity"]) + "}")
    if how in ("deep", "deep_ok"):
        d = rng.choice([126, 127]) if how == "deep_ok" else rng.choice([128, 200, 3000])
        return env_text(tenant, key, etype, '{"d":' + "[" * d + "]" * d + "}")
    if how == "control":
        # not 10: a raw line feed ends a JSON Lines element, whatever it was inside
        control = rng.choice([c for c in range(1, 32) if c != 10])
        return env_text(tenant, key, etype, '{"c":"a' + chr(control) + 'b"}')
    if how == "wrong_type":
        field = rng.choice(["tenant", "key", "etype", "payload"])
        bad = _Raw(rng.choice(["42", "null", "[]", "{}", '""', '"  "', "true"]))
        return env_text(*(bad if f == field else v for f, v in (
            ("tenant", tenant), ("key", key), ("etype", etype))),
            payload=str(bad) if field == "payload" else p)
    if how == "not_json":
        return rng.choice([b"{bad}", b"{'a':1}", b'{"a":tru}', b"nul", b"42", b'"s"'])
    if how == "trailing_comma":
        return env_text(tenant, key, etype, p[:-1] + ",}" if payload else '{"a":[1,]}')
    if how == "bad_ws":
        return env_text(tenant, key, etype, p).replace(b":", b":\xc2\xa0", 1)
    if how == "huge":
        return env_text(tenant, key, etype, '{"s":"' + "y" * 70_000 + '","n":' +
                        "7" * 400 + "}")
    return env_text(tenant, key, etype, p)


# ---- what a store made of them looks like ----------------------------------------

def arrivals(db: str, since: int = 0) -> list[tuple]:
    """Each arrival after raw id ``since``, in order: text, valid, the rule that failed,
    outcome, the reason of the exception it opened, and its fingerprint computed from
    what the store kept of its payload."""
    con = duckdb.connect(db, read_only=True)
    try:
        rows = con.execute(
            "SELECT r.text, r.valid, r.error, r.outcome, e.reason_code, r.event_type,"
            " CASE WHEN r.payload IS NULL AND r.valid THEN"
            " json_extract(r.text, '$.payload')::VARCHAR ELSE r.payload END"
            " FROM raw_events r LEFT JOIN exceptions e ON e.raw_id = r.raw_id"
            " WHERE r.raw_id > ? ORDER BY r.raw_id", [since]).fetchall()
    finally:
        con.close()
    return [(text, valid, error.split(": ", 1)[0] if error else None, outcome, reason,
             fingerprint(etype, loads(payload)) if valid else None)
            for text, valid, error, outcome, reason, etype, payload in rows]


def result_view(answer: dict) -> list[tuple]:
    """An HTTP answer's per-arrival ``results`` as (outcome, reason) pairs."""
    return [(r["outcome"], r.get("reason_code")) for r in answer.get("results", [])]


OUTCOMES = {"processed": "processed", "duplicates": "duplicate",
            "exceptions_opened": "exception_opened", "attached": "attached"}

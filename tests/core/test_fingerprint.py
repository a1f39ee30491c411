"""SPEC §4: what counts as the same event, and RFC 7396 merge patch."""

from __future__ import annotations

import pytest

from opswb.core.fingerprint import canonical_json, fingerprint, loads
from opswb.core.jsondiff import json_diff
from opswb.core.mergepatch import merge_patch
from tests.helpers import ev

BASE = {"amount": 100, "items": [{"sku": "a", "qty": 1}], "meta": {"note": "café"}}


@pytest.mark.parametrize("text", [
    '{"meta": {"note": "café"}, "items": [{"qty": 1, "sku": "a"}], "amount": 100}',
    '{ "amount" : 100.0 , "items":[{"sku":"a","qty":1}],"meta":{"note":"caf\\u00e9"}}',
    '{"amount": 1e2, "items": [{"sku": "a", "qty": 1.0}], "meta": {"note": "cafe\\u0301"}}',
], ids=["key order", "whitespace, 100.0, escape", "1e2 (but a different string)"])
def test_same_value_same_fingerprint(text):
    same = fingerprint("payment.captured", loads(text)) == fingerprint("payment.captured", BASE)
    # The third text spells "café" with a combining accent: a different Unicode string.
    assert same is ("cafe\\u0301" not in text)


def test_big_integers_compare_exactly():
    a = loads('{"n": 9007199254740993}')
    b = loads('{"n": 9007199254740992}')
    c = loads('{"n": 123456789012345678901234567890}')
    assert fingerprint("t", a) != fingerprint("t", b)
    assert canonical_json(c) == b'{"n":123456789012345678901234567890}'


def test_changed_nested_value_or_type_changes_fingerprint():
    changed = {**BASE, "items": [{"sku": "a", "qty": 2}]}
    assert fingerprint("payment.captured", changed) != fingerprint("payment.captured", BASE)
    assert fingerprint("payment.refunded", BASE) != fingerprint("payment.captured", BASE)
    assert fingerprint("t", {"a": True}) != fingerprint("t", {"a": 1})


def test_envelope_fields_outside_identity_make_duplicates(local_wb):
    s = local_wb.ingest([
        ev("K", BASE, source="billing-api", occurred_at="2026-11-27T10:00:00Z"),
        ev("K", {"meta": {"note": "café"}, "amount": 100.0, "items": [{"qty": 1, "sku": "a"}]},
           source="retry-worker", occurred_at="2026-11-27T10:05:00Z", trace_id="t-2"),
    ])
    assert (s["processed"], s["duplicates"]) == (1, 1)
    s = local_wb.ingest([ev("K", {**BASE, "meta": {"note": "cafe"}})])
    assert s["exceptions_opened"] == 1


# RFC 7396 Appendix A: (target, patch, result)
RFC7396 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("target,patch,result", RFC7396)
def test_merge_patch_rfc7396_appendix(target, patch, result):
    snapshot = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == snapshot          # the target is not modified


def test_diff_paths_are_json_pointers():
    d = json_diff({"a/b": 1, "x": [1, 2], "gone": 0, "n": 1.0},
                  {"a/b": 2, "x": [1], "new~": 1, "n": 1})
    assert d == {"changed": [{"path": "/a~1b", "first": 1, "last": 2}],
                 "added": [{"path": "/new~0", "last": 1}],
                 "removed": [{"path": "/x/1", "first": 2}, {"path": "/gone", "first": 0}]}

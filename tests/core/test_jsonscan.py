"""The duplicate-name scanner behind the bulk reader (core.jsonscan).

The C scanner may call a line suspect that is not (the bulk reader then parses it
exactly), never the other way round: every line the exact check finds bad, it finds too.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opswb.core import jsonscan
from tests.hostile import corpus_lines, elements

needs_native = pytest.mark.skipif(not jsonscan.NATIVE, reason="built without a C compiler")


def _scan(lines: list[bytes], scanner) -> set[int]:
    data = b"".join(lines)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    return set(scanner(data, offsets, list(range(len(lines)))))


def test_the_scanner_is_built_here():
    """CI's machine has a compiler: a silent fallback would cost the bulk rate."""
    assert jsonscan.NATIVE, "opswb.core._jsonscan did not build (pip install -e . logs why)"


@needs_native
def test_native_flags_every_line_the_exact_check_flags_in_the_corpus():
    lines = corpus_lines()
    exact = _scan(lines, jsonscan.suspect_lines_py)
    native = _scan(lines, jsonscan.suspect_lines_native)
    assert exact  # the corpus holds duplicates, deep nesting, NaN...
    assert exact <= native


@needs_native
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(elements())
def test_native_flags_every_line_the_exact_check_flags(lines):
    assert _scan(lines, jsonscan.suspect_lines_py) <= _scan(lines, jsonscan.suspect_lines_native)


@needs_native
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(st.text(max_size=4), kids, max_size=4),
                    max_leaves=20))
def test_plain_json_without_duplicates_is_cleared(value):
    line = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    if b"\\" in line:  # an escaped name is suspect by design
        return
    assert _scan([line], jsonscan.suspect_lines_native) == set()


def test_duplicates_at_any_depth_are_suspect():
    lines = [b'{"a":1,"a":2}', b'{"p":{"x":{"y":1,"y":1}}}', b'[{"k":1},{"k":2}]',
             b'{"a":{"b":1},"b":{"a":1}}']
    assert _scan(lines, jsonscan.suspect_lines_py) >= {0, 1}
    if jsonscan.NATIVE:
        assert _scan(lines, jsonscan.suspect_lines_native) >= {0, 1}
    assert not {2, 3} & _scan(lines, jsonscan.suspect_lines_py)


@pytest.mark.parametrize("scanner", ["suspect_lines_py", "suspect_lines_native"])
def test_indexes_out_of_range_are_refused(scanner):
    if scanner == "suspect_lines_native" and not jsonscan.NATIVE:
        pytest.skip("built without a C compiler")
    with pytest.raises(ValueError):
        getattr(jsonscan, scanner)(b"{}", [0, 2], [1])


@needs_native
def test_numbers_a_double_would_misread_are_suspect():
    lines = [b'{"n":1e-400}', b'{"n":1E400}', b'{"n":0.' + b"0" * 320 + b'1}',
             b'{"n":1e-40}', b'{"n":12.5e+99}', b'{"n":123456}']
    assert _scan(lines, jsonscan.suspect_lines_native) == {0, 1, 2}


@needs_native
def test_bad_escapes_and_lone_surrogates_are_suspect():
    lines = [b'{"s":"\\ud800"}', b'{"s":"\\udc00\\ud800"}', b'{"s":"a\\ud83dx"}',
             b'{"s":"\\x41"}', b'{"s":"\\u12G4"}', b'{"s":"\\ud83d\\ude00"}',
             b'{"s":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9"}', b'["\\ud800\\u0041"]']
    assert _scan(lines, jsonscan.suspect_lines_native) == {0, 1, 2, 3, 4, 7}


@needs_native
def test_scan_envelopes_reads_the_fields_of_plain_lines_only():
    lines = [(b'{"tenant_id":"acme","idempotency_key":"k1","event_type":"t.x","source":null,'
             b'"payload":{"tenant_id":"no"},"occurred_at":"2026-12-06"}'),
             b'{"tenant_id":"\xc3\xa9","idempotency_key":"k","event_type":"t","payload":{}}',
             b'{"tenant_id":"a","idempotency_key":"k","event_type":"t","payload":[]}',
             b'{"tenant_id":"a","idempotency_key":"k\\n","event_type":"t","payload":{}}',
             b'{"tenant_id":"a","idempotency_key":"k","event_type":"t","payload":{},"a":1,"a":2}',
             b' {"tenant_id":"a","idempotency_key":"k","event_type":"t","payload":{}}',
             b'{"tenant_id":"b","idempotency_key":"k\xe9\x94\xae","event_type":"t","payload":{}}']
    data = b"".join(lines)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    plain, fields = jsonscan.scan_envelopes(data, offsets)
    assert list(plain) == [1, 0, 0, 0, 0, 0, 1]
    got = {}
    for name, (offs, text, valid) in zip(jsonscan.ENVELOPE_FIELDS, fields):
        cuts = memoryview(offs).cast("i").tolist()
        got[name] = [text[cuts[i]:cuts[i + 1]].decode() if valid[i] else None
                     for i in range(len(lines))]
    assert got["tenant_id"] == ["acme", None, None, None, None, None, "b"]
    assert got["idempotency_key"][6] == "k\u952e"  # raw UTF-8 after an ASCII first byte
    assert got["source"] == [None] * 7
    assert got["occurred_at"][0] == "2026-12-06"

"""The I-JSON reader's shortcuts give the answers of the checks they stand in for."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from opswb.core import strictjson

_ALPHABET = b'0123456789eE+-.:,[ "\\u003aAx{}'
_TEXT = st.lists(st.sampled_from(list(_ALPHABET)), max_size=60).map(bytes)


@given(_TEXT, st.integers(0, 3), st.integers(15, 24), st.integers(295, 305))
def test_the_fast_risk_check_answers_as_the_regex(text, extra, digits, zeros):
    candidates = [text, text + b"7" * digits, b":0." + b"0" * zeros + b"1",
                  b'{"n":' + text + b"e-" + b"9" * extra + b"}"]
    for raw in candidates:
        assert strictjson._risky(raw) == (strictjson._RISKY.search(raw) is not None), raw


def test_numbers_past_the_double_range_keep_their_exact_value():
    assert strictjson.read(b'{"n":1e400}') != strictjson.read(b'{"n":null}')
    assert strictjson.read(b'{"n":1e-400}')["n"] != 0.0
    assert strictjson.read(b"123456789012345678901234") == 123456789012345678901234

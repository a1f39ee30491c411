"""The scale stream: n arrivals, one failure group of the asked size, same bytes twice."""

from __future__ import annotations

import opswb
from opswb.testing.scale import GROUP_TYPE, write_scale_events


def test_the_scale_store_has_one_big_group(tmp_path):
    path = write_scale_events(tmp_path / "a.jsonl", n=3_000, unknown=600, seed=3)
    assert path.read_bytes() == write_scale_events(tmp_path / "b.jsonl", 3_000, 600,
                                                   seed=3).read_bytes()
    wb = opswb.connect(str(tmp_path / "s.duckdb"))
    wb.init()
    assert wb.ingest(str(path))["received"] == 3_000
    top = wb.groups()["items"][0]
    assert top["signature"] == GROUP_TYPE and top["count"] >= 600

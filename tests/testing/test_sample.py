"""The engine against an independent row-by-row model of §5, on the shipped sample data
and on a generated stream with every planted variety."""

from __future__ import annotations

from pathlib import Path

import pytest

from opswb.testing.reference import reference_summary
from opswb.testing.synth import write_jsonl

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_events.jsonl"
COUNTS = ("received", "processed", "duplicates", "exceptions_opened", "attached")


def _check(wb, path: Path) -> None:
    expected = reference_summary(path)
    got = wb.ingest(str(path))
    assert {k: got[k] for k in COUNTS} == {k: expected[k] for k in COUNTS}
    h = wb.health()
    assert h["idempotency"] == expected["keys"]
    assert h["open_by_reason"] == {k: v for k, v in expected["reasons"].items() if v}


def test_sample_data_matches_the_reference_model(local_wb):
    _check(local_wb, SAMPLE)


@pytest.mark.parametrize("chunk", ["37", "500", "100000"],
                         ids=["small chunks", "mid chunks", "one chunk"])
def test_generated_stream_matches_the_reference_model(local_wb, tmp_path, monkeypatch, chunk):
    monkeypatch.setenv("OPSWB_CHUNK_ROWS", chunk)
    path = write_jsonl(tmp_path / "gen.jsonl", 3000, seed=7, dup_rate=0.1,
                       conflict_rate=0.05, unknown_rate=0.02, invalid_rate=0.02,
                       attach_rate=0.03)
    _check(local_wb, path)

"""Committed notebooks: no outputs, a python3 kernelspec, thin; and nbval runs the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPORT = ROOT / "notebooks" / "health_report.ipynb"


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_there_are_notebooks():
    assert REPORT in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_without_outputs(path):
    nb = _load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            where = f"{path.name} cell {cell.get('id')}"
            assert cell["outputs"] == [], f"{where} has outputs"
            assert cell["execution_count"] is None, f"{where} has an execution count"
    assert "widgets" not in nb["metadata"], f"{path.name} carries widget state"


def test_report_notebook_is_thin():
    cells = [c for c in _load(REPORT)["cells"] if c["cell_type"] == "code"]
    params = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and cells[0] is params[0]
    names = {line.split("=")[0].strip() for line in "".join(params[0]["source"]).splitlines()
             if "=" in line and not line.startswith("#")}
    assert names == {"db", "as_of", "since", "tenant_id", "max_open", "max_oldest_open_hours",
                     "max_invalid", "record_snapshot", "out_json"}
    body = ["".join(c["source"]) for c in cells[1:]]
    assert body[0] == "from opswb.report import render as rv"
    code = "\n".join(body[1:])
    assert "import" not in code
    for word in ("SELECT", "duckdb", "groupby", "for ", "if "):
        assert word not in code, f"logic in the notebook: {word!r}"

# nbval itself runs every notebook in `make test` (`pytest tests notebooks --nbval-lax`).


@pytest.mark.slow
def test_triage_notebook_runs_against_postgresql(pg_url, tmp_path):
    """The triage notebook over a ``postgresql://`` store: the console inline, and the
    history analytics over a DuckDB copy taken at the start (it says so)."""
    import papermill

    import opswb
    from tests.helpers import ev

    wb = opswb.connect(pg_url)
    wb.ingest_batch([ev("K1", {"amount": 1}), ev("K1", {"amount": 2}),
                     ev("K2", {"amount": 1}, event_type="invoice.paid"), "not an event"])
    conflict = wb.list_exceptions(reason_code="IDEMPOTENCY_CONFLICT")["items"][0]
    wb.resolve(conflict["exception_id"], "mark_resolved_no_replay", "ann", "noise")
    out = tmp_path / "triage.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "triage.ipynb"), str(out),
                               parameters={"db": pg_url}, kernel_name="python3",
                               cwd=str(ROOT / "notebooks"), progress_bar=False)
    text = json.dumps(_load(out))
    assert "PostgreSQL store: the analytics below read a DuckDB copy taken now" in text
    assert "invoice.paid" in text  # analytics.unknown_types, read from the copy

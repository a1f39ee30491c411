"""How the store is opened: an ingest's connections write row groups of half DuckDB's
default (so a chunk is compressed on two cores), and a connection of this process that
finds the file taken waits, shares it or gives up with a clear message."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

import opswb
from opswb.core.errors import StoreBusy
from opswb.store.duckdb.connection import INGEST_ROW_GROUP, connect_raw, open_store
from opswb.testing.synth import write_jsonl


def _raw_row_groups(db: str) -> list[int]:
    con = duckdb.connect(db, read_only=True)
    try:
        # A row group's rows: the sum over the segments of one column.
        return [n for (n,) in con.execute(
            "SELECT sum(count)::BIGINT FROM pragma_storage_info('raw_events')"
            " WHERE column_name = 'raw_id' AND segment_type <> 'VALIDITY'"
            " GROUP BY row_group_id ORDER BY row_group_id").fetchall()]
    finally:
        con.close()


def test_an_ingested_chunk_fills_row_groups_of_the_ingest_size(db_path, tmp_path):
    expected: dict = {}
    path = write_jsonl(tmp_path / "a.jsonl", 2 * INGEST_ROW_GROUP + 500, seed=3,
                       expected=expected, payload_bytes=40)
    summary = opswb.connect(db_path).ingest(str(path))
    assert summary["received"] == expected["received"] == 2 * INGEST_ROW_GROUP + 500
    groups = _raw_row_groups(db_path)
    assert sum(groups) == summary["received"]
    # The first chunk (122,880 arrivals) is two full row groups of 61,440, not one.
    assert groups[:2] == [INGEST_ROW_GROUP, INGEST_ROW_GROUP]
    assert max(groups) == INGEST_ROW_GROUP
    assert not Path(db_path + ".wal").exists()  # closed and checkpointed like any other
    # The file is released: another process opens it at once.
    r = subprocess.run([sys.executable, "-c", "import duckdb,sys; duckdb.connect(sys.argv[1]).close()",
                        db_path], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr


def test_while_an_ingest_holds_the_file_this_process_waits_for_it(db_path):
    held = connect_raw(db_path, row_group_size=INGEST_ROW_GROUP)
    opened: list[float] = []

    def reader() -> None:
        started = time.monotonic()
        with open_store(db_path, timeout=10) as con:
            con.execute("SELECT count(*) FROM raw_events").fetchall()
        opened.append(time.monotonic() - started)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.5)
    assert opened == []  # still waiting for the ingest's connection
    held.close()
    t.join(10)
    assert opened and 0.4 <= opened[0] < 10


def test_a_busy_file_in_this_process_gives_up_with_a_clear_message(db_path):
    held = connect_raw(db_path, row_group_size=INGEST_ROW_GROUP)
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusy) as err:
            connect_raw(db_path, timeout=0.5)
        assert 0.5 <= time.monotonic() - started < 5
    finally:
        held.close()
    assert "another connection of this process" in str(err.value)
    assert db_path in str(err.value)


def test_an_ingest_shares_a_connection_this_process_already_has(db_path):
    # A plain connection of this process (a notebook's, say) holds the file: the ingest
    # uses its instance instead of waiting for it to close.
    plain = connect_raw(db_path)
    try:
        summary = opswb.connect(db_path, busy_timeout=1.0).ingest(
            [{"tenant_id": "t", "idempotency_key": f"k{i}", "event_type": "order.created",
              "payload": {"n": i}} for i in range(3)])
        assert summary["processed"] == 3
        assert plain.execute("SELECT count(*) FROM raw_events").fetchall()[0][0] == 3
    finally:
        plain.close()

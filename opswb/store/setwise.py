"""The set-wise decision statements of ``store.base.Session`` (issue 17), bound once.

Each backend keeps them in its own ``setwise`` module, one function per method with the
connection first; a session names that module as ``self.setwise`` and this mixin binds
it, so the two backends' sessions don't repeat the same nine one-line methods.
"""

from __future__ import annotations

from typing import Any


class SetwiseBinding:
    """The set-wise methods of a session whose ``setwise`` module and ``con`` are set; a
    write session's ``for_update`` (PostgreSQL) makes the reads lock what they read."""

    con: Any
    setwise: Any
    for_update: bool = False

    def exceptions_by_ids(self, exception_ids: list[int]) -> dict[int, dict]:
        return self.setwise.exceptions_by_ids(self.con, exception_ids, self.for_update)

    def key_records_of(self, exceptions: list[dict]) -> dict[int, dict]:
        return self.setwise.key_records_of(self.con, exceptions, self.for_update)

    def fingerprints_of_exceptions(self, spans: dict[int, tuple[int, int]]
                                   ) -> dict[int, list[str]]:
        return self.setwise.fingerprints_of_exceptions(self.con, spans)

    def raw_rows(self, raw_ids: list[int]) -> dict[int, dict]:
        return self.setwise.raw_rows(self.con, raw_ids)

    def last_differing_arrivals(self, items: dict[int, tuple[int, int, str | None]]
                                ) -> dict[int, int]:
        return self.setwise.last_differing_arrivals(self.con, items)

    def update_keys(self, rows: list[dict]) -> None:
        self.setwise.update_keys(self.con, rows)

    def close_exceptions(self, rows: list[dict], action: str, actor: str, notes: str,
                         replayed: bool) -> None:
        self.setwise.close_exceptions(self.con, rows, action, actor, notes, replayed)

    def add_replay_deliveries(self, rows: list[dict]) -> dict[tuple[str, str], int]:
        return self.setwise.add_replay_deliveries(self.con, rows)

    def write_audits(self, entries: list[dict]) -> None:
        self.setwise.write_audits(self.con, entries)

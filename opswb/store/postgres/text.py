"""Text as PostgreSQL can hold it.

PostgreSQL text holds no NUL and no unpaired surrogate (what bytes that were not UTF-8
decode to). An arrival's text is stored with such characters as U+FFFD (its exact text
kept beside it in ``raw_events.text_bytes``, ``classify``); every other string a
statement binds — a lookup's tenant or key, a note — is mapped the same way by the
connection's string dumper (``nul_safe_str_dumper``), so a lookup finds what an arrival
with the same id was stored under, and a value PostgreSQL cannot hold is never a server
error.
"""

from __future__ import annotations

from functools import cache
from typing import Any


def storable(value: str | None) -> str | None:
    """``value`` as PostgreSQL text can hold it: a NUL or an unpaired surrogate (from
    bytes that were not UTF-8) becomes U+FFFD. Only invalid arrivals carry such
    characters raw; their exact text is kept beside it (``text_bytes``)."""
    if value is None or (NUL not in value and value.isascii()):
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    return value.replace(NUL, "\ufffd")


NUL = "\x00"


@cache
def nul_safe_str_dumper() -> Any:
    """psycopg's default string dumper, with ``storable`` applied first (psycopg is
    imported only when a PostgreSQL store is used)."""
    from psycopg.types.string import StrDumperUnknown

    class NulSafeStrDumper(StrDumperUnknown):
        def dump(self, obj: str) -> Any:
            return super().dump(storable(obj))

    return NulSafeStrDumper

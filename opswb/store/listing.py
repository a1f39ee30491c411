"""The queue's ORDER BY, keyset and search fragments, shared by both backends.

Both backends list exceptions the same way; only the placeholder (``?`` or ``%s``) and
the collation differ. Column expressions come from the fixed table below, never from a
caller; every value is bound.

A sort is ``age``, ``tenant``, ``reason`` or ``key``, descending with a leading ``-``.
``age`` is the queue's natural order: oldest first (by opening arrival, ``raw_id``);
``-age`` is newest first. Every sort breaks ties by ``raw_id`` in the same direction,
so ``(value, raw_id)`` of the last row of a page is a keyset cursor for the next.
"""

from __future__ import annotations

from dataclasses import dataclass

SORTS = ("age", "tenant", "reason", "key")
NO_TENANT = "(none)"  # the tenant filter for envelopes that lacked one (health names it so)

_COLUMNS = {"tenant": "coalesce(tenant_id, '')", "reason": "reason_code",
            "key": "coalesce(idempotency_key, '')"}


@dataclass(frozen=True)
class Listing:
    """How to order and page a queue listing, and what to search for."""

    sort: str = "age"
    after_raw_id: int | None = None
    after_value: str | None = None  # the sort column's value of the previous page's last row
    q: str | None = None

    def __post_init__(self) -> None:
        if self.sort.lstrip("-") not in SORTS or self.sort.count("-") > 1:
            raise ValueError(f"unknown sort {self.sort!r}")

    @property
    def field(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


def listing_sql(listing: Listing, ph: str, collate: str = "") -> tuple[list[str], list, str]:
    """``(where, args, order_by)`` for ``listing`` with placeholder ``ph``;
    ``collate`` (e.g. ``' COLLATE "C"'``) is appended to text sort columns."""
    where: list[str] = []
    args: list = []
    if listing.q:
        where.append(f"(strpos(lower(coalesce(idempotency_key, '')), {ph}) > 0"
                     f" OR strpos(lower(coalesce(source, '')), {ph}) > 0)")
        args += [listing.q.lower()] * 2
    way, cmp = ("DESC", "<") if listing.descending else ("ASC", ">")
    if listing.field == "age":
        if listing.after_raw_id is not None:
            where.append(f"raw_id {cmp} {ph}")
            args.append(listing.after_raw_id)
        return where, args, f"raw_id {way}"
    col = _COLUMNS[listing.field] + collate
    if listing.after_raw_id is not None:
        value = listing.after_value or ""
        where.append(f"({col} {cmp} {ph} OR ({col} = {ph} AND raw_id {cmp} {ph}))")
        args += [value, value, listing.after_raw_id]
    return where, args, f"{col} {way}, raw_id {way}"


def tenant_sql(tenant_id: str | None, ph: str) -> tuple[list[str], list]:
    """The tenant filter: ``NO_TENANT`` matches the exceptions without a tenant."""
    if tenant_id in (None, ""):
        return [], []
    if tenant_id == NO_TENANT:
        return ["coalesce(tenant_id, '') = ''"], []
    return [f"tenant_id = {ph}"], [tenant_id]


DEFAULT_LISTING = Listing()

"""Health figures (SPEC §8) and health snapshots. Reading health never writes."""

from __future__ import annotations

from opswb.store.base import Session


def health(db: Session) -> dict:
    """The pinned figures plus breakdowns an operator wants at a glance."""
    return db.health_figures()


def record_snapshot(db: Session) -> dict:
    """Store the current health figures as a snapshot (for the trend); returns it."""
    db.record_snapshot(db.health_figures())
    return db.snapshot_rows()[-1]

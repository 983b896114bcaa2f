"""The one place that reads the wall clock; times are naive UTC everywhere in the database."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Current time as naive UTC (SQLite keeps no time zone, so we never store one)."""
    return datetime.now(UTC).replace(tzinfo=None)

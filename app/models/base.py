"""Helpers shared by the models."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as naive UTC: what every DateTime column stores, on SQLite and
    PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)

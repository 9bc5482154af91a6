"""Money, times and statuses the way a Kenyan bar reads them. Pure functions: the templates use
them as filters (app/web/filters.py) and the domain (statement notes, charts, emails, the CLI)
calls them directly, so no domain module reaches up into the web layer for a format."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from app.enums import PURPOSE_LABELS, STATUS_LABELS


def kes(amount: int | None) -> str:
    """Whole shillings with thousands separators: 1250 -> 'KES 1,250'."""
    if amount is None:
        return "KES —"
    sign = "-" if amount < 0 else ""
    return f"{sign}KES {abs(int(amount)):,}"


def local_time(
    value: datetime | None, tz: str = "Africa/Nairobi", fmt: str = "%d %b %Y, %H:%M"
) -> str:
    """Show a stored (naive UTC) time in the bar's timezone."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


def payment_status_label(status: str) -> str:
    """What a person calls a status: 'rejected' is 'Not sent'."""
    return STATUS_LABELS.get(status, status.title())


def purpose_label(purpose: str) -> str:
    """Where a payment came from, as the payments list says it: 'api' is 'Till system'."""
    return PURPOSE_LABELS.get(purpose, purpose)


def duration(seconds: int) -> str:
    """0:07, 1:30, 12:05."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    return f"{minutes}:{secs:02d}"

"""Template filters: money and local time, the way a Kenyan bar reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask


def kes(amount: int | None) -> str:
    """Whole shillings with thousands separators: 1250 -> 'KES 1,250'."""
    if amount is None:
        return "KES —"
    sign = "-" if amount < 0 else ""
    return f"{sign}KES {abs(int(amount)):,}"


def local_time(value: datetime | None, tz: str = "Africa/Nairobi", fmt: str = "%d %b %Y, %H:%M") -> str:
    """Show a stored (naive UTC) time in the bar's timezone."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


STATUS_LABELS = {
    "created": "Sending",
    "sent": "Waiting",
    "unknown": "Checking",
    "paid": "Paid",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "expired": "Expired",
    "rejected": "Not sent",
}


def payment_status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.title())


def duration(seconds: int) -> str:
    """0:07, 1:30, 12:05."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    return f"{minutes}:{secs:02d}"


def init_app(app: Flask) -> None:
    from app.mpesa import mask_phone

    app.add_template_filter(kes, "kes")
    app.add_template_filter(local_time, "localtime")
    app.add_template_filter(payment_status_label, "payment_status_label")
    app.add_template_filter(duration, "duration")
    app.add_template_filter(mask_phone, "mask_phone")

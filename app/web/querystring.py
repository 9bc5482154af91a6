"""Reading list filters from a query string: dates and ids people type, never a 500.

Shared by the payments list and the audit log (and anything else that filters by day or id).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.i18n import N_

MAX_ID = 2**31 - 1  # beyond PostgreSQL's integer: an error there, not an empty page
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)
BAD_DATE = N_("Enter dates like 2024-05-31 (year-month-day), from 2000 to 2100.")
DATES_REVERSED = N_("The “from” date is after the “to” date; swap them.")
BAD_CURSOR = N_("That page link was not valid, so this is the newest page.")


def parse_date(text: str, name: str, errors: dict[str, str]) -> date | None:
    """A YYYY-MM-DD day between 2000 and 2100; anything else records BAD_DATE under `name`."""
    text = text.strip()
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        day = None
    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        errors[name] = BAD_DATE
        return None
    return day


def small_int(text: str) -> int | None:
    """A positive id-sized integer, or None (letters, superscripts, 0, or too big for the
    column)."""
    if not text.isdecimal() or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def utc_bounds(
    start: date | None, end: date | None, timezone: str
) -> tuple[datetime | None, datetime | None]:
    """Whole local days [start, end] as naive-UTC [lower, upper), the way times are stored."""
    zone = ZoneInfo(timezone)

    def midnight_utc(day: date) -> datetime:
        local = datetime.combine(day, time.min, tzinfo=zone)
        return local.astimezone(UTC).replace(tzinfo=None)

    lower = midnight_utc(start) if start else None
    upper = midnight_utc(end + timedelta(days=1)) if end else None
    return lower, upper

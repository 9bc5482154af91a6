"""Which days the reconciliation page shows: one day, or a range of at most MAX_DAYS.

Days are the bar's calendar days; `window` turns them into the naive-UTC bounds every
DateTime column stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.i18n import _

MAX_DAYS = 92  # about a quarter: enough for a VAT period, small enough to stay fast


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    error: str | None = None

    @property
    def is_day(self) -> bool:
        return self.start == self.end

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


def local_today(timezone: str, now: datetime) -> date:
    """The bar's calendar day at `now` (naive UTC)."""
    return now.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone)).date()


def day_start(day: date, timezone: str) -> datetime:
    """Local midnight at the start of `day`, as naive UTC."""
    local = datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC).replace(tzinfo=None)


def window(start: date, end: date, timezone: str) -> tuple[datetime, datetime]:
    """[start of `start`, start of the day after `end`) in naive UTC."""
    return day_start(start, timezone), day_start(end + timedelta(days=1), timezone)


def hour_starts(day: date, timezone: str) -> list[datetime]:
    """The 25 naive-UTC instants at local 00:00, 01:00, ... 23:00 and the next midnight."""
    zone = ZoneInfo(timezone)
    starts = [
        datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        for hour in range(24)
    ]
    return [*starts, day_start(day + timedelta(days=1), timezone)]


def parse(args: Mapping[str, str], today: date) -> Period:
    """`?day=YYYY-MM-DD`, or `?from=&to=` (either may be left out), or today."""
    start_text, end_text = (args.get("from") or "").strip(), (args.get("to") or "").strip()
    if not (start_text or end_text):
        day, error = _date(args.get("day"), today)
        return Period(day, day, error) if error is None else Period(today, today, error)
    start, error = _date(start_text, None)
    end, end_error = _date(end_text, today)
    error = error or end_error
    if error:
        return Period(today, today, error)
    start = start or end
    if start > end:
        return Period(today, today, _("The start date is after the end date."))
    count = (end - start).days + 1
    if count > MAX_DAYS:
        return Period(
            today,
            today,
            _(
                "Choose at most %(max)s days at a time; %(start)s to %(end)s is %(count)s days.",
                max=MAX_DAYS,
                start=start.strftime("%d %b %Y"),
                end=end.strftime("%d %b %Y"),
                count=count,
            ),
        )
    return Period(start, end)


def _date(text: str | None, default: date | None) -> tuple[date | None, str | None]:
    text = (text or "").strip()
    if not text:
        return default, None
    try:
        return date.fromisoformat(text), None
    except ValueError:
        return None, _(
            "“%(typed)s” is not a date; use the calendar, or the form 2024-05-31.", typed=text[:20]
        )

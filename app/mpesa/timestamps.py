"""Daraja's `yyyyMMddHHmmss` timestamps, always in East Africa Time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    EAT: timezone | ZoneInfo = ZoneInfo("Africa/Nairobi")
except ZoneInfoNotFoundError:  # slim images without tzdata; Kenya has kept UTC+3 since 1942
    EAT = timezone(timedelta(hours=3), "EAT")

_FORMAT = "%Y%m%d%H%M%S"


def daraja_timestamp(now: datetime | None = None) -> str:
    """`now` (default: the current time) as Daraja's Timestamp, in Nairobi time.

    A naive `now` is refused: on a server outside Kenya it would silently drift by hours.
    """
    if now is None:
        now = datetime.now(EAT)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(EAT).strftime(_FORMAT)


def parse_daraja_timestamp(value: int | str) -> datetime:
    """An aware datetime from Daraja's `yyyyMMddHHmmss` number or string (EAT).

    Raises ValueError when the value is not 14 digits forming a real date and time.
    """
    text = str(value).strip()
    if isinstance(value, bool) or len(text) != 14 or not text.isdigit():
        raise ValueError(f"not a yyyyMMddHHmmss timestamp: {value!r}")
    return datetime.strptime(text, _FORMAT).replace(tzinfo=EAT)

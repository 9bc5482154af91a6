"""Money, times and statuses the way a Kenyan bar reads them. Pure functions: the templates use
them as filters (app/web/filters.py) and the domain (statement notes, charts, emails, the CLI)
calls them directly, so no domain module reaches up into the web layer for a format.

Amounts and times read the same in English and Kiswahili; the labels and stored sentences are
in the reader's language in a request (app/i18n.py), English outside one."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from app.enums import PURPOSE_LABELS, STATUS_LABELS
from app.i18n import DEFAULT, _, current_language
from app.mpesa.catalogue import read_back


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
    local = value.astimezone(ZoneInfo(tz))
    language = current_language()
    if language != DEFAULT and fmt in _CLDR:
        # Month names in the reader's language (07 Des 2026, 05:00); the digits as in English.
        return format_datetime(local, _CLDR[fmt], locale=language)
    return local.strftime(fmt)


_CLDR = {  # the strftime formats the templates use, as CLDR patterns Babel reads per language
    "%d %b %Y, %H:%M": "dd MMM y, HH:mm",
    "%d %b %Y, %H:%M:%S": "dd MMM y, HH:mm:ss",
    "%d %b %Y": "dd MMM y",
    "%d %b %H:%M": "dd MMM HH:mm",
    "%d %b %H:%M:%S": "dd MMM HH:mm:ss",
}


def payment_status_label(status: str) -> str:
    """What a person calls a status: 'rejected' is 'Not sent' ('Haikutumwa' in Kiswahili)."""
    label = STATUS_LABELS.get(status)
    return _(label) if label else status.title()


def purpose_label(purpose: str) -> str:
    """Where a payment came from, as the payments list says it: 'api' is 'Till system'."""
    label = PURPOSE_LABELS.get(purpose)
    return _(label) if label else purpose


def stored_sentence(sentence: str | None) -> str:
    """A sentence stored in English when it was written (Payment.message: the M-Pesa catalogue's,
    app/mpesa/catalogue.py) in the reader's language, its values (a receipt, a code) kept. A
    sentence the catalogue does not know is shown as it is."""
    if not sentence:
        return ""
    template, values = read_back(str(sentence))  # str: a lazy sentence is read in its language
    return _(template, **values)


def duration(seconds: int) -> str:
    """0:07, 1:30, 12:05."""
    minutes, secs = divmod(max(0, int(seconds)), 60)
    return f"{minutes}:{secs:02d}"

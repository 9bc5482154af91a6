"""The payments CSV: the whole filtered set, written batch by batch so memory stays flat.

Phone numbers are masked unless the owner asks for `phones=full`: a CSV leaves PesaTab (mailed
to an accountant, left in Downloads), and reconciling needs the receipt, not the number. The
owner, who answers for the customers' data, can still get full numbers, and that is audited.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Row

from app.enums import Purpose
from app.models import Bar
from app.mpesa import mask_phone
from app.payments import listing

EXPORT_BATCH_SIZE = 1000  # rows per query; tests lower it to prove the batching

HEADER = (
    "id",
    "created_at",
    "settled_at",
    "status",
    "amount",
    "phone",
    "receipt",
    "result_code",
    "message",
    "tab_id",
    "tab_label",
    "purpose",
    "flagged",
    "flag_reason",
    "requested_by",
    "reversed_amount",  # given back by a reversal M-Pesa confirmed (app/reversals/)
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_chunks(bar: Bar, filters: listing.Filters, *, full_phones: bool) -> Iterator[str]:
    """The CSV text: the header, then one chunk per batch of payments, newest first.

    Everything needed from `bar` is read here, at once; the chunks are made while the response
    streams, when the request's session is gone and `bar` can no longer be loaded."""
    return _chunks(
        listing.export_batches(bar, filters, EXPORT_BATCH_SIZE), ZoneInfo(bar.timezone), full_phones
    )


def _chunks(batches: Iterator[list[Row]], zone: ZoneInfo, full_phones: bool) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    yield _drain(buffer)
    for batch in batches:
        writer.writerows(_cells(row, zone, full_phones) for row in batch)
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _cells(row: Row, zone: ZoneInfo, full_phones: bool) -> list:
    cells = [
        row.id,
        _local_iso(row.created_at, zone),
        _local_iso(row.settled_at, zone),
        row.status,
        row.amount,
        row.phone if full_phones else mask_phone(row.phone),
        row.receipt,
        row.result_code,
        row.message,
        row.tab_id,
        row.tab_label,
        row.purpose,
        "yes" if row.flagged else "no",
        row.flag_reason,
        row.requested_by or ("" if row.purpose != Purpose.API else "Till system"),
        row.reversed_amount,
    ]
    return [defuse(cell) for cell in cells]


def defuse(cell):
    """Text a spreadsheet would run as a formula gets a leading apostrophe; the rest is as is."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


def _local_iso(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return value.replace(tzinfo=UTC).astimezone(zone).isoformat(timespec="seconds")


def filename(bar: Bar, filters: listing.Filters, today: date) -> str:
    """`kwa-mama-pub-payments-2024-05-01-to-2024-05-31.csv`; with no start,
    `...-until-<end>.csv`."""
    end = (filters.end or today).isoformat()
    if filters.start is None:
        return f"{bar.slug}-payments-until-{end}.csv"
    return f"{bar.slug}-payments-{filters.start.isoformat()}-to-{end}.csv"

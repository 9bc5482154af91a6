"""Reading the M-Pesa org-portal statement (CSV, XLSX, or either zipped): bytes in, lines out.

Pure: no database, no Flask, no models. It finds the header row under the portal's preamble,
reads each row into a plain dict (receipt, completion time as UTC, amounts in cents, texts
within their column limits) and names a bad row and column as a spreadsheet shows them
(`StatementError`). The importer stores what it reads; nothing here decides what a line means.
"""

from __future__ import annotations

import codecs
import csv
import re
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import IO, Any

PREAMBLE_ROWS = 50
EAT = timedelta(hours=3)  # the portal prints East Africa Time, UTC+3 all year (no daylight saving)
MAX_CENTS = 2_000_000_000  # what an INTEGER column holds, with room to spare
CENT = Decimal("0.01")

COLUMNS = {  # our name -> the header the portal prints
    "receipt": "Receipt No.",
    "completion_time": "Completion Time",
    "initiation_time": "Initiation Time",
    "details": "Details",
    "status": "Transaction Status",
    "paid_in": "Paid In",
    "withdrawn": "Withdrawn",
    "reason_type": "Reason Type",
    "other_party": "Other Party Info",
    "account_no": "A/C No.",
}
REQUIRED = ("receipt", "completion_time", "paid_in", "withdrawn", "status", "reason_type")
TEXT_LIMITS = {
    "details": 255,
    "status": 40,
    "reason_type": 60,
    "other_party": 120,
    "account_no": 60,
}


def N_(text: str) -> str:
    """Marks a sentence for the catalogue, translated where it is shown (app.i18n.N_ says the
    same; defined here so the reader stays free of Flask)."""
    return text


NO_HEADER = N_("This does not look like an M-Pesa statement: no 'Receipt No.' header row.")
_RECEIPT = re.compile(r"[A-Z0-9]{1,20}")
_AMOUNT = re.compile(r"-?(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?")
_TIME = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?")
_PERIOD = re.compile(r"from\s+(.+?)\s+to\s+(.+)", re.IGNORECASE)
MASKED_PHONE = re.compile(r"[0-9*]{9,12}")


class StatementError(ValueError):
    """The file cannot be imported, or a line cannot be attached; the message says why.

    `str()` is the English; `message` and `values` are the sentence and what goes in it, for
    the page to say it in the reader's language (`_(err.message, **err.values)`)."""

    def __init__(self, message: str, **values: Any) -> None:
        self.message, self.values = message, values
        super().__init__(message % values if values else message)


def _norm(value: Any) -> str:
    """'Receipt No.', ' receipt  no ' and 'RECEIPT NO' are the same header."""
    return re.sub(r"[^a-z0-9]", "", str(value).lower()) if value is not None else ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number typed into a text column of a workbook
    return str(value).strip()


def _local_to_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        return (value - value.utcoffset()).replace(tzinfo=None)
    return value - EAT


def parse_time(value: Any) -> datetime | None:
    """A statement time (EAT) as naive UTC; None when empty. Text is `dd-mm-yyyy HH:MM:SS`;
    workbook cells may be real datetimes or Excel serial numbers. ValueError if unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return _local_to_utc(value)
    if isinstance(value, date):
        return _local_to_utc(datetime(value.year, value.month, value.day))
    if isinstance(value, int | float) and not isinstance(value, bool):
        from openpyxl.utils.datetime import from_excel

        return _local_to_utc(from_excel(value))
    text = str(value).strip()
    if not text:
        return None
    found = _TIME.fullmatch(text)
    if found:
        day, month, year, hour, minute, second = found.groups()
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    else:
        local = datetime.fromisoformat(text)  # 2026-11-22 14:31:12, as a re-saved sheet writes it
    return _local_to_utc(local)


def parse_cents(value: Any) -> int:
    """'1,250.00' -> 125000, '' -> 0, '-50.00' -> -5000. Decimal, never float arithmetic."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value)).quantize(CENT, ROUND_HALF_UP)  # a workbook's binary 450.0
    else:
        text = str(value).strip()
        if not text:
            return 0
        if not _AMOUNT.fullmatch(text):
            raise ValueError(text)
        amount = Decimal(text.replace(",", ""))
    cents = int(amount * 100)
    if abs(cents) > MAX_CENTS:
        raise ValueError(value)
    return cents


def _csv_rows(stream: IO[bytes]) -> Iterator[tuple[int, list]]:
    lines = codecs.iterdecode(stream, "utf-8-sig", errors="replace")
    number = 0
    try:
        for number, row in enumerate(csv.reader(lines), start=1):  # noqa: B007 (read in except)
            yield number, row
    except csv.Error as err:
        raise StatementError(
            N_("Row %(row)s: the file cannot be read as CSV (%(error)s)."),
            row=number + 1,
            error=err,
        ) from None


def _xlsx_rows(stream: IO[bytes]) -> Iterator[tuple[int, tuple]]:
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # portal exports have no default style; harmless
            book = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise StatementError(
            N_(
                "This file is not a readable Excel workbook (.xlsx). Export the statement again, "
                "or save it as CSV."
            )
        ) from None
    try:
        sheet = book.worksheets[0]
        yield from enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1)
    finally:
        book.close()


def rows_of(filename: str, stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    name = filename.lower()
    if name.endswith(".csv"):
        return _csv_rows(stream)
    if name.endswith(".xlsx"):
        return _xlsx_rows(stream)
    raise StatementError(
        N_("Upload the statement as a .csv or .xlsx file, as the M-Pesa portal exports it.")
    )


@dataclass
class Statement:
    """A statement being read: what its preamble said, its columns, and its rows still to come."""

    shortcode: str | None
    period_start: datetime | None
    period_end: datetime | None
    columns: dict[str, int]
    rows: Iterator[tuple[int, Any]]


def read_statement(rows: Iterator[tuple[int, Any]]) -> Statement:
    """Read the preamble and the header row; the transaction rows stay in the iterator."""
    preamble: dict[str, str] = {}
    for number, cells in rows:
        if cells and _norm(cells[0]) == "receiptno":
            start, end = _period(preamble.get("timeperiod", ""))
            shortcode = preamble.get("shortcode") or None
            return Statement(shortcode, start, end, _columns(number, cells), rows)
        if number >= PREAMBLE_ROWS:
            break
        if cells and len(cells) > 1:
            preamble.setdefault(_norm(cells[0]), _text(cells[1]))
    raise StatementError(NO_HEADER)


def _period(text: str) -> tuple[datetime | None, datetime | None]:
    found = _PERIOD.search(text)
    if not found:
        return None, None
    try:
        return parse_time(found.group(1)), parse_time(found.group(2))
    except ValueError:
        return None, None  # the preamble is informative; the lines carry the real times


def _columns(number: int, cells) -> dict[str, int]:
    positions: dict[str, int] = {}
    for index, cell in enumerate(cells):
        positions.setdefault(_norm(cell), index)
    columns = {
        key: positions[_norm(label)] for key, label in COLUMNS.items() if _norm(label) in positions
    }
    missing = [f"'{COLUMNS[key]}'" for key in REQUIRED if key not in columns]
    if missing:
        raise StatementError(
            N_("Row %(row)s: the header has no %(columns)s column."),
            row=number,
            columns=", ".join(missing),
        )
    return columns


def _cell(cells, index: int | None) -> Any:
    return cells[index] if index is not None and index < len(cells) else None


def _failure(number: int):
    def fail(key: str, sentence: str, **values: Any) -> StatementError:
        """`sentence` starts "Row %(row)s, column '%(column)s': " (the spreadsheet's names)."""
        return StatementError(sentence, row=number, column=COLUMNS[key], **values)

    return fail


def parse_line(number: int, cells, columns: dict[str, int]) -> dict | None:
    """One transaction row as column values for StatementLine; None for a blank row."""
    if not any(_text(cell) for cell in cells):
        return None
    value = {key: _cell(cells, index) for key, index in columns.items()}
    fail = _failure(number)
    receipt = _text(value["receipt"]).upper()
    if not receipt:
        raise fail(
            "receipt", N_("Row %(row)s, column '%(column)s': the receipt number is missing.")
        )
    if not _RECEIPT.fullmatch(receipt):
        raise fail(
            "receipt",
            N_("Row %(row)s, column '%(column)s': '%(value)s' is not an M-Pesa receipt number."),
            value=_text(value["receipt"]),
        )
    line = {"receipt": receipt}
    for key in ("completion_time", "initiation_time"):
        try:
            line[key] = parse_time(value.get(key))
        except (ValueError, OverflowError, TypeError):
            raise fail(
                key,
                N_(
                    "Row %(row)s, column '%(column)s': '%(value)s' is not a date and time like "
                    "22-11-2026 14:31:12."
                ),
                value=_text(value[key]),
            ) from None
    if line["completion_time"] is None:
        raise fail(
            "completion_time",
            N_("Row %(row)s, column '%(column)s': the completion time is missing."),
        )
    for key in ("paid_in", "withdrawn"):
        try:
            line[f"{key}_cents"] = parse_cents(value[key])
        except (ValueError, ArithmeticError):
            raise fail(
                key,
                N_("Row %(row)s, column '%(column)s': '%(value)s' is not an amount."),
                value=_text(value[key]),
            ) from None
    # Some exports print withdrawals as negative, some as positive: stored negative always,
    # so the same line has the same identity whichever export it came from.
    line["withdrawn_cents"] = -abs(line["withdrawn_cents"])
    for key, limit in TEXT_LIMITS.items():
        line[key] = _text(value.get(key))[:limit]
    return line

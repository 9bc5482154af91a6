"""The M-Pesa org-portal statement: reading it, importing it, matching it with payments.

The statement is M-Pesa's final record of the bar's money. An import is all or nothing: the
file is read as a stream inside one transaction, lines go in by bulk INSERT (batches, never one
ORM object or SELECT per row), and any bad row rolls the whole import back with a message
naming the row and column as a spreadsheet shows them. The same file twice is a no-op (its
sha256); a line already known from an earlier, overlapping statement is skipped (the line's
identity is unique, so the INSERT says ON CONFLICT DO NOTHING).

Money-in lines are matched to paid payments by receipt when they are imported. Lines nobody
in PesaTab asked for (paid from the phone menu) are orphans a manager can attach to a tab.
Payments waiting for their receipt are listed, never matched by guesswork on amount and time.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
import secrets
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import IO, Any

from sqlalchemy import case, exists, func, or_, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from app import audit
from app.enums import Purpose
from app.extensions import db
from app.formats import local_time
from app.models import Bar, Payment, StatementImport, StatementLine, Tab
from app.payments import states
from app.settings import vault

BATCH = 1000
PREAMBLE_ROWS = 50
EAT = timedelta(hours=3)  # the portal prints East Africa Time, UTC+3 all year (no daylight saving)
MAX_CENTS = 2_000_000_000  # what an INTEGER column holds, with room to spare
CENT = Decimal("0.01")
REPORT_LIMIT = 200
# How far M-Pesa's completion time may sit outside [push asked, paid learned] (clocks differ).
PENDING_SLACK = timedelta(minutes=2)

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
TEXT_LIMITS = {"details": 255, "status": 40, "reason_type": 60, "other_party": 120, "account_no": 60}
IDENTITY = ("bar_id", "receipt", "completion_time", "paid_in_cents", "withdrawn_cents")

NO_HEADER = "This does not look like an M-Pesa statement: no 'Receipt No.' header row."
_RECEIPT = re.compile(r"[A-Z0-9]{1,20}")
_AMOUNT = re.compile(r"-?(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?")
_TIME = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?")
_PERIOD = re.compile(r"from\s+(.+?)\s+to\s+(.+)", re.IGNORECASE)
_MASKED_PHONE = re.compile(r"[0-9*]{9,12}")


class StatementError(ValueError):
    """The file cannot be imported, or a line cannot be attached; the message says why."""


# Reading ----------------------------------------------------------------------------------


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
        raise StatementError(f"Row {number + 1}: the file cannot be read as CSV ({err}).") from None


def _xlsx_rows(stream: IO[bytes]) -> Iterator[tuple[int, tuple]]:
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # portal exports have no default style; harmless
            book = load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise StatementError(
            "This file is not a readable Excel workbook (.xlsx). Export the statement again, or save it as CSV."
        ) from None
    try:
        sheet = book.worksheets[0]
        yield from enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1)
    finally:
        book.close()


def _rows(filename: str, stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    name = filename.lower()
    if name.endswith(".csv"):
        return _csv_rows(stream)
    if name.endswith(".xlsx"):
        return _xlsx_rows(stream)
    raise StatementError("Upload the statement as a .csv or .xlsx file, as the M-Pesa portal exports it.")


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
    columns = {key: positions[_norm(label)] for key, label in COLUMNS.items() if _norm(label) in positions}
    missing = [f"'{COLUMNS[key]}'" for key in REQUIRED if key not in columns]
    if missing:
        raise StatementError(f"Row {number}: the header has no {', '.join(missing)} column.")
    return columns


def _cell(cells, index: int | None) -> Any:
    return cells[index] if index is not None and index < len(cells) else None


def _failure(number: int):
    def fail(key: str, problem: str) -> StatementError:
        return StatementError(f"Row {number}, column '{COLUMNS[key]}': {problem}")

    return fail


def parse_line(number: int, cells, columns: dict[str, int]) -> dict | None:
    """One transaction row as column values for StatementLine; None for a blank row."""
    if not any(_text(cell) for cell in cells):
        return None
    value = {key: _cell(cells, index) for key, index in columns.items()}
    fail = _failure(number)
    receipt = _text(value["receipt"]).upper()
    if not receipt:
        raise fail("receipt", "the receipt number is missing.")
    if not _RECEIPT.fullmatch(receipt):
        raise fail("receipt", f"'{_text(value['receipt'])}' is not an M-Pesa receipt number.")
    line = {"receipt": receipt}
    for key in ("completion_time", "initiation_time"):
        try:
            line[key] = parse_time(value.get(key))
        except (ValueError, OverflowError, TypeError):
            raise fail(key, f"'{_text(value[key])}' is not a date and time like 22-11-2026 14:31:12.") from None
    if line["completion_time"] is None:
        raise fail("completion_time", "the completion time is missing.")
    for key in ("paid_in", "withdrawn"):
        try:
            line[f"{key}_cents"] = parse_cents(value[key])
        except (ValueError, ArithmeticError):
            raise fail(key, f"'{_text(value[key])}' is not an amount.") from None
    # Some exports print withdrawals as negative, some as positive: stored negative always,
    # so the same line has the same identity whichever export it came from.
    line["withdrawn_cents"] = -abs(line["withdrawn_cents"])
    for key, limit in TEXT_LIMITS.items():
        line[key] = _text(value.get(key))[:limit]
    return line


# Importing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    statement: StatementImport
    already: bool = False
    timezone: str = "Africa/Nairobi"
    adopted: int = 0  # paid payments whose missing receipt the statement supplied

    @property
    def message(self) -> str:
        s = self.statement
        if self.already:
            when = local_time(s.created_at, self.timezone, "%d %b %Y at %H:%M")
            return f"This statement was already imported on {when}; nothing changed."
        known = s.line_count - s.new_lines
        text = (f"Imported {s.filename}: {s.line_count:,} lines, {s.new_lines:,} new"
                + (f", {known:,} already known from an earlier statement." if known else "."))
        if self.adopted == 1:
            text += " One paid payment that had no receipt got its receipt from this statement."
        elif self.adopted:
            text += f" {self.adopted:,} paid payments that had no receipt got their receipts from this statement."
        return text


def import_statement(bar: Bar, user_id: int | None, filename: str, stream: IO[bytes]) -> ImportResult:
    """Import an uploaded statement (a binary, seekable stream) for `bar`. All or nothing:
    raises StatementError with nothing kept, or commits every new line, matched."""
    rows = _rows(filename, stream)  # refuses a wrong extension before anything is read
    digest = _sha256(stream)
    earlier = _earlier_import(bar.id, digest)
    if earlier is not None:
        return ImportResult(earlier, already=True, timezone=bar.timezone)
    try:
        statement = read_statement(rows)
        _check_shortcode(bar, statement.shortcode)
        record = StatementImport(
            bar_id=bar.id, filename=filename[:200], sha256=digest, uploaded_by_id=user_id,
            shortcode=(statement.shortcode or "")[:12] or None,
            period_start=statement.period_start, period_end=statement.period_end,
        )
        db.session.add(record)
        try:
            db.session.flush()
        except IntegrityError:  # the same file, uploaded twice at once: the other one won
            db.session.rollback()
            earlier = _earlier_import(bar.id, digest)
            if earlier is None:
                raise StatementError("This file is being imported by someone else; try again in a minute.") from None
            return ImportResult(earlier, already=True, timezone=bar.timezone)
        _insert_lines(bar.id, record, statement)
        adopted = adopt_pending_receipts(bar.id, record, user_id)
        audit.record("statement.imported", bar_id=bar.id, user_id=user_id, import_id=record.id,
                     lines=record.line_count, new_lines=record.new_lines, receipts_adopted=adopted)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        rows.close()
    return ImportResult(record, timezone=bar.timezone, adopted=adopted)


def _sha256(stream: IO[bytes]) -> str:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    if size == 0:
        raise StatementError("The file is empty. Export the statement from the M-Pesa portal again.")
    return digest.hexdigest()


def _earlier_import(bar_id: int, digest: str) -> StatementImport | None:
    return db.session.scalar(
        select(StatementImport).where(StatementImport.bar_id == bar_id, StatementImport.sha256 == digest)
    )


def _check_shortcode(bar: Bar, shortcode: str | None) -> None:
    credential = vault.credential_for(bar)
    if not shortcode or credential is None:
        return
    ours = [code for code in (credential.shortcode, credential.till_number) if code]
    if shortcode not in ours:
        raise StatementError(
            f"This statement is for short code {shortcode}, but {bar.name} takes M-Pesa on "
            f"{' / '.join(ours)}. Export the statement for {ours[0]} and upload that one."
        )


def _insert_lines(bar_id: int, record: StatementImport, statement: Statement) -> None:
    """Stream the rows into the database in batches; fills in the record's counts and period."""
    count, new, first, last, batch = 0, 0, None, None, []
    for number, cells in statement.rows:
        line = parse_line(number, cells, statement.columns)
        if line is None:
            continue
        count += 1
        first = min(first or line["completion_time"], line["completion_time"])
        last = max(last or line["completion_time"], line["completion_time"])
        batch.append({**line, "bar_id": bar_id, "import_id": record.id, "attached_tab_id": None})
        if len(batch) >= BATCH:
            new += _insert_batch(bar_id, batch)
            batch = []
    if count == 0:
        raise StatementError("The statement has a header row but no transactions under it.")
    if batch:
        new += _insert_batch(bar_id, batch)
    record.line_count, record.new_lines = count, new
    record.period_start = record.period_start or first
    record.period_end = record.period_end or last


def _is_money_in(line: dict) -> bool:
    return line["paid_in_cents"] > 0 and line["status"].lower() == "completed"


def _insert_batch(bar_id: int, batch: list[dict]) -> int:
    """Match a batch, then insert it (one INSERT ... ON CONFLICT); returns how many were new."""
    _match(bar_id, batch)
    if db.session.get_bind().dialect.name == "postgresql":
        return _insert_batch_postgresql(batch)
    table = StatementLine.__table__
    # RETURNING makes SQLAlchemy send the batch as one multi-row INSERT ("insertmanyvalues");
    # without it psycopg runs one INSERT a row. Skipped (known) lines return nothing.
    statement = (
        sqlite.insert(table).on_conflict_do_nothing(index_elements=list(IDENTITY)).returning(table.c.id)
    )
    return len(db.session.execute(statement, batch).all())


def _insert_batch_postgresql(batch: list[dict]) -> int:
    """PostgreSQL: one array per column, unnested into rows. psycopg binds 15 arrays instead of
    15,000 scalars per batch, which made a 100,000-line import about 3.5 times faster."""
    table = StatementLine.__table__
    columns = [c for c in table.columns if c.name != "id"]
    dialect = db.session.get_bind().dialect
    arrays = ", ".join(f"CAST(:{c.name} AS {c.type.compile(dialect)}[])" for c in columns)
    # Names and types come from the model's own metadata, never from the file.
    statement = text(
        f"INSERT INTO {table.name} ({', '.join(c.name for c in columns)}) "  # noqa: S608
        f"SELECT * FROM unnest({arrays}) "
        "ON CONFLICT ON CONSTRAINT uq_statement_line_identity DO NOTHING RETURNING id"
    )
    values = {c.name: [line[c.name] for line in batch] for c in columns}
    return len(db.session.execute(statement, values).all())


def _match(bar_id: int, batch: list[dict]) -> None:
    """Set match_state and payment_id on each line: one SELECT of paid receipts for the batch."""
    receipts = {line["receipt"] for line in batch if _is_money_in(line)}
    paid = {}
    if receipts:
        paid = {receipt: (payment_id, amount) for receipt, payment_id, amount in db.session.execute(
            select(Payment.receipt, Payment.id, Payment.amount).where(
                Payment.bar_id == bar_id, Payment.status == "paid", Payment.receipt.in_(receipts)
            )
        )}
    for line in batch:
        payment_id, amount = paid.get(line["receipt"], (None, None))
        if not _is_money_in(line):
            line["match_state"], payment_id = "not_money_in", None
        elif payment_id is None:
            line["match_state"] = "orphan"
        else:
            line["match_state"] = "matched" if amount * 100 == line["paid_in_cents"] else "amount_differs"
        line["payment_id"] = payment_id


# Reporting and attaching ------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    statement: StatementImport
    counts: dict[str, int]
    matched: list  # (line, tab label or None)
    differs: list  # (line, payment amount in KES)
    orphans: list[StatementLine]
    missing: list[Payment]
    missing_count: int
    maybe: dict  # orphan line id -> the paid-without-receipt payments it could be
    limit: int = REPORT_LIMIT


def _in_statement(record: StatementImport):
    """This import's lines, and the bar's lines from other imports inside its period."""
    inside = StatementLine.import_id == record.id
    if record.period_start and record.period_end:
        inside = or_(inside, StatementLine.completion_time.between(record.period_start, record.period_end))
    return (StatementLine.bar_id == record.bar_id) & inside


def line_of(record: StatementImport, line_id: int) -> StatementLine | None:
    """The line `line_id` if it is one `record`'s page shows (its own, or the bar's inside its
    period), else None: an action on a line is only ever taken from that page."""
    return db.session.scalar(select(StatementLine).where(StatementLine.id == line_id, _in_statement(record)))


def report(record: StatementImport) -> Report:
    """What the statement says next to what PesaTab says, a few small queries (lists capped)."""
    where = _in_statement(record)
    counts = dict(db.session.execute(
        select(StatementLine.match_state, func.count()).where(where).group_by(StatementLine.match_state)
    ).all())
    ordered = (StatementLine.completion_time, StatementLine.id)
    matched = db.session.execute(
        select(StatementLine, Tab.label).outerjoin(Tab, Tab.id == StatementLine.attached_tab_id)
        .where(where, StatementLine.match_state == "matched").order_by(*ordered).limit(REPORT_LIMIT)
    ).all()
    differs = db.session.execute(
        select(StatementLine, Payment.amount).join(Payment, Payment.id == StatementLine.payment_id)
        .where(where, StatementLine.match_state == "amount_differs").order_by(*ordered).limit(REPORT_LIMIT)
    ).all()
    orphans = db.session.scalars(
        select(StatementLine).where(where, StatementLine.match_state == "orphan").order_by(*ordered).limit(REPORT_LIMIT)
    ).all()
    missing = _missing(record)
    return Report(
        record, counts, list(matched), list(differs), list(orphans),
        list(db.session.scalars(missing.order_by(Payment.settled_at, Payment.id).limit(REPORT_LIMIT))),
        db.session.scalar(select(func.count()).select_from(missing.subquery())),
        _maybe(record.bar_id, orphans),
    )


def _maybe(bar_id: int, orphans) -> dict[int, list[Payment]]:
    if not orphans:
        return {}
    times = [line.completion_time for line in orphans]
    pending = list(db.session.scalars(_receipt_pending(bar_id, min(times), max(times))))
    found = {line.id: [p for p in pending if could_be(line, p)] for line in orphans}
    return {line_id: payments for line_id, payments in found.items() if payments}


def _missing(record: StatementImport):
    """Paid in PesaTab during the statement's period, but no line of the bar has the receipt
    (or the payment has no receipt yet: someone should look at it by hand)."""
    known = exists().where(StatementLine.bar_id == record.bar_id, StatementLine.receipt == Payment.receipt)
    query = select(Payment).where(
        Payment.bar_id == record.bar_id, Payment.status == "paid", or_(Payment.receipt.is_(None), ~known)
    )
    if record.period_start and record.period_end:
        query = query.where(Payment.settled_at.between(record.period_start, record.period_end))
    return query


def open_tabs(bar_id: int) -> list[tuple[int, str]]:
    return list(db.session.execute(
        select(Tab.id, Tab.label).where(Tab.bar_id == bar_id, Tab.status == "open").order_by(Tab.opened_at.desc())
    ).all())


def attach(line: StatementLine, tab: Tab, user_id: int | None) -> Payment:
    """Record an orphan line (money paid from the phone menu) as a paid payment on `tab`.
    Exactly once: the receipt is unique on payments and the line is claimed conditionally,
    so a double click or two managers at once make one payment. Commits."""
    already = f"Already attached: receipt {line.receipt} is a payment in PesaTab, so nothing changed."
    if tab.bar_id != line.bar_id:
        raise StatementError("That tab belongs to another bar.")
    if line.match_state != "orphan" or line.payment_id is not None:
        raise StatementError(already)
    if tab.status != "open":
        raise StatementError(f"{tab.label} is closed; choose an open tab.")
    if line.paid_in_cents % 100:
        raise StatementError(f"KES {line.paid_in_cents / 100:,.2f} is not whole shillings; tabs take whole "
                             "shillings, so settle this one by hand.")
    maybe = pending_candidates(line)
    if maybe:
        names = " or ".join(f"payment {p.id}" for p in maybe)
        raise StatementError(
            f"Receipt {line.receipt} may be {names}, already paid in PesaTab but without its receipt. "
            "Attaching it to a tab would count the money twice: use \"This is payment …\" instead."
        )
    payment = _menu_payment(line, tab, user_id)
    db.session.add(payment)
    try:
        db.session.flush()
        if not _claim(line, payment, tab):
            db.session.rollback()
            raise StatementError(already)
        audit.record("statement.line_attached", bar_id=tab.bar_id, user_id=user_id, line_id=line.id,
                     tab_id=tab.id, payment_id=payment.id, receipt=line.receipt)
        db.session.commit()
    except IntegrityError:  # the receipt is on a payment already (another click won)
        db.session.rollback()
        raise StatementError(already) from None
    return payment


def _claim(line: StatementLine, payment: Payment, tab: Tab) -> bool:
    """Point the line at the payment only if no one else has: exactly one caller wins."""
    return db.session.execute(
        update(StatementLine)
        .where(StatementLine.id == line.id, StatementLine.payment_id.is_(None))
        .values(payment_id=payment.id, attached_tab_id=tab.id, match_state="matched")
        .execution_options(synchronize_session=False)
    ).rowcount == 1


def _menu_payment(line: StatementLine, tab: Tab, user_id: int | None) -> Payment:
    phone = line.other_party.split(" - ", 1)[0].strip()
    return states.paid_without_push(
        amount=line.paid_in_cents // 100, receipt=line.receipt, paid_at=line.completion_time,
        bar_id=tab.bar_id, tab_id=tab.id, purpose=Purpose.C2B,
        phone=phone if _MASKED_PHONE.fullmatch(phone) else "",
        account_reference=re.sub(r"[^A-Za-z0-9]", "", line.account_no)[:12],
        description="M-Pesa menu", callback_token=secrets.token_hex(20),
        message=f"Paid from the M-Pesa menu. Receipt {line.receipt}.", initiated_by_id=user_id,
    )


# Receipts that never came ---------------------------------------------------------------
# A payment Daraja's STK query reported paid has no receipt (the query does not give one), so
# its statement line would look like an orphan: attaching it to a tab would count it twice.
# A line is taken as that payment's when the amount is the same, M-Pesa completed it between
# the push and the moment PesaTab learned it was paid, and the (masked) phone agrees.


def _receipt_pending(bar_id: int, start: datetime | None = None, end: datetime | None = None):
    query = select(Payment).where(Payment.bar_id == bar_id, Payment.status == "paid", Payment.receipt.is_(None))
    if start is not None and end is not None:
        query = query.where(Payment.created_at <= end + PENDING_SLACK, Payment.settled_at >= start - PENDING_SLACK)
    return query.order_by(Payment.created_at, Payment.id)


def could_be(line: StatementLine, payment: Payment) -> bool:
    """Could this money-in line be `payment`, paid but without a receipt?"""
    if payment.status != "paid" or payment.receipt is not None or line.paid_in_cents != payment.amount * 100:
        return False
    learned = payment.settled_at or payment.updated_at or payment.created_at
    if not payment.created_at - PENDING_SLACK <= line.completion_time <= learned + PENDING_SLACK:
        return False
    return _phone_fits(line.other_party.split(" - ", 1)[0].strip(), payment.phone)


def _phone_fits(shown: str, phone: str) -> bool:
    """'25470****149' or '0708***149' against 254708374149; a form we cannot read fits."""
    if not _MASKED_PHONE.fullmatch(shown) or not phone:
        return True
    if shown.startswith("0") and phone.startswith("254"):
        phone = "0" + phone[3:]
    return len(shown) == len(phone) and all(a in ("*", b) for a, b in zip(shown, phone, strict=True))


def pending_candidates(line: StatementLine) -> list[Payment]:
    """The bar's paid-without-receipt payments this orphan line could be."""
    if line.match_state != "orphan" or line.payment_id is not None:
        return []
    around = line.completion_time
    return [p for p in db.session.scalars(_receipt_pending(line.bar_id, around, around)) if could_be(line, p)]


def adopt_pending_receipts(bar_id: int, record: StatementImport, user_id: int | None) -> int:
    """Give each receipt-pending payment of the statement's period the receipt of the one orphan
    line that can be it (and only when that line can be no other payment). Returns how many.
    Two queries when the period has such payments, one when it has none."""
    start, end = record.period_start, record.period_end
    if start is None or end is None:
        return 0
    pending = list(db.session.scalars(_receipt_pending(bar_id, start, end)))
    if not pending:
        return 0
    lines = db.session.scalars(select(StatementLine).where(
        StatementLine.bar_id == bar_id, StatementLine.match_state == "orphan", StatementLine.payment_id.is_(None),
        StatementLine.paid_in_cents.in_({p.amount * 100 for p in pending}),
        StatementLine.completion_time.between(start - PENDING_SLACK, end + PENDING_SLACK),
    )).all()
    pairs = [(line, p) for line in lines for p in pending if could_be(line, p)]
    lines_per_payment, payments_per_line = {}, {}
    for line, p in pairs:
        lines_per_payment[p.id] = lines_per_payment.get(p.id, 0) + 1
        payments_per_line[line.id] = payments_per_line.get(line.id, 0) + 1
    adopted = 0
    for line, p in pairs:
        if lines_per_payment[p.id] == 1 and payments_per_line[line.id] == 1:
            adopted += _adopt(line, p, user_id, how="matched on import")
    return adopted


def claim_receipt(line: StatementLine, payment: Payment, user_id: int | None) -> None:
    """Someone says this orphan line is `payment` (paid, no receipt). Checks, adopts, commits."""
    if line.match_state != "orphan" or line.payment_id is not None:
        raise StatementError(f"Receipt {line.receipt} is already a payment in PesaTab, so nothing changed.")
    if not could_be(line, payment):
        raise StatementError(
            f"Receipt {line.receipt} cannot be payment {payment.id}: it must be paid in PesaTab without a "
            "receipt, for the same amount, completed between the request and the moment it was paid."
        )
    if not _adopt(line, payment, user_id, how="by hand"):
        db.session.rollback()
        raise StatementError(f"Receipt {line.receipt} or payment {payment.id} changed meanwhile; nothing changed.")
    db.session.commit()


def _adopt(line: StatementLine, payment: Payment, user_id: int | None, *, how: str) -> int:
    """Point the line at the payment and give the payment its receipt: both or neither."""
    try:
        with db.session.begin_nested():
            claimed = db.session.execute(
                update(StatementLine)
                .where(StatementLine.id == line.id, StatementLine.payment_id.is_(None))
                .values(payment_id=payment.id, match_state="matched")
                .execution_options(synchronize_session=False)
            ).rowcount == 1
            pending = Payment.flag_reason == "receipt_pending"
            took = claimed and db.session.execute(
                update(Payment)
                .where(Payment.id == payment.id, Payment.status == "paid", Payment.receipt.is_(None))
                .values(receipt=line.receipt, transaction_time=line.completion_time,
                        flagged=case((pending, False), else_=Payment.flagged),
                        flag_reason=case((pending, None), else_=Payment.flag_reason))
                .execution_options(synchronize_session=False)
            ).rowcount == 1
            if not took:
                raise _NotAdopted
            audit.record("payment.receipt_from_statement", bar_id=payment.bar_id, user_id=user_id,
                         payment_id=payment.id, line_id=line.id, receipt=line.receipt, how=how)
    except (_NotAdopted, IntegrityError):  # claimed elsewhere, or the receipt is on another payment
        return 0
    db.session.expire(line)
    db.session.expire(payment)
    return 1


class _NotAdopted(Exception):
    pass

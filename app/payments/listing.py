"""The payments list: filters read from the query string and a keyset-paged, bar-scoped query.

Pages walk (created_at, id) downwards, the order of ix_payment_bar_id_created_at, so the
database reads down the index (app/web/pager.py: no OFFSET).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Row, Select, select, tuple_

from app.extensions import db
from app.i18n import N_, _
from app.models import Bar, Payment, Tab, User
from app.mpesa import InvalidPhone, normalize_phone
from app.payments.states import FINAL, IN_FLIGHT
from app.web import pager
from app.web.querystring import (
    BAD_CURSOR,
    DATES_REVERSED,
    parse_date,
    small_int,
    utc_bounds,
)

STATUSES = IN_FLIGHT + FINAL
GROUPS = ("in_flight", "flagged")
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200

BAD_STATUS = N_("Choose a status from the list.")
BAD_TAB = N_("Type the tab's number (like 42) or part of its name (like Table 4).")
BAD_LIMIT = N_("Rows per page must be a number from 1 to %(most)s; showing %(size)s.")


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the (created_at, id) of its last row. Written `<iso time>_<id>`."""

    created_at: datetime
    id: int

    def encode(self) -> str:
        return f"{self.created_at.isoformat()}_{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor in `text`, or None if it was tampered with or truncated."""
        stamp, _, raw_id = text.strip()[:64].rpartition("_")
        try:
            created_at = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        payment_id = small_int(raw_id)
        if created_at.tzinfo is not None or payment_id is None:
            return None
        return cls(created_at, payment_id)


@dataclass
class Filters:
    """What the manager asked to see. `errors` holds a sentence per field that did not parse."""

    status: str | None = None
    start: date | None = None
    end: date | None = None
    phone: str | None = None
    tab_id: int | None = None  # "42" or "#42": the tab's number
    tab_name: str | None = None  # anything else: part of its name, any case
    errors: dict[str, str] = field(default_factory=dict)

    def query_args(self) -> dict[str, str]:
        """The filters as query-string arguments, for links that keep them (Older, CSV)."""
        args = {
            "status": self.status,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "phone": self.phone,
            "tab": str(self.tab_id) if self.tab_id else self.tab_name,
        }
        return {name: value for name, value in args.items() if value}

    def conditions(self, bar: Bar) -> list:
        """SQL conditions for these filters, always including the bar."""
        where = [Payment.bar_id == bar.id]
        if self.status == "in_flight":
            where.append(Payment.status.in_(IN_FLIGHT))
        elif self.status == "flagged":
            where.append(Payment.flagged.is_(True))
        elif self.status:
            where.append(Payment.status == self.status)
        start, end = utc_bounds(self.start, self.end, bar.timezone)
        if start is not None:
            where.append(Payment.created_at >= start)
        if end is not None:
            where.append(Payment.created_at < end)
        if self.phone:
            where.append(Payment.phone == self.phone)
        if self.tab_id:
            where.append(Payment.tab_id == self.tab_id)
        elif self.tab_name:
            named = select(Tab.id).where(
                Tab.bar_id == bar.id, Tab.label.ilike(f"%{_like(self.tab_name)}%", escape="\\")
            )
            where.append(Payment.tab_id.in_(named))
        return where


def _like(text: str) -> str:
    """`text` matched literally inside LIKE: its % and _ are not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse_filters(args: Mapping[str, str]) -> Filters:
    """Read the filters from a query string; anything unreadable becomes an error sentence."""
    filters = Filters()
    status = args.get("status", "").strip()
    if status in STATUSES or status in GROUPS:
        filters.status = status
    elif status:
        filters.errors["status"] = _(BAD_STATUS)
    filters.start = parse_date(args.get("from", ""), "from", filters.errors)
    filters.end = parse_date(args.get("to", ""), "to", filters.errors)
    if filters.start and filters.end and filters.start > filters.end:
        filters.errors["to"] = DATES_REVERSED
    phone = args.get("phone", "").strip()
    if phone:
        try:
            filters.phone = normalize_phone(phone)
        except InvalidPhone as err:
            filters.errors["phone"] = str(err)
    tab = " ".join(args.get("tab", "").split())
    number = tab.lstrip("#")
    if number and any(c.isdigit() for c in number) and not any(c.isalpha() for c in number):
        # Only digits (any script, superscripts too): the tab's number, or nothing.
        filters.tab_id = small_int(number)
        if filters.tab_id is None:
            filters.errors["tab"] = _(BAD_TAB)
    elif tab:
        if len(tab) > 60 or not tab.isprintable():
            filters.errors["tab"] = _(BAD_TAB)
        else:
            filters.tab_name = tab
    return filters


def parse_paging(args: Mapping[str, str]) -> tuple[int, Cursor | None, list[str]]:
    """Page size and cursor. Bad values fall back to the first page and say so; they never fail."""
    notices = []
    limit = PAGE_SIZE
    raw_limit = args.get("limit", "").strip()
    if raw_limit:
        digits = raw_limit.lstrip("0") if raw_limit.isdecimal() else ""
        if not digits:
            notices.append(_(BAD_LIMIT, most=MAX_PAGE_SIZE, size=PAGE_SIZE))
        else:  # more than 3 digits is more than the cap, however many there are
            limit = MAX_PAGE_SIZE if len(digits) > 3 else min(int(digits), MAX_PAGE_SIZE)
    cursor = None
    raw_cursor = args.get("before", "").strip()
    if raw_cursor:
        cursor = Cursor.decode(raw_cursor)
        if cursor is None:
            notices.append(BAD_CURSOR)
    return limit, cursor, notices


def _newest_first(columns: tuple, where: list, before: Cursor | None) -> Select:
    query = (
        select(*columns)
        .outerjoin(Tab, Tab.id == Payment.tab_id)
        .where(*where)
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    )
    if before is not None:
        # One row-value comparison, so PostgreSQL turns it into a range on the index.
        query = query.where(tuple_(Payment.created_at, Payment.id) < (before.created_at, before.id))
    return query


def fetch_page(bar: Bar, filters: Filters, before: Cursor | None, limit: int) -> pager.Page[Cursor]:
    """One page of the bar's payments (Payment, tab label, who asked), newest first, after
    `before`."""
    query = _newest_first((Payment, Tab.label, REQUESTED_BY), filters.conditions(bar), before)
    return pager.fetch(query, limit, lambda row: Cursor(row.Payment.created_at, row.Payment.id))


# Who sent the push (None: the till system): looked up by primary key for each row of the page,
# so the plan stays a walk down the payment index with no scan of the people.
REQUESTED_BY = (
    select(User.name)
    .where(User.id == Payment.initiated_by_id)
    .correlate(Payment)
    .scalar_subquery()
    .label("requested_by")
)
EXPORT_COLUMNS = (
    Payment.id,
    Payment.created_at,
    Payment.settled_at,
    Payment.status,
    Payment.amount,
    Payment.phone,
    Payment.receipt,
    Payment.result_code,
    Payment.message,
    Payment.tab_id,
    Tab.label.label("tab_label"),
    Payment.purpose,
    Payment.flagged,
    Payment.flag_reason,
    REQUESTED_BY,
    Payment.reversed_amount,
)


def export_batches(bar: Bar, filters: Filters, batch_size: int) -> Iterator[list[Row]]:
    """Every matching payment as plain rows (no ORM objects), `batch_size` at a time.

    `bar` is read now, not when the first batch is: the batches are read while the response
    streams, after the request's session (and `bar` with it) is gone."""
    return _batches(filters.conditions(bar), batch_size)


def _batches(where: list, batch_size: int) -> Iterator[list[Row]]:
    before = None
    while True:
        query = _newest_first(EXPORT_COLUMNS, where, before).limit(batch_size)
        batch = list(db.session.execute(query).all())
        # End the read transaction between batches: a slow download must not hold one open.
        db.session.commit()
        if batch:
            yield batch
        if len(batch) < batch_size:
            return
        before = Cursor(batch[-1].created_at, batch[-1].id)

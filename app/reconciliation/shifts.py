"""Who did what in a period: per person, the M-Pesa requests they sent and how they ended, the
cash and card they took, the tabs they closed, and the tabs they opened that are still open.
The cash-up sheet of a shift, and tonight's figures on the dashboard."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select

from app.enums import IN_FLIGHT, PaymentStatus, Purpose
from app.extensions import db
from app.i18n import N_, _
from app.models import Bar, Payment, Tab, Tender, User
from app.tabs.queries import totals_for


@dataclass
class Shift:
    person_id: int | None
    name: str
    figures: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def __getattr__(self, name: str) -> int:  # shift.paid_kes, shift.cash ...
        if name.startswith("_") or name in ("person_id", "name", "figures"):
            raise AttributeError(name)
        return self.figures[name]


def shifts(
    bar: Bar, window: tuple[datetime, datetime], person_id: int | None = None
) -> list[Shift]:
    """One Shift per person with anything in `window` (or just `person_id`), by name; people
    without an account (a point-of-sale system) come last as "Till system"."""
    lo, hi = window
    found: dict[int | None, Shift] = {}

    def of(pid: int | None) -> Shift:
        return found.setdefault(pid, Shift(pid, ""))

    mine = (lambda column: column == person_id) if person_id is not None else (lambda _c: True)
    money = Payment.amount
    for pid, status, count, kes in db.session.execute(
        select(Payment.initiated_by_id, Payment.status, func.count(), func.sum(money))
        .where(
            Payment.bar_id == bar.id,
            Payment.purpose != Purpose.TEST,
            Payment.created_at >= lo,
            Payment.created_at < hi,
            mine(Payment.initiated_by_id),
        )
        .group_by(Payment.initiated_by_id, Payment.status)
    ):
        shift, kes = of(pid), int(kes or 0)
        shift.figures["pushes"] += count
        kind = (
            PaymentStatus.PAID
            if status == PaymentStatus.PAID
            else "in_flight"
            if status in IN_FLIGHT
            else PaymentStatus.FAILED  # failed, cancelled, expired or not sent: no money
        )
        shift.figures[kind] += count
        shift.figures[f"{kind}_kes"] += kes
    for pid, kind, count, kes in db.session.execute(
        select(Tender.recorded_by_id, Tender.kind, func.count(), func.sum(Tender.amount))
        .where(
            Tender.bar_id == bar.id,
            Tender.removed_at.is_(None),
            Tender.created_at >= lo,
            Tender.created_at < hi,
            mine(Tender.recorded_by_id),
        )
        .group_by(Tender.recorded_by_id, Tender.kind)
    ):
        of(pid).figures[kind] += count
        of(pid).figures[f"{kind}_kes"] += int(kes or 0)
    settled = case((Tab.status == "settled", 1), else_=0)
    for pid, closed in db.session.execute(
        select(Tab.closed_by_id, func.sum(settled))
        .where(
            Tab.bar_id == bar.id, Tab.closed_at >= lo, Tab.closed_at < hi, mine(Tab.closed_by_id)
        )
        .group_by(Tab.closed_by_id)
    ):
        of(pid).figures["tabs_closed"] += int(closed or 0)
    open_tabs = db.session.execute(
        select(Tab.id, Tab.opened_by_id).where(
            Tab.bar_id == bar.id, Tab.status == "open", mine(Tab.opened_by_id)
        )
    ).all()
    for (_tab_id, pid), totals in zip(
        open_tabs, totals_for([t for t, _pid in open_tabs]), strict=True
    ):
        of(pid).figures["open_tabs"] += 1
        of(pid).figures["open_owed"] += max(0, totals.balance)
    if person_id is not None:
        of(person_id)
    names = dict(
        db.session.execute(
            select(User.id, User.name).where(User.bar_id == bar.id, User.id.in_(list(found)))
        ).all()
    )
    for pid, shift in found.items():
        shift.name = names.get(pid, _("Till system") if pid is None else f"#{pid}")
    return sorted(found.values(), key=lambda s: (s.person_id is None, s.name.lower()))


def add_up(rows: list[Shift]) -> Shift:
    total = Shift(None, _("Everyone"))
    for row in rows:
        for name, value in row.figures.items():
            total.figures[name] += value
    return total


MAX_SHIFT = timedelta(days=7)
BAD_TIME = N_("Enter the time as a date and time, like 2026-12-05 18:00.")
REVERSED = N_("The end comes before the start; swap them.")
TOO_LONG = N_("A shift summary covers at most 7 days; choose a shorter period.")


@dataclass(frozen=True)
class Span:
    start: datetime  # naive UTC
    end: datetime
    shown_start: str  # as the form shows it, in the bar's time: 2026-12-05T18:00
    shown_end: str
    error: str | None = None


def parse_span(args, timezone: str, now: datetime) -> Span:
    """`?from=&to=` as the bar's local date and time (a datetime-local field); by default the
    last 12 hours up to now."""
    zone = ZoneInfo(timezone)

    def read(name: str, default: datetime) -> datetime | None:
        text = (args.get(name) or "").strip().replace(" ", "T")
        if not text:
            return default
        try:
            local = datetime.fromisoformat(text)
        except ValueError:
            return None
        if local.tzinfo is not None:
            return None
        return local.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)

    end = read("to", now)
    start = read("from", (end or now) - timedelta(hours=12))

    def shown(value: datetime | None, name: str) -> str:
        if value is None:
            return (args.get(name) or "")[:20]
        return value.replace(tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%dT%H:%M")

    error = None
    if start is None or end is None:
        error = BAD_TIME
    elif end < start:
        error = REVERSED
    elif end - start > MAX_SHIFT:
        error = TOO_LONG
    return Span(start or now, end or now, shown(start, "from"), shown(end, "to"), error)

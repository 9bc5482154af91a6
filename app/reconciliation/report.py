"""A bar's reconciliation figures for a day or a range, and the nightly job that keeps them.

Everything is counted in the database (GROUP BY), bar by bar, on the bar's calendar days. The
only rows fetched one by one are the push-to-paid durations (one number each), because the
median and 95th percentile are not portable SQL. Test pushes are not part of any figure: they
are counted apart, so an owner's KES 1 checks never move the success rate.

A past day is read from its ReconciliationSummary when the nightly job has written one; today,
and any day without a summary, is counted live.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import ColumnElement

from app.enums import SETTLED_UNPAID, PaymentStatus, Purpose
from app.extensions import db
from app.models import Bar, Payment, ReconciliationSummary, utcnow
from app.mpesa import describe
from app.payments.states import IN_FLIGHT
from app.reconciliation import periods, sql

SUMMARY_VERSION = 2  # a stored summary of another version is ignored and the day counted live
# The day's outcome columns: each final status, and those still in flight taken together.
KINDS = (PaymentStatus.PAID, *SETTLED_UNPAID, PaymentStatus.REJECTED, "in_flight")
# Money paid from the M-Pesa menu (C2B): no request was sent, so it is not a try. Counted apart,
# on a tab (claimed, by a cashier or a PayBill account naming the tab) or waiting to be claimed.
MENU_KINDS = ("c2b_claimed", "c2b_unclaimed")
# Payments that are not pushes: no try, no push-to-paid time.
NOT_PUSHES = (Purpose.TEST, Purpose.C2B)
UNPAID = SETTLED_UNPAID
TOP_FAILURES = 5
# A payment settles within minutes of its push; looking back a day keeps the hourly chart's
# query on the (bar_id, created_at) index instead of every payment the bar ever had.
SETTLE_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class Failure:
    """One result code among the day's failed, cancelled and expired payments."""

    code: str | None
    count: int
    kes: int

    @property
    def sentence(self) -> str:
        return describe(self.code).sentence if self.code else "No result code was recorded."


@dataclass
class Figures:
    """A day's (or a range's) counts and KES per outcome, failures, and push-to-paid times."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    kes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    test_count: int = 0
    test_kes: int = 0
    menu_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MENU_KINDS, 0))
    menu_kes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MENU_KINDS, 0))
    failures: list[Failure] = field(default_factory=list)
    median_seconds: int | None = None
    p95_seconds: int | None = None
    timed_count: int = 0
    paid_by_hour: list[int] | None = None
    day: date | None = None
    written_at: datetime | None = None  # set when read from the nightly summary

    @property
    def requested(self) -> int:
        return sum(self.counts.values())

    @property
    def requested_kes(self) -> int:
        return sum(self.kes.values())

    @property
    def menu_count(self) -> int:
        return sum(self.menu_counts.values())

    @property
    def menu_total_kes(self) -> int:
        """KES paid from the M-Pesa menu, claimed or not."""
        return sum(self.menu_kes.values())

    @property
    def mpesa_in_kes(self) -> int:
        """All M-Pesa money in: pushes paid plus money paid from the menu."""
        return self.kes[PaymentStatus.PAID] + self.menu_total_kes

    @property
    def success_rate(self) -> float | None:
        """Paid out of those that finished (in flight ones are not decided yet), in percent."""
        finished = self.requested - self.counts["in_flight"]
        return round(100 * self.counts[PaymentStatus.PAID] / finished, 1) if finished else None

    @property
    def top_failures(self) -> list[Failure]:
        return self.failures[:TOP_FAILURES]

    def to_data(self) -> dict:
        """The JSON kept in ReconciliationSummary.data."""
        return {
            "version": SUMMARY_VERSION,
            "counts": self.counts,
            "kes": self.kes,
            "test_count": self.test_count,
            "test_kes": self.test_kes,
            "menu_counts": self.menu_counts,
            "menu_kes": self.menu_kes,
            "failures": [[f.code, f.count, f.kes] for f in self.failures],
            "median_seconds": self.median_seconds,
            "p95_seconds": self.p95_seconds,
            "timed_count": self.timed_count,
            "paid_by_hour": self.paid_by_hour,
        }

    @classmethod
    def from_summary(cls, row: ReconciliationSummary) -> Figures | None:
        data = row.data or {}
        if data.get("version") != SUMMARY_VERSION:
            return None
        return cls(
            counts={k: int(data["counts"].get(k, 0)) for k in KINDS},
            kes={k: int(data["kes"].get(k, 0)) for k in KINDS},
            test_count=data["test_count"],
            test_kes=data["test_kes"],
            menu_counts={k: int(data["menu_counts"].get(k, 0)) for k in MENU_KINDS},
            menu_kes={k: int(data["menu_kes"].get(k, 0)) for k in MENU_KINDS},
            failures=[Failure(code, count, kes) for code, count, kes in data["failures"]],
            median_seconds=data["median_seconds"],
            p95_seconds=data["p95_seconds"],
            timed_count=data["timed_count"],
            paid_by_hour=data["paid_by_hour"],
            day=row.day,
            written_at=row.created_at,
        )


@dataclass(frozen=True)
class RangeReport:
    days: list[Figures]
    total: Figures


# -- reading -----------------------------------------------------------------------------------


def day_figures(bar: Bar, day: date, today: date, *, live: bool = False) -> Figures:
    """One day: from the nightly summary for a past day (unless `live`), else counted now."""
    if day < today and not live:
        stored = _summaries(bar, [day]).get(day)
        if stored is not None:
            return stored
    return count_days(bar, [day], hourly=True)[day]


def range_figures(bar: Bar, start: date, end: date, today: date) -> RangeReport:
    """Each day from `start` to `end` (summaries where written) and their total."""
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    stored = _summaries(bar, [d for d in days if d < today])
    missing = [d for d in days if d not in stored]
    counted = count_days(bar, missing, hourly=False, timed=False) if missing else {}
    durations = _durations(bar, days)
    for day, seconds in durations.items():
        if day in counted:
            _set_quantiles(counted[day], seconds)
    figures = [stored.get(d) or counted[d] for d in days]
    total = _add_up(figures)
    _set_quantiles(total, [s for seconds in durations.values() for s in seconds])
    return RangeReport(figures, total)


def _summaries(bar: Bar, days: list[date]) -> dict[date, Figures]:
    if not days:
        return {}
    rows = db.session.scalars(
        select(ReconciliationSummary).where(
            ReconciliationSummary.bar_id == bar.id, ReconciliationSummary.day.in_(days)
        )
    )
    found = ((row.day, Figures.from_summary(row)) for row in rows)
    return {day: figures for day, figures in found if figures is not None}


def _add_up(days: list[Figures]) -> Figures:
    total = Figures()
    failures: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    for figures in days:
        for kind in KINDS:
            total.counts[kind] += figures.counts[kind]
            total.kes[kind] += figures.kes[kind]
        total.test_count += figures.test_count
        total.test_kes += figures.test_kes
        for kind in MENU_KINDS:
            total.menu_counts[kind] += figures.menu_counts[kind]
            total.menu_kes[kind] += figures.menu_kes[kind]
        for failure in figures.failures:
            failures[failure.code][0] += failure.count
            failures[failure.code][1] += failure.kes
    total.failures = _ranked(failures)
    return total


def _ranked(failures: dict[str | None, list[int]]) -> list[Failure]:
    ranked = [Failure(code, count, kes) for code, (count, kes) in failures.items()]
    return sorted(ranked, key=lambda f: (-f.count, -f.kes, f.code or ""))


# -- counting ----------------------------------------------------------------------------------


def count_days(
    bar: Bar, days: list[date], *, hourly: bool, timed: bool = True
) -> dict[date, Figures]:
    """Count `days` (any order, gaps allowed) live: a grouped query each for outcomes, failure
    codes and durations, and one per day for the hourly chart when `hourly`."""
    days = sorted(days)
    result = {day: Figures(day=day) for day in days}
    bucket, where = _day_buckets(bar, days, Payment.created_at)
    _count_outcomes(result, days, bucket, where)
    _count_failures(result, days, bucket, where)
    if timed:
        for day, seconds in _durations(bar, days).items():
            _set_quantiles(result[day], seconds)
    if hourly:
        for day in days:
            result[day].paid_by_hour = _paid_by_hour(bar, day)
    return result


def _day_buckets(bar: Bar, days: list[date], column) -> tuple[ColumnElement, list]:
    """Each row's index in `days` (by `column`), and the WHERE covering all of them.

    Bounds come from the bar's timezone in Python, so the SQL is the same on SQLite and
    PostgreSQL and right for any zone, DST or not."""
    windows = [periods.window(day, day, bar.timezone) for day in days]
    where = [Payment.bar_id == bar.id, column >= windows[0][0], column < windows[-1][1]]
    return sql.bucket_of(column, windows), where


def _count_outcomes(result: dict[date, Figures], days: list[date], bucket, where) -> None:
    kind = case(
        (Payment.purpose == Purpose.TEST, Purpose.TEST),
        (
            Payment.purpose == Purpose.C2B,
            case((Payment.tab_id.is_(None), MENU_KINDS[1]), else_=MENU_KINDS[0]),
        ),
        (Payment.status.in_(IN_FLIGHT), "in_flight"),
        else_=Payment.status,
    )
    rows = (
        select(bucket.label("bucket"), kind.label("kind"), Payment.amount).where(*where).subquery()
    )
    grouped = (
        select(rows.c.bucket, rows.c.kind, func.count(), func.coalesce(func.sum(rows.c.amount), 0))
        .where(rows.c.bucket.is_not(None))
        .group_by(rows.c.bucket, rows.c.kind)
    )
    for n, name, count, kes in db.session.execute(grouped):
        figures = result[days[n]]
        if name == "test":
            figures.test_count, figures.test_kes = int(count), int(kes)
        elif name in figures.menu_counts:
            figures.menu_counts[name] += int(count)
            figures.menu_kes[name] += int(kes)
        elif name in figures.counts:
            figures.counts[name] += int(count)
            figures.kes[name] += int(kes)


def _count_failures(result: dict[date, Figures], days: list[date], bucket, where) -> None:
    rows = (
        select(bucket.label("bucket"), Payment.result_code, Payment.amount)
        .where(*where, Payment.purpose != Purpose.TEST, Payment.status.in_(UNPAID))
        .subquery()
    )
    grouped = (
        select(rows.c.bucket, rows.c.result_code, func.count(), func.sum(rows.c.amount))
        .where(rows.c.bucket.is_not(None))
        .group_by(rows.c.bucket, rows.c.result_code)
    )
    per_day: dict[int, dict[str | None, list[int]]] = defaultdict(dict)
    for n, code, count, kes in db.session.execute(grouped):
        per_day[n][code] = [int(count), int(kes or 0)]
    for n, failures in per_day.items():
        result[days[n]].failures = _ranked(failures)


def _durations(bar: Bar, days: list[date]) -> dict[date, list[int]]:
    """Push-to-paid seconds of each day's paid payments (by the day they were requested).

    A payment whose callback beat the push response never had `sent_at`; its push started at
    `created_at`, a second or so earlier."""
    if not days:
        return {}
    days = sorted(days)
    bucket, where = _day_buckets(bar, days, Payment.created_at)
    pushed = func.coalesce(Payment.sent_at, Payment.created_at)
    rows = (
        select(
            bucket.label("bucket"), sql.seconds_between(pushed, Payment.settled_at).label("seconds")
        )
        .where(
            *where,
            Payment.purpose.not_in(NOT_PUSHES),
            Payment.status == PaymentStatus.PAID,
            Payment.settled_at.is_not(None),
        )
        .subquery()
    )
    found: dict[date, list[int]] = {day: [] for day in days}
    for n, seconds in db.session.execute(
        select(rows.c.bucket, rows.c.seconds).where(rows.c.bucket.is_not(None))
    ):
        found[days[n]].append(max(0, round(seconds)))
    return found


def _set_quantiles(figures: Figures, seconds: list[int]) -> None:
    figures.timed_count = len(seconds)
    figures.median_seconds = round(statistics.median(seconds)) if seconds else None
    figures.p95_seconds = percentile(seconds, 95) if seconds else None


def percentile(values: list[int], pct: float) -> int:
    """Nearest-rank percentile: the smallest value with at least `pct`% of values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _paid_by_hour(bar: Bar, day: date) -> list[int]:
    """KES that arrived in each local hour of `day` (by when the payment settled as paid):
    pushes paid and money paid from the menu alike."""
    starts = periods.hour_starts(day, bar.timezone)
    hour = sql.bucket_of(Payment.settled_at, list(itertools.pairwise(starts)))
    rows = (
        select(hour.label("hour"), Payment.amount)
        .where(
            Payment.bar_id == bar.id,
            Payment.purpose != Purpose.TEST,
            Payment.status == PaymentStatus.PAID,
            Payment.created_at >= starts[0] - SETTLE_LOOKBACK,
            Payment.created_at < starts[-1],
            Payment.settled_at >= starts[0],
            Payment.settled_at < starts[-1],
        )
        .subquery()
    )
    hours = [0] * 24
    grouped = select(rows.c.hour, func.sum(rows.c.amount)).group_by(rows.c.hour)
    for h, kes in db.session.execute(grouped):
        if h is not None:
            hours[h] += int(kes or 0)
    return hours


# -- the nightly job ---------------------------------------------------------------------------


def write_daily_summaries(day: date | None = None, now: datetime | None = None) -> int:
    """The nightly job: each bar's figures for `day` (default: yesterday in the bar's own
    timezone) written to ReconciliationSummary. Running it again rewrites the same row, and
    leaves it untouched when nothing changed. Returns the number of bars summarised."""
    now = now or utcnow()
    bars = db.session.scalars(select(Bar).order_by(Bar.id)).all()
    for bar in bars:
        target = day or periods.local_today(bar.timezone, now) - timedelta(days=1)
        data = count_days(bar, [target], hourly=True)[target].to_data()
        _upsert(bar.id, target, data, now)
        db.session.commit()
    return len(bars)


def _upsert(bar_id: int, day: date, data: dict, now: datetime) -> None:
    found = select(ReconciliationSummary).where(
        ReconciliationSummary.bar_id == bar_id, ReconciliationSummary.day == day
    )
    row = db.session.scalar(found)
    if row is None:
        try:
            with db.session.begin_nested():
                db.session.add(
                    ReconciliationSummary(bar_id=bar_id, day=day, data=data, created_at=now)
                )
            return
        except IntegrityError:  # another runner wrote it a moment ago: update theirs
            row = db.session.scalar(found)
    if row.data != data:
        row.data, row.created_at = data, now

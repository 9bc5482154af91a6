"""What the operators' page shows: every bar with its state, today's M-Pesa volume and alerts.

A fixed number of queries however many bars there are: the bars, one grouped query for today's
volume (each bar's own calendar day, whatever its timezone), the alerts' grouped queries, and
the count of callbacks nobody could place. Nothing here opens or shows a bar's credentials.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select

from app import jobs
from app.enums import PaymentStatus, Purpose
from app.extensions import db
from app.i18n import N_
from app.models import Bar, CallbackEvent, JobStatus, Payment
from app.ops import alerts
from app.reconciliation import periods

# Callbacks whose token matched no payment belong to no bar: the operators' day is Nairobi's.
OPERATOR_TIMEZONE = "Africa/Nairobi"
SETUP_LABELS = {
    "no_credentials": N_("No credentials yet"),
    "credentials_saved": N_("Credentials saved, no paid test push"),
    "verified": N_("Verified, not live"),
    "live": N_("Live"),
}


@dataclass
class Volume:
    requested: int = 0
    requested_kes: int = 0
    paid: int = 0
    paid_kes: int = 0


@dataclass
class BarRow:
    id: int
    name: str
    slug: str
    setup_state: str
    mpesa_enabled: bool
    today: Volume = field(default_factory=Volume)
    alerts: list[alerts.Alert] = field(default_factory=list)


@dataclass(frozen=True)
class Overview:
    bars: list[BarRow]
    unknown_callbacks_today: int

    @property
    def bars_with_alerts(self) -> int:
        return sum(1 for row in self.bars if row.alerts)


def overview(now: datetime) -> Overview:
    found_bars = db.session.execute(
        select(
            Bar.id, Bar.name, Bar.slug, Bar.setup_state, Bar.mpesa_enabled, Bar.timezone
        ).order_by(Bar.name, Bar.id)
    ).all()
    bars = [
        BarRow(
            id=b.id,
            name=b.name,
            slug=b.slug,
            setup_state=b.setup_state,
            mpesa_enabled=b.mpesa_enabled,
        )
        for b in found_bars
    ]
    volumes = today_volumes({b.timezone for b in found_bars}, now)
    found = alerts.all_alerts(now)
    for row in bars:
        row.today = volumes.get(row.id, Volume())
        row.alerts = found.get(row.id, [])
    return Overview(bars, unknown_callbacks_today(now))


def today_volumes(zones: set[str], now: datetime) -> dict[int, Volume]:
    """Each bar's requests and payments since its own local midnight (test pushes left out),
    in one grouped query: bars are matched to their day by timezone."""
    if not zones:
        return {}
    days = []
    for zone in sorted(zones):
        today = periods.local_today(zone, now)
        start, end = periods.window(today, today, zone)
        days.append(
            and_(Bar.timezone == zone, Payment.created_at >= start, Payment.created_at < end)
        )
    paid = Payment.status == PaymentStatus.PAID
    rows = db.session.execute(
        select(
            Payment.bar_id,
            func.count(),
            func.coalesce(func.sum(Payment.amount), 0),
            func.sum(case((paid, 1), else_=0)),
            func.sum(case((paid, Payment.amount), else_=0)),
        )
        .join(Bar, Bar.id == Payment.bar_id)
        .where(Payment.purpose != Purpose.TEST, Payment.created_at <= now, or_(*days))
        .group_by(Payment.bar_id)
    )
    return {
        bar_id: Volume(int(count), int(kes or 0), int(paid_count or 0), int(paid_kes or 0))
        for bar_id, count, kes, paid_count, paid_kes in rows
    }


def unknown_callbacks_today(now: datetime) -> int:
    """Callbacks whose token matched no payment since midnight in Nairobi: forged, very late, or
    meant for another system behind the same address."""
    start = periods.day_start(periods.local_today(OPERATOR_TIMEZONE, now), OPERATOR_TIMEZONE)
    return (
        db.session.scalar(
            select(func.count())
            .select_from(CallbackEvent)
            .where(
                CallbackEvent.disposition == "unknown_token",
                CallbackEvent.received_at >= start,
                CallbackEvent.received_at <= now,
            )
        )
        or 0
    )


JOB_LABELS = {
    "recover": N_("Checking payments whose callback has not come"),
    "replay": N_("Re-applying callbacks that failed on our side"),
    "expire": N_("Settling requests that never left PesaTab"),
    "reconcile": N_("Nightly reconciliation summary"),
    "summaries": N_("Morning summary email to owners"),
    "prune": N_("Blanking old callback bodies and unused tokens"),
    "pull": N_("Finding menu payments whose confirmation was lost (Pull Transactions)"),
}


def job_health() -> list[tuple[str, str, JobStatus | None]]:
    """Each periodic job, in words (English: the page shows them through `_()`), with its last
    run (an operator's concern, not a bar's)."""
    rows = {s.name: s for s in db.session.scalars(select(JobStatus))}
    return [(name, JOB_LABELS.get(name, name), rows.get(name)) for name in jobs.JOBS]

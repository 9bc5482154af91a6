"""Read-side queries for the tab pages: lists with their totals in a few grouped queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, func, or_, select

from app.enums import PaymentStatus
from app.extensions import db
from app.models import Payment, Tab, TabLine, Tender, utcnow
from app.payments.states import IN_FLIGHT
from app.tabs.totals import Totals


@dataclass(frozen=True)
class TabRow:
    tab: Tab
    totals: Totals


def tab_list(bar_id: int, search: str = "", limit: int = 100) -> list[TabRow]:
    """Open tabs first (newest first), then tabs closed in the last 12 hours."""
    recent = utcnow() - timedelta(hours=12)
    query = (
        select(Tab)
        .where(Tab.bar_id == bar_id, or_(Tab.status == "open", Tab.closed_at >= recent))
        .order_by(case((Tab.status == "open", 0), else_=1), Tab.opened_at.desc(), Tab.id.desc())
        .limit(limit)
    )
    if search.strip():
        query = query.where(Tab.label.ilike(f"%{search.strip()}%"))
    tabs = db.session.scalars(query).all()
    return [
        TabRow(tab, totals)
        for tab, totals in zip(tabs, totals_for([t.id for t in tabs]), strict=True)
    ]


def totals_for(tab_ids: list[int]) -> list[Totals]:
    if not tab_ids:
        return []
    lines = dict(
        db.session.execute(
            select(TabLine.tab_id, func.sum(TabLine.quantity * TabLine.unit_price))
            .where(TabLine.tab_id.in_(tab_ids), TabLine.removed_at.is_(None))
            .group_by(TabLine.tab_id)
        ).all()
    )
    paid_in_flight = {
        tab_id: (paid, flying)
        for tab_id, paid, flying in db.session.execute(
            select(
                Payment.tab_id,
                func.sum(case((Payment.status == PaymentStatus.PAID, Payment.amount), else_=0)),
                func.sum(case((Payment.status.in_(IN_FLIGHT), Payment.amount), else_=0)),
            )
            .where(Payment.tab_id.in_(tab_ids))
            .group_by(Payment.tab_id)
        ).all()
    }
    taken = dict(
        db.session.execute(
            select(Tender.tab_id, func.sum(Tender.amount))
            .where(Tender.tab_id.in_(tab_ids), Tender.removed_at.is_(None))
            .group_by(Tender.tab_id)
        ).all()
    )
    return [
        Totals(
            int(lines.get(i) or 0),
            int(paid_in_flight.get(i, (0, 0))[0] or 0),
            int(paid_in_flight.get(i, (0, 0))[1] or 0),
            int(taken.get(i) or 0),
        )
        for i in tab_ids
    ]


def tab_payments(tab_id: int) -> list[Payment]:
    return db.session.scalars(
        select(Payment).where(Payment.tab_id == tab_id).order_by(Payment.id.desc())
    ).all()


def tab_tenders(tab_id: int) -> list[Tender]:
    """The cash and card payments still on the tab, oldest first."""
    return db.session.scalars(
        select(Tender)
        .where(Tender.tab_id == tab_id, Tender.removed_at.is_(None))
        .order_by(Tender.id)
    ).all()

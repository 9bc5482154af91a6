"""A tab's totals, always derived in the database: lines, paid, and being asked for now.

Below the payments domain (push checks an amount against `requestable`), above the models."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from app.enums import PaymentStatus
from app.extensions import db
from app.models import Payment, Tab, TabLine
from app.payments.states import IN_FLIGHT


@dataclass(frozen=True)
class Totals:
    total: int
    paid: int
    in_flight: int

    @property
    def balance(self) -> int:
        return self.total - self.paid

    @property
    def requestable(self) -> int:
        """What may still be asked for: the balance less what phones are being asked now."""
        return max(0, self.balance - self.in_flight)


def totals_columns(tab_id) -> tuple:
    """The tab's line total, paid sum and in-flight sum as three scalar subqueries on `tab_id`
    (a value or a column): one round trip, alone or next to other columns."""
    line_total = (
        select(func.coalesce(func.sum(TabLine.quantity * TabLine.unit_price), 0))
        .where(TabLine.tab_id == tab_id)
        .scalar_subquery()
    )
    other = aliased(Payment)  # never correlated with an outer query on payment
    paid = (
        select(func.coalesce(func.sum(other.amount), 0))
        .where(other.tab_id == tab_id, other.status == PaymentStatus.PAID)
        .scalar_subquery()
    )
    in_flight = (
        select(func.coalesce(func.sum(other.amount), 0))
        .where(other.tab_id == tab_id, other.status.in_(IN_FLIGHT))
        .scalar_subquery()
    )
    return line_total, paid, in_flight


def totals(tab: Tab) -> Totals:
    """Lines minus paid payments, computed in the database (one query)."""
    total, paid, in_flight = db.session.execute(select(*totals_columns(tab.id))).one()
    return Totals(int(total), int(paid), int(in_flight))

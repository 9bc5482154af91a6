"""A tab's totals, always derived in the database: lines, paid by M-Pesa, paid in cash or by
card, and being asked for now. The one place these sums are written: the tab pages, the status
poll, the tab list and the reconciliation's tab breaks all build them here.

Below the payments domain (push checks an amount against `requestable`), above the models."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import aliased

from app.enums import PaymentStatus
from app.extensions import db
from app.models import Payment, Tab, TabLine, Tender, one_of
from app.payments.states import IN_FLIGHT


@dataclass(frozen=True)
class Totals:
    total: int  # the lines still on the tab
    paid: int  # by M-Pesa, less what a reversal gave back
    in_flight: int  # being asked on a phone now
    tendered: int = 0  # cash and card

    @property
    def settled(self) -> int:
        """Money taken, however it came."""
        return self.paid + self.tendered

    @property
    def balance(self) -> int:
        return self.total - self.settled

    @property
    def requestable(self) -> int:
        """What may still be asked for: the balance less what phones are being asked now."""
        return max(0, self.balance - self.in_flight)


def line_total(tab_id):
    """The sum of the tab's lines still on it, as a scalar subquery on `tab_id`."""
    return (
        select(func.coalesce(func.sum(TabLine.quantity * TabLine.unit_price), 0))
        .where(TabLine.tab_id == tab_id, TabLine.removed_at.is_(None))
        .scalar_subquery()
    )


def tendered(tab_id, kind: str | None = None):
    """Cash and card taken on the tab (or one `kind`), as a scalar subquery on `tab_id`."""
    query = select(func.coalesce(func.sum(Tender.amount), 0)).where(
        Tender.tab_id == tab_id, Tender.removed_at.is_(None)
    )
    if kind is not None:
        query = query.where(Tender.kind == kind)
    return query.scalar_subquery()


def totals_columns(tab_id) -> tuple:
    """The tab's line total, M-Pesa paid sum, in-flight sum and cash-and-card sum as four scalar
    subqueries on `tab_id` (a value or a column): one round trip, alone or next to others."""
    other = aliased(Payment)  # never correlated with an outer query on payment
    paid = (
        select(func.coalesce(func.sum(other.amount - other.reversed_amount), 0))
        .where(other.tab_id == tab_id, other.status == PaymentStatus.PAID)
        .scalar_subquery()
    )
    in_flight = (
        select(func.coalesce(func.sum(other.amount), 0))
        .where(other.tab_id == tab_id, one_of(other.status, IN_FLIGHT))
        .scalar_subquery()
    )
    return line_total(tab_id), paid, in_flight, tendered(tab_id)


def of_row(total, paid, in_flight, cash_and_card) -> Totals:
    """Totals from the four columns of `totals_columns`, as a row holds them."""
    return Totals(int(total), int(paid), int(in_flight), int(cash_and_card))


@functools.cache
def _totals_query():
    """Built once: composing the four subqueries costs more than running them."""
    return select(*totals_columns(bindparam("tab_id")))


def totals(tab: Tab) -> Totals:
    """Lines minus money taken, computed in the database (one query)."""
    return of_row(*db.session.execute(_totals_query(), {"tab_id": tab.id}).one())

"""The period in tabs and money: what was asked and paid by M-Pesa counted per bill (a bill
retried three times before it paid is one bill of KES 2,500, asked once and paid once), how
many tries that took, and the cash and card taken at the counter, always apart from M-Pesa.

A bill is the amount asked on one tab: requests on the same tab for the same amount are tries
at it. When several of them were paid (the same amount split across phones), that many bills
were asked. A request from a point-of-sale system (no tab) is a bill of its own. Test pushes
never count. Money paid from the M-Pesa menu (C2B) was never asked: it is counted apart, on a
tab (claimed) or waiting for a cashier to claim it, and is part of what was taken. Money a
reversal gave back is money out, on the day M-Pesa gave it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from app.enums import PaymentStatus, Purpose, ReversalState
from app.extensions import db
from app.models import Bar, Payment, Reversal, Tender


@dataclass(frozen=True)
class Money:
    bills: int  # things asked by M-Pesa, a retry counted once
    asked: int  # KES those bills asked
    paid_bills: int
    mpesa: int  # KES paid by M-Pesa
    tries: int  # M-Pesa requests sent, retries included
    cash: int
    card: int
    cash_count: int
    card_count: int
    menu_claimed: int = 0  # KES paid from the M-Pesa menu, on a tab
    menu_claimed_count: int = 0
    menu_unclaimed: int = 0  # KES paid from the menu, waiting to be claimed
    menu_unclaimed_count: int = 0
    given_back: int = 0  # KES M-Pesa reversals gave back in the period (money out)
    given_back_count: int = 0

    @property
    def menu(self) -> int:
        return self.menu_claimed + self.menu_unclaimed

    @property
    def taken(self) -> int:
        """Money in, however it came."""
        return self.mpesa + self.menu + self.cash + self.card

    @property
    def kept(self) -> int:
        """Money in less the money given back by reversals in the same period."""
        return self.taken - self.given_back

    @property
    def paid_share(self) -> float | None:
        """Of the KES asked by M-Pesa, the share paid, in percent."""
        return round(100 * self.mpesa / self.asked, 1) if self.asked else None


def money(bar: Bar, window: tuple[datetime, datetime]) -> Money:
    """The money of `window` (naive UTC, by when it was asked or taken)."""
    lo, hi = window
    paid = case((Payment.status == PaymentStatus.PAID, 1), else_=0)
    in_window = (
        Payment.bar_id == bar.id,
        Payment.purpose.not_in((Purpose.TEST, Purpose.C2B)),
        Payment.created_at >= lo,
        Payment.created_at < hi,
    )
    groups = db.session.execute(
        select(Payment.amount, func.count(), func.sum(paid))
        .where(*in_window, Payment.tab_id.is_not(None))
        .group_by(Payment.tab_id, Payment.amount)
    ).all()
    bills = asked = paid_bills = mpesa = tries = 0
    for amount, count, paid_count in groups:
        paid_count = int(paid_count or 0)
        bills += max(1, paid_count)
        asked += amount * max(1, paid_count)
        paid_bills += paid_count
        mpesa += amount * paid_count
        tries += count
    alone_count, alone_kes, alone_paid, alone_paid_kes = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Payment.amount), 0),
            func.coalesce(func.sum(paid), 0),
            func.coalesce(func.sum(paid * Payment.amount), 0),
        ).where(*in_window, Payment.tab_id.is_(None))
    ).one()
    taken = {
        kind: (int(count), int(kes or 0))
        for kind, count, kes in db.session.execute(
            select(Tender.kind, func.count(), func.sum(Tender.amount))
            .where(
                Tender.bar_id == bar.id,
                Tender.removed_at.is_(None),
                Tender.created_at >= lo,
                Tender.created_at < hi,
            )
            .group_by(Tender.kind)
        )
    }
    menu = _menu_money(bar, window)
    return Money(
        bills=bills + int(alone_count),
        asked=asked + int(alone_kes),
        paid_bills=paid_bills + int(alone_paid),
        mpesa=mpesa + int(alone_paid_kes),
        tries=tries + int(alone_count),
        cash=taken.get("cash", (0, 0))[1],
        card=taken.get("card", (0, 0))[1],
        cash_count=taken.get("cash", (0, 0))[0],
        card_count=taken.get("card", (0, 0))[0],
        **menu,
        **_given_back(bar, window),
    )


def _menu_money(bar: Bar, window: tuple[datetime, datetime]) -> dict[str, int]:
    """Money paid from the M-Pesa menu in `window`: on a tab, or waiting to be claimed."""
    lo, hi = window
    found = {
        claimed: (int(count), int(kes or 0))
        for claimed, count, kes in db.session.execute(
            select(Payment.tab_id.is_not(None), func.count(), func.sum(Payment.amount))
            .where(
                Payment.bar_id == bar.id,
                Payment.purpose == Purpose.C2B,
                Payment.status == PaymentStatus.PAID,
                Payment.created_at >= lo,
                Payment.created_at < hi,
            )
            .group_by(Payment.tab_id.is_not(None))
        )
    }
    claimed, unclaimed = found.get(True, (0, 0)), found.get(False, (0, 0))
    return {
        "menu_claimed": claimed[1],
        "menu_claimed_count": claimed[0],
        "menu_unclaimed": unclaimed[1],
        "menu_unclaimed_count": unclaimed[0],
    }


def _given_back(bar: Bar, window: tuple[datetime, datetime]) -> dict[str, int]:
    """Reversals M-Pesa confirmed in `window`, counted on the day the money went out (the
    payment itself stays on the day it came in: a past day's figures never change)."""
    lo, hi = window
    count, kes = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Reversal.amount), 0)).where(
            Reversal.bar_id == bar.id,
            Reversal.state == ReversalState.REVERSED,
            Reversal.settled_at >= lo,
            Reversal.settled_at < hi,
        )
    ).one()
    return {"given_back": int(kes), "given_back_count": int(count)}

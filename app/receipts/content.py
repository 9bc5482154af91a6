"""What a receipt says: the bar, the tab's lines, each way it was paid, the totals, the time.

Built from the tab alone (its lines, its paid M-Pesa payments, its cash and card): nothing of
any other tab, and no phone number (a receipt may be shown to anyone holding its link)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.enums import PaymentStatus, ReversalState
from app.extensions import db
from app.i18n import _
from app.models import Bar, Payment, Reversal, Tab, Tender
from app.tabs.queries import tab_payments, tab_tenders
from app.tabs.totals import Totals, totals

NAIROBI = "Africa/Nairobi"


@dataclass(frozen=True)
class Line:
    description: str
    quantity: int
    unit_price: int
    total: int


@dataclass(frozen=True)
class Money:
    """One way the tab was paid: M-Pesa (with its receipt number), cash or card."""

    kind: str  # what the receipt calls it, in the reader's language
    amount: int
    reference: str | None
    at: datetime | None
    mpesa: bool = False


@dataclass(frozen=True)
class Receipt:
    bar_name: str
    address: str | None
    kra_pin: str | None
    timezone: str
    tab_id: int
    tab_label: str
    lines: list[Line]
    money: list[Money]
    totals: Totals
    issued_at: datetime | None

    @property
    def zone(self) -> str:
        """How the time is labelled: EAT for Kenyan bars, else the timezone's name."""
        return "EAT" if self.timezone == NAIROBI else self.timezone


def is_paid(tab: Tab, current: Totals) -> bool:
    """Closed and settled, or still open with nothing left to pay on a tab that had lines."""
    if tab.status == "settled":
        return True
    return tab.status == "open" and current.total > 0 and current.balance <= 0


def build(tab: Tab, bar: Bar) -> Receipt | None:
    """The receipt of a paid tab, or None while it is not paid (or void)."""
    current = totals(tab)
    if tab.bar_id != bar.id or not is_paid(tab, current):
        return None
    paid = [p for p in reversed(tab_payments(tab.id)) if p.status == PaymentStatus.PAID]
    money = sorted(
        [_mpesa(p) for p in paid]
        + [_tender(t) for t in tab_tenders(tab.id)]
        + [_given_back(r) for r in _reversals(tab.id)],
        key=lambda m: m.at or datetime.min,
    )
    lines = [
        Line(line.description, line.quantity, line.unit_price, line.total)
        for line in tab.lines
        if line.removed_at is None
    ]
    moments = [m.at for m in money if m.at is not None]
    issued = tab.closed_at if tab.status == "settled" else max(moments, default=None)
    return Receipt(
        bar_name=bar.name,
        address=bar.address,
        kra_pin=bar.kra_pin,
        timezone=bar.timezone or NAIROBI,
        tab_id=tab.id,
        tab_label=tab.label,
        lines=lines,
        money=money,
        totals=current,
        issued_at=issued or tab.opened_at,
    )


def _mpesa(payment: Payment) -> Money:
    return Money(
        kind=_("M-Pesa"),
        amount=payment.amount,
        reference=payment.receipt,
        at=payment.transaction_time or payment.settled_at or payment.updated_at,
        mpesa=True,
    )


def _reversals(tab_id: int) -> list[Reversal]:
    return list(
        db.session.scalars(
            select(Reversal)
            .where(Reversal.tab_id == tab_id, Reversal.state == ReversalState.REVERSED)
            .order_by(Reversal.id)
        )
    )


def _given_back(reversal: Reversal) -> Money:
    """Money M-Pesa gave back on the tab: a negative line, with the reversal's own receipt."""
    return Money(
        kind=_("M-Pesa reversal of %(receipt)s", receipt=reversal.receipt),
        amount=-reversal.amount,
        reference=reversal.reversal_receipt,
        at=reversal.settled_at,
        mpesa=True,
    )


def _tender(tender: Tender) -> Money:
    return Money(
        kind=_("Cash") if tender.kind == "cash" else _("Card"),
        amount=tender.amount,
        reference=None,
        at=tender.created_at,
    )

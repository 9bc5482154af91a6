"""Statement lines next to money paid from the M-Pesa menu (C2B confirmations).

A C2B payment is a paid Payment whose receipt is the confirmation's TransID, so the import
matches its line by receipt like an STK payment's. Three things are C2B's own:

- a statement imported before the confirmation came leaves the line an orphan; when the
  confirmation is applied, `match_late_receipt` matches that line to the new payment;
- a matched line whose payment is C2B money says so: on which tab, or still waiting for a
  cashier to claim it (never "not in PesaTab");
- an orphan whose receipt PesaTab holds only as a confirmation it did not count (another
  shortcode, malformed, kept pending) says that, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select, update

from app.enums import PaymentStatus, Purpose
from app.extensions import db
from app.i18n import N_
from app.models import C2BConfirmation, Payment, StatementLine, Tab

CLAIMED, UNCLAIMED, KEPT = "claimed", "unclaimed", "kept"
# Why a confirmation with this receipt was kept without counting it, in the reader's words.
KEPT_REASONS = {
    "foreign_shortcode": N_("it named another short code"),
    "malformed": N_("its fields could not be read"),
    "pending": N_("it is still waiting to be applied"),
}


@dataclass(frozen=True)
class Note:
    """What PesaTab knows about a line's receipt as menu money."""

    kind: str  # claimed, unclaimed or kept
    tab_id: int | None = None
    tab_label: str | None = None
    reason: str | None = None  # kept: why it was not counted (a msgid)


def match_late_receipt(bar_id: int, receipt: str, payment_id: int, amount: int) -> int:
    """Match the bar's orphan lines carrying `receipt` to the C2B payment just made for it (in
    the caller's transaction). Returns how many lines it matched."""
    state = case((StatementLine.paid_in_cents == amount * 100, "matched"), else_="amount_differs")
    return db.session.execute(
        update(StatementLine)
        .where(
            StatementLine.bar_id == bar_id,
            StatementLine.receipt == receipt,
            StatementLine.match_state == "orphan",
            StatementLine.payment_id.is_(None),
        )
        .values(payment_id=payment_id, match_state=state)
        .execution_options(synchronize_session=False)
    ).rowcount


def notes(bar_id: int, lines) -> dict[int, Note]:
    """Line id -> Note for the lines (matched or orphan) whose receipt is menu money."""
    found: dict[int, Note] = {}
    paid = [line for line in lines if line.payment_id is not None]
    if paid:
        rows = db.session.execute(
            select(Payment.id, Payment.tab_id, Tab.label)
            .outerjoin(Tab, Tab.id == Payment.tab_id)
            .where(
                Payment.bar_id == bar_id,
                Payment.purpose == Purpose.C2B,
                Payment.id.in_({line.payment_id for line in paid}),
            )
        ).all()
        menu = {pid: (tab_id, label) for pid, tab_id, label in rows}
        for line in paid:
            if line.payment_id in menu:
                tab_id, label = menu[line.payment_id]
                found[line.id] = Note(CLAIMED if tab_id else UNCLAIMED, tab_id, label)
    orphans = {line.receipt: line.id for line in lines if line.payment_id is None}
    if orphans:
        kept = db.session.execute(
            select(C2BConfirmation.trans_id, C2BConfirmation.disposition).where(
                C2BConfirmation.bar_id == bar_id,
                C2BConfirmation.trans_id.in_(orphans),
                C2BConfirmation.payment_id.is_(None),
                C2BConfirmation.disposition.in_(KEPT_REASONS),
            )
        ).all()
        for receipt, disposition in kept:
            found[orphans[receipt]] = Note(KEPT, reason=KEPT_REASONS[disposition])
    return found


def unclaimed_count(bar_id: int, line_filter) -> int:
    """How many of the statement's matched lines are menu money no cashier has claimed yet."""
    return db.session.scalar(
        select(func.count())
        .select_from(StatementLine)
        .join(Payment, Payment.id == StatementLine.payment_id)
        .where(
            line_filter,
            StatementLine.match_state == "matched",
            Payment.bar_id == bar_id,
            Payment.purpose == Purpose.C2B,
            Payment.status == PaymentStatus.PAID,
            Payment.tab_id.is_(None),
        )
    )

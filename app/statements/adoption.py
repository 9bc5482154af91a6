"""Receipts that never came. A payment Daraja's STK query reported paid has no receipt (the
query does not give one), so its statement line would look like an orphan: attaching it to a
tab would count the money twice. A line is taken as that payment's when the amount is the
same, M-Pesa completed it between the push and the moment PesaTab learned it was paid, the
(masked) phone agrees, and no other payment could be it; otherwise a manager says which.
Never matched by guesswork on amount and time alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError

from app import audit
from app.enums import FlagReason, PaymentStatus
from app.extensions import db
from app.i18n import N_
from app.models import Payment, StatementImport, StatementLine
from app.statements.reader import MASKED_PHONE, StatementError

# How far M-Pesa's completion time may sit outside [push asked, paid learned] (clocks differ).
PENDING_SLACK = timedelta(minutes=2)


# A payment Daraja's STK query reported paid has no receipt (the query does not give one), so
# its statement line would look like an orphan: attaching it to a tab would count it twice.
# A line is taken as that payment's when the amount is the same, M-Pesa completed it between
# the push and the moment PesaTab learned it was paid, and the (masked) phone agrees.


def receipt_pending_payments(
    bar_id: int, start: datetime | None = None, end: datetime | None = None
):
    query = select(Payment).where(
        Payment.bar_id == bar_id, Payment.status == PaymentStatus.PAID, Payment.receipt.is_(None)
    )
    if start is not None and end is not None:
        query = query.where(
            Payment.created_at <= end + PENDING_SLACK, Payment.settled_at >= start - PENDING_SLACK
        )
    return query.order_by(Payment.created_at, Payment.id)


def could_be(line: StatementLine, payment: Payment) -> bool:
    """Could this money-in line be `payment`, paid but without a receipt?"""
    if (
        payment.status != PaymentStatus.PAID
        or payment.receipt is not None
        or line.paid_in_cents != payment.amount * 100
    ):
        return False
    learned = payment.settled_at or payment.updated_at or payment.created_at
    if not payment.created_at - PENDING_SLACK <= line.completion_time <= learned + PENDING_SLACK:
        return False
    return _phone_fits(line.other_party.split(" - ", 1)[0].strip(), payment.phone)


def _phone_fits(shown: str, phone: str) -> bool:
    """'25470****149' or '0708***149' against 254708374149; a form we cannot read fits."""
    if not MASKED_PHONE.fullmatch(shown) or not phone:
        return True
    if shown.startswith("0") and phone.startswith("254"):
        phone = "0" + phone[3:]
    return len(shown) == len(phone) and all(
        a in ("*", b) for a, b in zip(shown, phone, strict=True)
    )


def pending_candidates(line: StatementLine) -> list[Payment]:
    """The bar's paid-without-receipt payments this orphan line could be."""
    if line.match_state != "orphan" or line.payment_id is not None:
        return []
    around = line.completion_time
    return [
        p
        for p in db.session.scalars(receipt_pending_payments(line.bar_id, around, around))
        if could_be(line, p)
    ]


def adopt_pending_receipts(bar_id: int, record: StatementImport, user_id: int | None) -> int:
    """Give each receipt-pending payment of the statement's period the receipt of the one orphan
    line that can be it (and only when that line can be no other payment). Returns how many.
    Two queries when the period has such payments, one when it has none."""
    start, end = record.period_start, record.period_end
    if start is None or end is None:
        return 0
    pending = list(db.session.scalars(receipt_pending_payments(bar_id, start, end)))
    if not pending:
        return 0
    lines = db.session.scalars(
        select(StatementLine).where(
            StatementLine.bar_id == bar_id,
            StatementLine.match_state == "orphan",
            StatementLine.payment_id.is_(None),
            StatementLine.paid_in_cents.in_({p.amount * 100 for p in pending}),
            StatementLine.completion_time.between(start - PENDING_SLACK, end + PENDING_SLACK),
        )
    ).all()
    pairs = [(line, p) for line in lines for p in pending if could_be(line, p)]
    lines_per_payment, payments_per_line = {}, {}
    for line, p in pairs:
        lines_per_payment[p.id] = lines_per_payment.get(p.id, 0) + 1
        payments_per_line[line.id] = payments_per_line.get(line.id, 0) + 1
    adopted = 0
    for line, p in pairs:
        if lines_per_payment[p.id] == 1 and payments_per_line[line.id] == 1:
            adopted += _adopt(line, p, user_id, how="matched on import")
    return adopted


def claim_receipt(line: StatementLine, payment: Payment, user_id: int | None) -> None:
    """Someone says this orphan line is `payment` (paid, no receipt). Checks, adopts, commits."""
    if line.match_state != "orphan" or line.payment_id is not None:
        raise StatementError(
            N_("Receipt %(receipt)s is already a payment in PesaTab, so nothing changed."),
            receipt=line.receipt,
        )
    if not could_be(line, payment):
        raise StatementError(
            N_(
                "Receipt %(receipt)s cannot be payment %(id)s: it must be paid in PesaTab without "
                "a receipt, for the same amount, completed between the request and the moment it "
                "was paid."
            ),
            receipt=line.receipt,
            id=payment.id,
        )
    if not _adopt(line, payment, user_id, how="by hand"):
        db.session.rollback()
        raise StatementError(
            N_("Receipt %(receipt)s or payment %(id)s changed meanwhile; nothing changed."),
            receipt=line.receipt,
            id=payment.id,
        )
    db.session.commit()


def _adopt(line: StatementLine, payment: Payment, user_id: int | None, *, how: str) -> int:
    """Point the line at the payment and give the payment its receipt: both or neither."""
    try:
        with db.session.begin_nested():
            claimed = (
                db.session.execute(
                    update(StatementLine)
                    .where(StatementLine.id == line.id, StatementLine.payment_id.is_(None))
                    .values(payment_id=payment.id, match_state="matched")
                    .execution_options(synchronize_session=False)
                ).rowcount
                == 1
            )
            pending = Payment.flag_reason == FlagReason.RECEIPT_PENDING
            took = (
                claimed
                and db.session.execute(
                    update(Payment)
                    .where(
                        Payment.id == payment.id,
                        Payment.status == PaymentStatus.PAID,
                        Payment.receipt.is_(None),
                    )
                    .values(
                        receipt=line.receipt,
                        transaction_time=line.completion_time,
                        flagged=case((pending, False), else_=Payment.flagged),
                        flag_reason=case((pending, None), else_=Payment.flag_reason),
                    )
                    .execution_options(synchronize_session=False)
                ).rowcount
                == 1
            )
            if not took:
                raise _NotAdopted
            audit.record(
                "payment.receipt_from_statement",
                bar_id=payment.bar_id,
                user_id=user_id,
                payment_id=payment.id,
                line_id=line.id,
                receipt=line.receipt,
                how=how,
            )
    except (_NotAdopted, IntegrityError):  # claimed elsewhere, or the receipt is on another payment
        return 0
    db.session.expire(line)
    db.session.expire(payment)
    return 1


class _NotAdopted(Exception):
    pass

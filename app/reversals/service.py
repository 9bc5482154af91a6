"""Asking M-Pesa to give a paid payment's money back, once.

    reversal = service.ask(bar, payment, amount=None, reason="Paid twice", user_id=...)

The reversal row and its initiator request are committed together, before Daraja is asked: the
partial unique index on reversal.payment_id (app/models/reversals.py) lets only one reversal
hold a payment, so a double click, two workers, or the button and the CLI at once insert one
row and send one request; the loser gets `ReversalError` with the sentence of the one that holds
it. M-Pesa's result arrives at the request's own URL and is applied once by
app/payments/initiator.py, which calls app/reversals/result.py in the same transaction.

Partial: a tab paid more than its lines (two phones paid the same balance) gives back the part
it was overpaid by; that is recorded as a partial refund (`partial`). Otherwise a reversal is
the payment's whole amount.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import audit
from app.enums import REVERSAL_HOLDS, InitiatorKind, PaymentStatus, ReversalState
from app.extensions import db
from app.formats import kes, local_time
from app.i18n import _
from app.models import Bar, Payment, Reversal, Tab
from app.payments import initiator
from app.payments.daraja import client_for
from app.settings import initiator as initiator_credentials
from app.tabs.totals import totals

REASON_MIN, REASON_MAX = 3, 200


class ReversalError(ValueError):
    """A reversal that cannot be asked, with the sentence that says why (and the field)."""

    def __init__(self, message: str, field: str | None = None, *, held: bool = False) -> None:
        super().__init__(message)
        self.message, self.field = message, field
        self.held = held  # another reversal holds the payment (a conflict, not bad input)


def holder(payment_id: int) -> Reversal | None:
    """The reversal that holds the payment (requested, reversed or without an answer)."""
    return db.session.scalar(
        select(Reversal).where(
            Reversal.payment_id == payment_id, Reversal.state.in_(REVERSAL_HOLDS)
        )
    )


def history(payment_id: int) -> list[Reversal]:
    """Every reversal asked for the payment, newest first (refused ones included)."""
    return list(
        db.session.scalars(
            select(Reversal).where(Reversal.payment_id == payment_id).order_by(Reversal.id.desc())
        )
    )


def overpaid_by(payment: Payment) -> int:
    """How much more than its lines the payment's tab was paid (0 without a tab)."""
    if payment.tab_id is None:
        return 0
    tab = db.session.get(Tab, payment.tab_id)
    return max(0, -totals(tab).balance) if tab is not None else 0


def check(payment: Payment, amount: int | None, reason: str | None) -> tuple[int, bool, str]:
    """(amount, partial, reason) for a reversal of `payment`, or ReversalError."""
    if payment.status != PaymentStatus.PAID or not payment.receipt:
        raise ReversalError(_("Only a paid M-Pesa payment can be given back."))
    held = holder(payment.id)
    if held is not None:
        raise ReversalError(held_sentence(held), held=True)
    reason = " ".join((reason or "").split())
    if len(reason) < REASON_MIN:
        raise ReversalError(_("Say why the money goes back (a few words)."), field="reason")
    if len(reason) > REASON_MAX:
        raise ReversalError(_("Keep the reason under 200 characters."), field="reason")
    whole = payment.amount - payment.reversed_amount
    if amount is None or amount == whole:
        return whole, False, reason
    if amount < 1 or amount > whole:
        raise ReversalError(
            _("Give back between KES 1 and the payment's %(amount)s.", amount=kes(whole)),
            field="amount",
        )
    over = overpaid_by(payment)
    if amount > over:
        if over:
            message = _(
                "Part of a payment goes back only to undo an overpaid tab: this tab was overpaid "
                "by %(over)s. Give back %(over)s, or the whole %(amount)s.",
                over=kes(over),
                amount=kes(whole),
            )
        else:
            message = _(
                "This tab was not overpaid, so M-Pesa gives back the whole payment "
                "(%(amount)s), not a part of it.",
                amount=kes(whole),
            )
        raise ReversalError(message, field="amount")
    return amount, True, reason


def ask(
    bar: Bar, payment: Payment, *, amount: int | None, reason: str | None, user_id: int | None
) -> Reversal:
    """Record the reversal and send it to M-Pesa, once. Raises ReversalError."""
    amount, partial, reason = check(payment, amount, reason)
    opened = initiator_credentials.open_with_credentials(bar)
    if opened is None:
        raise ReversalError(
            _(
                "PesaTab cannot ask M-Pesa for a reversal: the owner has not added the "
                "initiator credentials on the M-Pesa settings page."
            )
        )
    creds, who = opened
    receipt = payment.receipt
    request = initiator.start(bar.id, InitiatorKind.REVERSAL, receipt, user_id, commit=False)
    reversal = Reversal(
        bar_id=bar.id,
        payment_id=payment.id,
        tab_id=payment.tab_id,
        request_id=request.id,
        receipt=receipt,
        amount=amount,
        partial=partial,
        reason=reason,
        state=ReversalState.REQUESTED,
        requested_by_id=user_id,
    )
    db.session.add(reversal)
    audit.record(
        "reversal.requested",
        bar_id=bar.id,
        user_id=user_id,
        payment_id=payment.id,
        amount=amount,
        partial=partial,
        reason=reason,
    )
    try:
        db.session.commit()
    except IntegrityError:  # another click, worker or the CLI holds the payment already
        db.session.rollback()
        held = holder(payment.id)
        message = held_sentence(held) if held else _busy()
        raise ReversalError(message, held=True) from None
    client = client_for(creds.environment)
    initiator.send(
        request,
        lambda result_url, timeout_url: client.reversal(
            creds,
            who,
            transaction_id=receipt,
            amount=amount,
            result_url=result_url,
            timeout_url=timeout_url,
            remarks=reason,
        ),
    )
    db.session.refresh(reversal)
    return reversal


def held_sentence(reversal: Reversal, timezone: str = "Africa/Nairobi") -> str:
    """Why a payment cannot be reversed again, as the owner reads it."""
    when = local_time(reversal.created_at, timezone)
    if reversal.state == ReversalState.REVERSED:
        return _(
            "This payment was already reversed (%(amount)s, asked %(when)s). It is never "
            "sent twice.",
            amount=kes(reversal.amount),
            when=when,
        )
    if reversal.state == ReversalState.NO_ANSWER:
        return _(
            "M-Pesa did not answer the reversal asked %(when)s. Check the M-Pesa statement "
            "before doing anything else: the money may already have gone back.",
            when=when,
        )
    return _(
        "A reversal of this payment was asked %(when)s and M-Pesa has not answered yet.",
        when=when,
    )


def _busy() -> str:
    """Another ask for the payment was being written at the same moment (and then refused)."""
    return _(
        "Someone else asked to reverse this payment at the same moment. Open the payment again "
        "to see where it stands before asking."
    )

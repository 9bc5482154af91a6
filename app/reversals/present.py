"""What the owner reads about a payment's reversals: the card on the payment's page (the form,
the one that holds the payment, the refused ones before it) and the sentence of each outcome."""

from __future__ import annotations

from dataclasses import dataclass

from app.enums import PaymentStatus, ReversalOutcome, ReversalState
from app.formats import kes, local_time
from app.i18n import _
from app.models import Payment, Reversal
from app.reversals import manual, service


@dataclass(frozen=True)
class Card:
    payment: Payment
    holding: Reversal | None  # the reversal that holds the payment, if any
    holding_sentence: str | None
    refused: list[tuple[Reversal, str]]  # earlier attempts M-Pesa said no to, newest first
    can_ask: bool
    overpaid_by: int  # what a partial refund may give back (0: only the whole payment)
    whole: int
    note: str | None = None  # the note of the newest reversal, when it was settled by hand

    @property
    def waiting(self) -> bool:
        return self.holding is not None and self.holding.state == ReversalState.REQUESTED

    @property
    def unanswered(self) -> bool:
        """M-Pesa never answered: the owner settles it from the statement (manual.py)."""
        return self.holding is not None and self.holding.state == ReversalState.NO_ANSWER


def card(payment: Payment, timezone: str = "Africa/Nairobi") -> Card:
    reversals = service.history(payment.id)
    holding = next((r for r in reversals if r.state != ReversalState.REFUSED), None)
    paid = payment.status == PaymentStatus.PAID and bool(payment.receipt)
    return Card(
        payment=payment,
        holding=holding,
        holding_sentence=sentence(holding, timezone) if holding is not None else None,
        refused=[(r, sentence(r, timezone)) for r in reversals if r.state == ReversalState.REFUSED],
        can_ask=paid and holding is None,
        overpaid_by=service.overpaid_by(payment) if paid and holding is None else 0,
        whole=payment.amount - payment.reversed_amount,
        note=manual.note_of(reversals[0]) if reversals else None,
    )


def sentence(reversal: Reversal, timezone: str = "Africa/Nairobi") -> str:
    """One sentence for where the reversal stands, in the words the owner acts on."""
    amount = kes(reversal.amount)
    when = local_time(reversal.settled_at or reversal.created_at, timezone)
    if reversal.state == ReversalState.REQUESTED:
        return _("Asked M-Pesa to give back %(amount)s; waiting for its answer.", amount=amount)
    if manual.by_hand(reversal):
        return by_hand_sentence(reversal, amount, when)
    if reversal.state == ReversalState.REVERSED:
        if reversal.tab_id is not None:
            return _(
                "%(amount)s went back to the customer's M-Pesa (%(when)s). The tab counts it "
                "as not paid: its balance grew by %(amount)s.",
                amount=amount,
                when=when,
            )
        return _(
            "%(amount)s went back to the customer's M-Pesa (%(when)s).", amount=amount, when=when
        )
    if reversal.state == ReversalState.NO_ANSWER:
        return service.held_sentence(reversal, timezone)
    return refusal_sentence(reversal.outcome, reversal.mpesa_desc, reversal.amount)


def by_hand_sentence(reversal: Reversal, amount: str, when: str) -> str:
    """A reversal M-Pesa never answered, settled by an owner from the M-Pesa statement."""
    if reversal.state == ReversalState.REFUSED:
        return _(
            "M-Pesa did not give back %(amount)s: the M-Pesa statement shows no reversal "
            "(settled by hand %(when)s). Ask again if the money should still go back.",
            amount=amount,
            when=when,
        )
    if reversal.tab_id is not None:
        return _(
            "The M-Pesa statement shows %(amount)s went back to the customer (settled by hand "
            "%(when)s). The tab counts it as not paid: its balance grew by %(amount)s.",
            amount=amount,
            when=when,
        )
    return _(
        "The M-Pesa statement shows %(amount)s went back to the customer (settled by hand "
        "%(when)s).",
        amount=amount,
        when=when,
    )


def refusal_sentence(outcome: str | None, words: str | None, amount: int) -> str:
    if outcome == ReversalOutcome.ALREADY_REVERSED:
        return _(
            "M-Pesa refused: this payment was already reversed, so nothing more went back. "
            "Check the M-Pesa statement for the reversal."
        )
    if outcome == ReversalOutcome.TOO_OLD:
        return _(
            "M-Pesa refused: the payment is too old to reverse. Give the money back another "
            "way (cash), and note it on the tab."
        )
    if outcome == ReversalOutcome.LOW_BALANCE:
        return _(
            "M-Pesa refused: the bar's M-Pesa account holds less than %(amount)s. Top it up, "
            "then ask again.",
            amount=kes(amount),
        )
    if outcome == ReversalOutcome.NOT_FOUND:
        return _("M-Pesa refused: it knows no such payment to the bar's shortcode.")
    if outcome == ReversalOutcome.BAD_CREDENTIALS:
        return _(
            "M-Pesa refused the initiator name or password. The owner must check them on "
            "the M-Pesa settings page, then ask again."
        )
    if words:
        return _("M-Pesa refused the reversal: “%(words)s”.", words=words)
    return _("M-Pesa refused the reversal.")

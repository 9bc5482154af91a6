"""The words PesaTab stores and compares: payment status, purpose, flag reason, and role.

The one place they are spelt. Every list of them (in flight, final, the API's statuses, the
labels people read, the metrics' label values) is derived here, so adding a status or a role is
one line in this file, and `tests/test_layout.py` fails on a status or role spelt as a bare
string anywhere else in app/. Each is a `StrEnum`: a member *is* its string, so it compares
equal to what the database, the JSON and the templates hold, and needs no conversion at the
edges (`Word` tells SQLAlchemy to bind and render a member as the string it is, even where no
column lends it a type). This module imports nothing of PesaTab's: everything, the Daraja
client included, may use it.

How a status may change is the state machine's business (app/payments/states.py), not this
file's.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import String


def N_(text: str) -> str:
    """Marks a label for the Kiswahili catalogue (app/translations/sw/parts/payments.po) without
    translating it here: this module imports nothing of PesaTab's, so app/formats.py translates
    the label where it is read (app.i18n.N_ says the same)."""
    return text


class Word(StrEnum):
    """A stored word. SQLAlchemy binds a member as a string (a literal in a partial index's
    predicate included) instead of failing to find a type for an unknown Python class."""

    __sa_type_engine__ = String()


class PaymentStatus(Word):
    CREATED = "created"  # written, the push not yet answered by Daraja
    SENT = "sent"  # Daraja took the push; the customer's phone is asked
    UNKNOWN = "unknown"  # may have reached Daraja, or M-Pesa said a failure that may still pay
    PAID = "paid"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"  # Daraja refused it: nothing reached the customer


# Still waiting for news: a callback, a query, or the expiry job.
IN_FLIGHT: tuple[PaymentStatus, ...] = (
    PaymentStatus.CREATED,
    PaymentStatus.SENT,
    PaymentStatus.UNKNOWN,
)
FINAL: tuple[PaymentStatus, ...] = tuple(s for s in PaymentStatus if s not in IN_FLIGHT)
# Reached the customer and ended without money (a late success can still turn these into paid).
SETTLED_UNPAID: tuple[PaymentStatus, ...] = (
    PaymentStatus.FAILED,
    PaymentStatus.CANCELLED,
    PaymentStatus.EXPIRED,
)
# Reached the customer and ended: what the settle-time metrics count.
SETTLED: tuple[PaymentStatus, ...] = (PaymentStatus.PAID, *SETTLED_UNPAID)

STATUS_LABELS: dict[PaymentStatus, str] = {
    PaymentStatus.CREATED: N_("Sending"),
    PaymentStatus.SENT: N_("Waiting"),
    PaymentStatus.UNKNOWN: N_("Checking"),
    PaymentStatus.PAID: N_("Paid"),
    PaymentStatus.FAILED: N_("Failed"),
    PaymentStatus.CANCELLED: N_("Cancelled"),
    PaymentStatus.EXPIRED: N_("Expired"),
    PaymentStatus.REJECTED: N_("Not sent"),
}


class Purpose(Word):
    """Why a payment exists."""

    TEST = "test"  # the owner's KES 1 proof of the credentials; never in the bar's takings
    TAB = "tab"  # asked from a tab page
    API = "api"  # asked by a point-of-sale system over the JSON API
    C2B = "c2b"  # paid without a push (a statement line attached to a tab)


PURPOSE_LABELS: dict[Purpose, str] = {
    Purpose.TAB: N_("Tab"),
    Purpose.TEST: N_("Test push"),
    Purpose.API: N_("Till system"),
    Purpose.C2B: N_("M-Pesa menu"),
}


class FlagReason(Word):
    """Why a payment waits for a person to look at it (reconciliation's break list)."""

    LATE_SUCCESS = "late_success"
    AMOUNT_MISMATCH = "amount_mismatch"
    AMOUNT_MISSING = "amount_missing"
    UNKNOWN_RESULT_CODE = "unknown_result_code"
    CHECKOUT_MISMATCH = "checkout_mismatch"
    RECEIPT_REUSED = "receipt_reused"
    SECOND_RECEIPT = "second_receipt"
    NEVER_CONFIRMED = "never_confirmed"
    # These two describe a state; the state itself is checked, so they end when it does.
    RECEIPT_PENDING = "receipt_pending"
    UNKNOWN_30M = "unknown_30m"


STATE_FLAGS: tuple[FlagReason, ...] = (FlagReason.RECEIPT_PENDING, FlagReason.UNKNOWN_30M)


class Role(Word):
    OWNER = "owner"
    MANAGER = "manager"
    CASHIER = "cashier"
    # PesaTab's own staff: no bar, never a bar's route, never a bar's credentials.
    OPERATOR = "operator"


# The roles inside a bar, most powerful first.
BAR_ROLES: tuple[Role, ...] = (Role.OWNER, Role.MANAGER, Role.CASHIER)
# Who may see the bar's money: payments, reconciliation, statements.
MONEY_ROLES: tuple[Role, ...] = (Role.OWNER, Role.MANAGER)
ROLE_LABELS: dict[Role, str] = {role: role.value.capitalize() for role in Role}


class InitiatorKind(Word):
    """What an initiator request (signed with the bar's initiator credentials) asks M-Pesa."""

    STATUS = "status"  # Transaction Status: is this receipt real, and whose money is it
    REVERSAL = "reversal"  # Reversal: give a paid payment's money back (app/reversals/)
    BALANCE = "balance"  # Account Balance: what the shortcode's accounts hold


class InitiatorState(Word):
    """Where an initiator request stands; its result arrives later, at its own URL."""

    WAITING = "waiting"  # Daraja took it (or may have): the result has not come yet
    ANSWERED = "answered"  # the result came and was applied (once)
    TIMED_OUT = "timed_out"  # M-Pesa's queue timed out (QueueTimeOutURL was called)
    REFUSED = "refused"  # Daraja refused the request itself: no result will come


class VerifyOutcome(Word):
    """What PesaTab told a cashier about an M-Pesa code (and the metrics' label values)."""

    GENUINE = "genuine"  # paid to this bar (from its own records or M-Pesa's answer)
    CLAIMED = "claimed"  # genuine, but already on a tab or counted: do not take it again
    NOT_FOUND = "not_found"  # M-Pesa knows no such payment: do not accept it
    NOT_COMPLETED = "not_completed"  # M-Pesa knows it, but it did not complete (reversed…)
    OTHER_BUSINESS = "other_business"  # real, but paid to another business
    NO_ANSWER = "no_answer"  # M-Pesa did not answer in time
    BAD_CREDENTIALS = "bad_credentials"  # 2001: the initiator name or password is wrong
    NO_INITIATOR = "no_initiator"  # not in PesaTab's records, and M-Pesa cannot be asked
    REFUSED = "refused"  # Daraja refused the question itself


class ReversalState(Word):
    """Where giving a paid payment's money back stands (app/reversals/)."""

    REQUESTED = "requested"  # asked of M-Pesa; its result has not come (reversal_requested)
    REVERSED = "reversed"  # M-Pesa gave the money back: the tab's balance reopened
    REFUSED = "refused"  # M-Pesa (or Daraja) said no: nothing moved; the sentence says why
    NO_ANSWER = "no_answer"  # M-Pesa's queue timed out: the money may or may not have moved


# Reversals that hold the payment: at most one per payment (a partial unique index), so a
# reversal is never sent twice. A refused one does not hold it: the owner may try again.
REVERSAL_HOLDS: tuple[ReversalState, ...] = (
    ReversalState.REQUESTED,
    ReversalState.REVERSED,
    ReversalState.NO_ANSWER,
)


class ReversalOutcome(Word):
    """What M-Pesa's answer to a reversal means (the InitiatorRequest's outcome)."""

    REVERSED = "reversed"
    ALREADY_REVERSED = "already_reversed"  # M-Pesa reversed it before (not by this request)
    TOO_OLD = "too_old"  # past the time M-Pesa allows a reversal in
    LOW_BALANCE = "low_balance"  # the business account holds less than the amount
    NOT_FOUND = "not_found"  # M-Pesa knows no such transaction for this shortcode
    BAD_CREDENTIALS = "bad_credentials"  # 2001: the initiator name or password is wrong
    REFUSED = "refused"  # any other refusal: M-Pesa's own words are shown
    NO_ANSWER = "no_answer"  # the queue timed out


class BalanceOutcome(Word):
    """What an Account Balance request came to (the InitiatorRequest's outcome)."""

    SHOWN = "shown"  # the accounts came back and are shown
    BAD_CREDENTIALS = "bad_credentials"  # 2001: the initiator name or password is wrong
    REFUSED = "refused"  # Daraja or M-Pesa refused the question: its words are shown
    NO_ANSWER = "no_answer"  # the queue timed out

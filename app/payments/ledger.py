"""Recording what M-Pesa says happened to a payment, from a callback or an STK query.

Each outcome is applied with one conditional update (states.move), so duplicates, replays and
racing workers change nothing after the first. The receipt is unique in the database too.

A failure that can still turn into money (1037, `may_still_pay` in the catalogue) is not final
when it first arrives: the payment is held in flight (`unknown`, "M-Pesa is still confirming")
and the recover job asks M-Pesa again CONFIRM_AFTER later. Only a query answer, for a payment
already held and pushed at least CONFIRM_AFTER ago, makes it final; a success meanwhile is paid
and flagged as a late success.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app import audit
from app.enums import FlagReason, PaymentStatus, Purpose
from app.extensions import db
from app.health import metrics
from app.models import Bar, MpesaCredential, Payment, utcnow
from app.mpesa import describe
from app.mpesa.catalogue import CONFIRMING, PENDING
from app.payments import states

CONFIRM_AFTER = timedelta(
    minutes=3
)  # a failure that may still pay is queried again this long after


@dataclass(frozen=True)
class Outcome:
    """What Daraja reported. Query outcomes carry no receipt, amount or phone."""

    code: str
    desc: str | None = None
    receipt: str | None = None
    amount: int | None = None
    phone: str | None = None
    transaction_time: datetime | None = None
    source: str = "callback"  # callback | query


def record(payment: Payment, outcome: Outcome, now: datetime | None = None) -> str:
    """Apply `outcome` to `payment`; returns the disposition: applied, late_success, duplicate,
    ignored (pending news or news about a settled payment), mismatch, or held (a failure that
    may still turn into money: the payment waits for a query, due at `next_query_at`). Does not
    commit. `now` is the recover job's clock (a callback's is the real one)."""
    info = describe(outcome.code)
    if info.status == PENDING:
        return "ignored"
    if info.status == PaymentStatus.PAID:
        return _record_paid(payment, outcome)
    now = now or utcnow()
    if info.may_still_pay and not _confirmed(payment, outcome, now):
        return _hold(payment, outcome, info, now)
    return _record_unpaid(payment, outcome, info)


def _held(payment: Payment, code: str) -> bool:
    return payment.status in states.IN_FLIGHT and payment.result_code == code


def _confirmed(payment: Payment, outcome: Outcome, now: datetime) -> bool:
    """A query still giving the failure a payment is held on, long enough after the push."""
    started = payment.sent_at or payment.created_at
    return (
        outcome.source == "query"
        and _held(payment, outcome.code)
        and now - started >= CONFIRM_AFTER
    )


def _hold(payment: Payment, outcome: Outcome, info, now: datetime) -> str:
    if _held(payment, info.code):
        if outcome.source != "query":
            return "duplicate"  # the same news again; the confirming query stays as planned
        # Asked early (e.g. "Check now"): ask again once the answer can be final.
        started = payment.sent_at or payment.created_at
        payment.next_query_at = max(now, started + CONFIRM_AFTER)
        return "held"
    values = {
        "result_code": info.code,
        "result_desc": outcome.desc,
        "message": CONFIRMING,
        "next_query_at": now + CONFIRM_AFTER,
    }
    if states.hold(payment, **values):
        return "held"
    if _held(payment, info.code):  # another worker held it meanwhile, on the same answer
        return _hold(payment, outcome, info, now)
    return "duplicate" if payment.result_code == info.code else "ignored"


def _record_paid(payment: Payment, outcome: Outcome) -> str:
    if outcome.source == "callback" and outcome.amount is None:
        # A callback's success must say how much (a query's never does, and is asked by us).
        if payment.status != PaymentStatus.PAID:
            flag(payment, FlagReason.AMOUNT_MISSING)
        return "mismatch"
    if outcome.amount is not None and outcome.amount != payment.amount:
        flag(payment, FlagReason.AMOUNT_MISMATCH)
        return "mismatch"
    if payment.status == PaymentStatus.PAID:
        if outcome.receipt and payment.receipt is None:
            payment.receipt = outcome.receipt  # the receipt a query could not give us
            if payment.flag_reason == FlagReason.RECEIPT_PENDING:
                payment.flagged, payment.flag_reason = False, None
            return "applied"
        return (
            "duplicate"
            if outcome.receipt in (None, payment.receipt)
            else _mismatch(payment, FlagReason.SECOND_RECEIPT)
        )
    values = {
        "result_code": "0",
        "result_desc": outcome.desc,
        "message": describe("0", outcome.receipt).sentence,
        "receipt": outcome.receipt,
        "paid_amount": outcome.amount if outcome.amount is not None else payment.amount,
        "paid_phone": outcome.phone,
        "transaction_time": outcome.transaction_time,
    }
    if outcome.receipt is None:
        values.update(flagged=True, flag_reason=FlagReason.RECEIPT_PENDING)
    # move() writes a receipt only if no other payment has it (checked inside its UPDATE, so
    # no SELECT when all is well); the unique index on receipt backs it up: a race ends in an
    # IntegrityError, the event stays pending, and its replay lands here and sees it taken.
    if not states.move(payment, PaymentStatus.PAID, **values):
        if outcome.receipt is not None and _receipt_taken(outcome.receipt, payment.id):
            return _mismatch(payment, FlagReason.RECEIPT_REUSED)
        return record(payment, outcome) if payment.status == PaymentStatus.PAID else "ignored"
    # move() decided "late" in SQL from the status the UPDATE saw, which may be newer than ours.
    was_settled = payment.flag_reason == FlagReason.LATE_SUCCESS
    metrics.count_settled(PaymentStatus.PAID, "0")
    _after_paid(payment)
    _audit(
        outcome,
        "payment.paid",
        bar_id=payment.bar_id,
        payment_id=payment.id,
        source=outcome.source,
        late=was_settled,
    )
    return "late_success" if was_settled else "applied"


def _record_unpaid(payment: Payment, outcome: Outcome, info) -> str:
    values = {"result_code": info.code, "result_desc": outcome.desc, "message": info.sentence}
    if not info.known:
        values.update(flagged=True, flag_reason=FlagReason.UNKNOWN_RESULT_CODE)
    if states.move(payment, info.status, **values):
        metrics.count_settled(info.status, info.code)
        _audit(
            outcome,
            f"payment.{info.status}",
            bar_id=payment.bar_id,
            payment_id=payment.id,
            code=info.code,
            source=outcome.source,
        )
        return "applied"
    return "duplicate" if payment.result_code == info.code else "ignored"


def _audit(outcome: Outcome, action: str, **fields) -> None:
    """A callback's outcome is Safaricom's doing, never a signed-in person's: its entry skips
    the current-user look-up (audit.record_system); a query's (a job, "Check now") names who."""
    if outcome.source == "callback":
        audit.record_system(action, **fields)
    else:
        audit.record(action, **fields)


def flag(payment: Payment, reason: str) -> None:
    payment.flagged = True
    payment.flag_reason = payment.flag_reason or reason


def _mismatch(payment: Payment, reason: str) -> str:
    flag(payment, reason)
    return "mismatch"


def _after_paid(payment: Payment) -> None:
    """A paid test push with the bar's current credentials verifies them."""
    if payment.purpose != Purpose.TEST:
        return
    cred = db.session.scalar(
        select(MpesaCredential).where(MpesaCredential.bar_id == payment.bar_id)
    )
    if cred is None or cred.revision != payment.credential_revision:
        return
    cred.verified_revision, cred.verified_at = cred.revision, utcnow()
    bar = db.session.get(Bar, cred.bar_id)
    if bar.setup_state in ("no_credentials", "credentials_saved"):
        bar.setup_state = "verified"
    audit.record("mpesa.verified", bar_id=payment.bar_id, payment_id=payment.id)


def _receipt_taken(receipt: str, payment_id: int) -> bool:
    other = select(Payment.id).where(Payment.receipt == receipt, Payment.id != payment_id)
    return db.session.scalar(other) is not None

"""Settling payments whose callback never came, by asking Daraja (STK query).

Work is claimed one payment at a time with a conditional update of `next_query_at`, so two
schedulers (two workers, two hosts) never query the same payment in the same tick, whether or
not they also hold the job lease.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update

from app import audit
from app.enums import FlagReason, PaymentStatus
from app.extensions import db
from app.health import metrics
from app.i18n import N_
from app.models import MpesaCredential, Payment, utcnow
from app.mpesa import Credentials, DarajaError
from app.mpesa import errors as e
from app.ops import alerts
from app.payments import ledger, states
from app.payments.daraja import client_for
from app.settings import vault

log = logging.getLogger(__name__)

FIRST_QUERY_AFTER = timedelta(seconds=60)
BACKOFF = (15, 30, 60, 120, 300)  # seconds between queries; then every 300
BUSY_BACKOFF = timedelta(seconds=120)  # after spike arrest / quota: slow down
FLAG_AFTER = timedelta(minutes=30)
CLAIM_FOR = timedelta(seconds=90)  # a claimed payment is not picked again before this
STUCK_CREATED_AFTER = timedelta(minutes=5)
# Stored in English as Payment.message (a job writes them), shown in the reader's language.
NOT_SENT = N_(
    "Not sent: PesaTab stopped before M-Pesa was asked. Nothing was charged; send it again."
)
NEVER_CONFIRMED = N_(
    "M-Pesa never confirmed this request. Check the M-Pesa statement before asking the customer "
    "again."
)


@dataclass
class RecoveryResult:
    queried: int = 0
    settled: int = 0
    still_waiting: int = 0
    flagged: int = 0
    slowed: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        return self.queried


def _due(now: datetime):
    """Payments waiting on M-Pesa that are due a query."""
    return and_(
        Payment.status.in_((PaymentStatus.SENT, PaymentStatus.UNKNOWN)),
        Payment.checkout_request_id.is_not(None),
        or_(
            Payment.next_query_at <= now,
            and_(Payment.next_query_at.is_(None), Payment.sent_at <= now - FIRST_QUERY_AFTER),
            and_(
                Payment.next_query_at.is_(None),
                Payment.sent_at.is_(None),
                Payment.created_at <= now - FIRST_QUERY_AFTER,
            ),
        ),
    )


def claim(payment_id: int, seen: datetime | None, now: datetime) -> bool:
    """Take one payment for this tick: exactly one of several racing workers sees True."""
    current = Payment.next_query_at.is_(None) if seen is None else Payment.next_query_at == seen
    statement = (
        update(Payment)
        .where(
            Payment.id == payment_id,
            current,
            Payment.status.in_((PaymentStatus.SENT, PaymentStatus.UNKNOWN)),
        )
        .values(next_query_at=now + CLAIM_FOR)
        .execution_options(synchronize_session=False)
    )
    claimed = db.session.execute(statement).rowcount == 1
    db.session.commit()
    return claimed


def recover_due(now: datetime | None = None, limit: int = 200) -> RecoveryResult:
    """The recover job: query every due payment once, settling what M-Pesa has decided."""
    now = now or utcnow()
    result = RecoveryResult()
    candidates = db.session.execute(
        select(Payment.id, Payment.next_query_at)
        .where(_due(now))
        .order_by(Payment.next_query_at, Payment.id)
        .limit(limit)
    ).all()
    credentials: dict[int, Credentials | None] = {}
    for payment_id, seen in candidates:
        if not claim(payment_id, seen, now):
            continue  # another worker has it this tick
        payment = db.session.get(Payment, payment_id)
        outcome = _query_one(payment, now, credentials, result)
        if outcome == "busy":
            result.slowed = True
            break
    return result


def check_payment(payment: Payment, now: datetime | None = None) -> str:
    """'Check now' for one payment (managers, owners): the same query, outside the schedule."""
    now = now or utcnow()
    if (
        payment.status not in (PaymentStatus.SENT, PaymentStatus.UNKNOWN)
        or payment.checkout_request_id is None
    ):
        return "not_checkable"
    if not claim(payment.id, payment.next_query_at, now):
        return "busy"
    return _query_one(db.session.get(Payment, payment.id), now, {}, RecoveryResult())


def _credentials(payment: Payment, cache: dict) -> Credentials | None:
    """The credentials the payment was pushed with: the bar's set in use, or, for the test push
    of a live bar's new set still waiting beside it, that pending set (Daraja knows the
    request only under the app and shortcode that sent it)."""
    key = (payment.bar_id, payment.credential_revision)
    if key not in cache:
        cred = db.session.scalar(
            select(MpesaCredential).where(MpesaCredential.bar_id == payment.bar_id)
        )
        try:
            if cred is None:
                cache[key] = None
            elif cred.has_pending and payment.credential_revision == cred.pending_revision:
                cache[key] = vault.open_pending(cred)[1]
            else:
                cache[key] = vault.open_credentials(cred)
        except vault.CredentialsUnavailable:
            cache[key] = None
    return cache[key]


def _query_one(payment: Payment, now: datetime, cache: dict, result: RecoveryResult) -> str:
    creds = _credentials(payment, cache)
    if creds is None:
        _schedule(payment, now, timedelta(minutes=5), count=False)
        return "no_credentials"
    result.queried += 1
    try:
        answer = client_for(creds.environment, max_retries=0).stk_query(
            creds, payment.checkout_request_id
        )
    except DarajaError as err:
        alerts.note_daraja_error(payment.bar_id, err)
        busy = err.kind in (e.SPIKE_ARREST, e.QUOTA)
        _schedule(payment, now, BUSY_BACKOFF if busy else None)
        result.errors.append(f"payment {payment.id}: {err.kind}")
        return "busy" if busy else "error"
    alerts.note_token_ok(payment.bar_id)
    payment.query_attempts += 1
    if answer.state == "finished":
        outcome = ledger.Outcome(code=answer.result_code, desc=answer.result_desc, source="query")
        disposition = ledger.record(payment, outcome, now=now)
        if disposition == "held":  # a failure that may still pay: asked again at next_query_at
            db.session.commit()
            result.still_waiting += 1
            return "held"
        if disposition != "ignored":
            payment.next_query_at = None
            result.settled += 1
            db.session.commit()
            return "settled"
    _schedule(payment, now, None, count=False)
    result.still_waiting += 1
    if _flag_if_long(payment, now):
        result.flagged += 1
    return "waiting"


def _schedule(
    payment: Payment, now: datetime, delay: timedelta | None, *, count: bool = True
) -> None:
    if count:
        payment.query_attempts += 1
    if delay is None:
        step = BACKOFF[min(max(payment.query_attempts - 1, 0), len(BACKOFF) - 1)]
        delay = timedelta(seconds=step)
    payment.next_query_at = now + delay
    db.session.commit()


def _flag_if_long(payment: Payment, now: datetime) -> bool:
    started = payment.sent_at or payment.created_at
    if now - started < FLAG_AFTER or payment.flag_reason == FlagReason.UNKNOWN_30M:
        return False
    ledger.flag(payment, FlagReason.UNKNOWN_30M)
    audit.record(
        "payment.flagged",
        bar_id=payment.bar_id,
        payment_id=payment.id,
        reason=FlagReason.UNKNOWN_30M,
    )
    db.session.commit()
    return True


def expire_stuck(now: datetime | None = None) -> int:
    """The expire job. Payments left in `created` (the process died before Daraja was called)
    settle as not sent; `unknown` ones without a CheckoutRequestID (a push that timed out and
    whose callback never came) settle as expired and are flagged for the statement check.
    A late success callback still moves either to paid (money wins)."""
    now = now or utcnow()
    lifetime = timedelta(seconds=current_app.config["PROMPT_LIFETIME_SECONDS"])
    settled = 0
    stuck = select(Payment).where(
        Payment.status == PaymentStatus.CREATED, Payment.created_at <= now - STUCK_CREATED_AFTER
    )
    for payment in db.session.scalars(stuck).all():
        if states.move(payment, PaymentStatus.EXPIRED, error_kind="not_sent", message=NOT_SENT):
            metrics.count_settled(PaymentStatus.EXPIRED, None)
            settled += 1
    silent = select(Payment).where(
        Payment.status == PaymentStatus.UNKNOWN,
        Payment.checkout_request_id.is_(None),
        Payment.created_at <= now - lifetime - STUCK_CREATED_AFTER,
    )
    for payment in db.session.scalars(silent).all():
        if states.move(
            payment,
            PaymentStatus.EXPIRED,
            message=NEVER_CONFIRMED,
            flagged=True,
            flag_reason=FlagReason.NEVER_CONFIRMED,
        ):
            metrics.count_settled(PaymentStatus.EXPIRED, None)
            settled += 1
    db.session.commit()
    return settled

"""Safaricom's STK callbacks: stored exactly as they arrive, then applied once.

Nothing is parsed before the body is committed as a CallbackEvent, so a crash, a bug or a
malformed body loses nothing. Applying reads items by name, checks the body against the
payment the URL's token names, and records the outcome through the ledger.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app import logging_setup, metrics
from app.extensions import db
from app.models import CallbackEvent, Payment, utcnow
from app.mpesa import MalformedCallback, StkCallback, parse_stk_callback
from app.payments import ledger

log = logging.getLogger(__name__)

# Addresses integrators report Safaricom calling from (not published officially): unknown
# sources are recorded on the event, and refused only in strict mode.
KNOWN_SOURCES = frozenset(
    {
        "196.201.214.200", "196.201.214.206", "196.201.213.114", "196.201.214.207",
        "196.201.214.208", "196.201.213.44", "196.201.212.127", "196.201.212.138",
        "196.201.212.129", "196.201.212.136", "196.201.212.74", "196.201.212.69",
    }
)
KEPT_HEADERS = ("Content-Type", "Content-Length", "Businessshortcode", "User-Agent", "X-Forwarded-For")
REPLAY_DELAYS = (30, 60, 120, 300, 900, 1800)  # seconds; after the last, the event is flagged


def store(token: str, body: bytes, *, source: str | None, headers: dict, size: int,
          truncated: bool = False, untrusted: bool = False) -> CallbackEvent:
    """Commit the body as received, before anything reads it."""
    event = CallbackEvent(
        # PostgreSQL text cannot hold NUL: keep it visible as U+FFFD, like undecodable bytes.
        token=token[:64].replace("\x00", "\ufffd"),
        raw_body=body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
        body_size=size,
        truncated=truncated,
        source_address=source,
        known_source=source in KNOWN_SOURCES,
        headers={k: headers[k] for k in KEPT_HEADERS if k in headers},
        disposition="untrusted_source" if untrusted else "pending",
    )
    db.session.add(event)
    db.session.commit()
    return event


def apply(event: CallbackEvent) -> str:
    """Apply a stored event once; returns its disposition. An error on our side leaves it
    pending with a later retry time for the replay job, and is never raised to the caller."""
    if event.disposition != "pending":
        return event.disposition  # already applied (or refused): a second run changes nothing
    with metrics.CALLBACK_APPLY_SECONDS.time():
        disposition = _apply_once(event)
    metrics.count_callback(disposition)
    return disposition


def _apply_once(event: CallbackEvent) -> str:
    event_id = event.id
    try:
        disposition, detail = _apply(event)
        event.disposition, event.processed_at = disposition, utcnow()
        event.detail = detail[:255] if detail else None
        event.attempts += 1
        db.session.commit()  # inside the try: a failed commit is an error on our side too
    except Exception:
        log.exception("callback event %s could not be applied; it will be retried", event_id)
        db.session.rollback()
        return _schedule_retry(db.session.get(CallbackEvent, event_id))
    return disposition


def _apply(event: CallbackEvent) -> tuple[str, str | None]:
    # Lock the payment before anything else touches it (the event's foreign key included), so
    # concurrent deliveries queue here instead of deadlocking on the paid UPDATE.
    query = select(Payment).where(Payment.callback_token == event.token).with_for_update()
    payment = db.session.scalar(query)
    if payment is None:
        return "unknown_token", "no payment has this callback token"
    event.payment_id, event.bar_id = payment.id, payment.bar_id
    logging_setup.bind(bar_id=payment.bar_id)
    if event.truncated:
        return "malformed", f"body larger than the limit ({event.body_size} bytes)"
    try:
        callback = parse_stk_callback(event.raw_body)
    except MalformedCallback as err:
        return "malformed", str(err.reason)[:255]
    problem = _check_matches(payment, callback)
    if problem:
        return "mismatch", problem
    return ledger.record(payment, _outcome(callback)), None


def _check_matches(payment: Payment, callback: StkCallback) -> str | None:
    if payment.checkout_request_id is None:
        if payment.status not in ("created", "unknown"):
            return "payment has no CheckoutRequestID to match"
        # The callback beat the push response (or the response was lost): adopt its ids.
        payment.checkout_request_id = callback.checkout_request_id
        payment.merchant_request_id = payment.merchant_request_id or callback.merchant_request_id
    elif callback.checkout_request_id != payment.checkout_request_id:
        return "CheckoutRequestID does not match this payment"
    if callback.succeeded and not callback.receipt:
        return "a paid result without a receipt number"
    if callback.succeeded and callback.amount is not None and callback.amount != payment.amount:
        ledger.flag(payment, "amount_mismatch")
        return f"amount {callback.amount} differs from the {payment.amount} asked"
    return None


def _outcome(callback: StkCallback) -> ledger.Outcome:
    return ledger.Outcome(
        code=callback.result_code,
        desc=callback.result_desc[:255] if callback.result_desc else None,
        receipt=callback.receipt,
        amount=callback.amount,
        phone=callback.phone if callback.phone and len(callback.phone) <= 12 else None,
        transaction_time=_naive_utc(callback.transaction_date),
        source="callback",
    )


def _naive_utc(value: datetime | None) -> datetime | None:
    """Daraja's EAT time as the naive UTC every column stores."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _schedule_retry(event: CallbackEvent | None) -> str:
    if event is None:
        return "error"
    event.attempts += 1
    if event.attempts > len(REPLAY_DELAYS):
        event.disposition, event.detail, event.next_attempt_at = "error", "gave up after retries", None
    else:
        event.next_attempt_at = utcnow() + timedelta(seconds=REPLAY_DELAYS[event.attempts - 1])
    db.session.commit()
    return event.disposition

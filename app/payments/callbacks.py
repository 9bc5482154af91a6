"""Safaricom's STK callbacks: stored exactly as they arrive, then applied once.

Nothing is parsed before the body is committed as a CallbackEvent, so a crash, a bug or a
malformed body loses nothing. Applying reads items by name, checks the body against the
payment the URL's token names, and records the outcome through the ledger: just after the
hook answers (the default, CALLBACK_APPLY=background, app/payments/applier.py: a burst in
batches, `apply_many`), or before it (inline).

This is the hottest path in the app (issue 8, benchmark 1), so it is written to a statement
budget (tests/test_callbacks_ingest.py): a paid callback is one autocommitted INSERT, then
SELECT ... FOR UPDATE, one UPDATE of the payment, the audit INSERT (Core, app/audit), one
UPDATE of the event, COMMIT (tests/test_callback_fast_path.py counts the round trips).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import make_transient_to_detached

from app import audit, logging_setup
from app.enums import FlagReason, PaymentStatus
from app.extensions import db
from app.health import metrics
from app.models import CallbackEvent, Payment, utcnow
from app.mpesa import MalformedCallback, StkCallback, parse_stk_callback
from app.payments import bodies, ledger

log = logging.getLogger(__name__)

# Addresses integrators report Safaricom calling from (not published officially): unknown
# sources are recorded on the event, and refused only in strict mode.
KNOWN_SOURCES = frozenset(
    {
        "196.201.214.200",
        "196.201.214.206",
        "196.201.213.114",
        "196.201.214.207",
        "196.201.214.208",
        "196.201.213.44",
        "196.201.212.127",
        "196.201.212.138",
        "196.201.212.129",
        "196.201.212.136",
        "196.201.212.74",
        "196.201.212.69",
    }
)
KEPT_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Businessshortcode",
    "User-Agent",
    "X-Forwarded-For",
)
REPLAY_DELAYS = (30, 60, 120, 300, 900, 1800)  # seconds; after the last, the event is flagged


# Statements built once (bound parameters): each callback skips building them and their cache keys.
_event = CallbackEvent.__table__
_INSERT_EVENT = insert(_event).returning(_event.c.id)
_LOCK_PAYMENT = (
    select(Payment)
    .where(Payment.callback_token == bindparam("token"))
    .with_for_update()
    # A locking read must see the row as it is now, even if this session loaded it before.
    .execution_options(populate_existing=True)
)
# A batch's payments, locked in one statement in callback-token order (as two workers' batches
# must lock them, so they cannot deadlock on each other).
_LOCK_PAYMENTS = (
    select(Payment)
    .where(Payment.callback_token.in_(bindparam("tokens", expanding=True)))
    .order_by(Payment.callback_token)
    .with_for_update()
    .execution_options(populate_existing=True)
)
# Only a pending event is finished: if another worker (the replay job, a second delivery of the
# same event) finished it first, this one's work is rolled back and theirs stands.
_FINISH_EVENT = (
    update(_event)
    .where(_event.c.id == bindparam("event_id"), _event.c.disposition == "pending")
    .values(
        disposition=bindparam("disposition"),
        processed_at=bindparam("processed_at"),
        detail=bindparam("detail"),
        payment_id=bindparam("payment_id"),
        bar_id=bindparam("bar_id"),
        attempts=_event.c.attempts + 1,
    )
)


def store(
    token: str,
    body: bytes,
    *,
    source: str | None,
    headers: dict,
    size: int,
    truncated: bool = False,
    untrusted: bool = False,
) -> CallbackEvent:
    """Commit the body as received, before anything reads it.

    Returns the stored event detached from the session, with every column loaded: applying
    it reads nothing back, and it may be handed to another thread (app/payments/applier.py)."""
    values = {
        # PostgreSQL text cannot hold NUL: keep it visible as U+FFFD, like undecodable bytes.
        "token": token[:64].replace("\x00", "\ufffd"),
        "raw_body": bodies.as_stored(body),
        "body_size": size,
        "truncated": truncated,
        "source_address": source,
        "known_source": source in KNOWN_SOURCES,
        "headers": {k: headers[k] for k in KEPT_HEADERS if k in headers},
        "disposition": "untrusted_source" if untrusted else "pending",
        "payment_id": None,
        "bar_id": None,
        "detail": None,
        "attempts": 0,
        "next_attempt_at": None,
        "received_at": utcnow(),
        "processed_at": None,
    }
    event = CallbackEvent(id=_insert_durably(values), **values)
    make_transient_to_detached(event)
    return event


def _insert_durably(values: dict) -> int:
    """The event's INSERT as one autocommitted statement: durable when it returns, as the
    INSERT and COMMIT it replaces were, without their BEGIN and COMMIT round trips. On a
    connection of its own (the session's transaction, if one is open, is not touched); one
    that turns out dead (a server restart: SQLAlchemy then replaces the pool's connections) is
    retried once on a fresh one, so the body is not lost to a stale connection."""
    for attempt in (1, 2):
        try:
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                return conn.execute(_INSERT_EVENT, values).scalar_one()
        except DBAPIError as err:
            if attempt == 2 or not err.connection_invalidated:
                raise
    raise AssertionError("unreachable")


def apply(event: CallbackEvent) -> str:
    """Apply a stored event once; returns its disposition. An error on our side leaves it
    pending with a later retry time for the replay job, and is never raised to the caller."""
    if event.disposition != "pending":
        return event.disposition  # already applied (or refused): a second run changes nothing
    with metrics.CALLBACK_APPLY_SECONDS.time():
        disposition = _apply_once(event)
    metrics.count_callback(disposition)
    return disposition


def apply_many(events: list[CallbackEvent]) -> list[str]:
    """Apply several stored events in one transaction (one commit instead of one each); their
    dispositions, in order. If anything goes wrong (an error, an event finished meanwhile by
    someone else) it is all rolled back and each event is applied on its own with `apply`.

    Payments are locked in callback-token order whatever order the events came in (the events
    of one payment keep theirs), so two workers' batches cannot deadlock on each other; one
    SELECT locks them all (`_apply_batch`)."""
    pending = sorted((e for e in events if e.disposition == "pending"), key=lambda e: e.token)
    if len(pending) < 2:
        return [apply(e) for e in events]
    started = time.perf_counter()
    try:
        outcomes = _apply_batch(pending)
        db.session.commit()
    except Exception as err:
        db.session.rollback()
        if not isinstance(err, _FinishedElsewhere):
            log.warning(
                "a batch of %d callback events failed (%s); applying them one by one",
                len(pending),
                type(err).__name__,
            )
        return [apply(e) for e in events]
    share = (time.perf_counter() - started) / len(pending)
    for disposition in outcomes.values():
        metrics.CALLBACK_APPLY_SECONDS.observe(share)
        metrics.count_callback(disposition)
    return [outcomes.get(e.id, e.disposition) for e in events]


def _apply_batch(pending: list[CallbackEvent]) -> dict[int, str]:
    """Each event as `_apply_and_finish` would, with the batch's round trips shared: one SELECT
    locks every payment, the audit entries go in one INSERT and the events are finished by one
    executemany (one pipelined round trip on psycopg), instead of one of each per event."""
    tokens = sorted({event.token for event in pending})
    locked = {p.callback_token: p for p in db.session.scalars(_LOCK_PAYMENTS, {"tokens": tokens})}
    outcomes, finishes = {}, []
    with audit.batched():
        for event in pending:
            disposition, detail, payment = _apply(event, locked)
            outcomes[event.id] = disposition
            finishes.append(_finish_values(event, disposition, detail, payment))
    # Every id is distinct, so all were still pending exactly when the count is the batch's.
    if db.session.execute(_FINISH_EVENT, finishes).rowcount != len(finishes):
        raise _FinishedElsewhere([event.id for event in pending])
    return outcomes


class _FinishedElsewhere(Exception):
    """The event was no longer pending when this transaction came to finish it."""


def _apply_once(event: CallbackEvent) -> str:
    """One transaction: lock the payment, record the outcome, finish the event, commit."""
    event_id = event.id
    try:
        disposition = _apply_and_finish(event)
        db.session.commit()  # inside the try: a failed commit is an error on our side too
    except _FinishedElsewhere:  # e.g. by the replay job, while this one waited for the lock
        db.session.rollback()
        return (
            db.session.scalar(select(CallbackEvent.disposition).where(CallbackEvent.id == event_id))
            or "error"
        )
    except Exception:
        log.exception("callback event %s could not be applied; it will be retried", event_id)
        db.session.rollback()
        return _schedule_retry(db.session.get(CallbackEvent, event_id))
    return disposition


def _apply_and_finish(event: CallbackEvent) -> str:
    disposition, detail, payment = _apply(event)
    # The event is written once, with its outcome, after the payment's row is locked and
    # written (its foreign key included), and only if it is still pending: if someone else
    # finished it meanwhile, theirs stands and this transaction is rolled back.
    values = _finish_values(event, disposition, detail, payment)
    if db.session.execute(_FINISH_EVENT, values).rowcount != 1:
        raise _FinishedElsewhere(event.id)
    return disposition


def _finish_values(
    event: CallbackEvent, disposition: str, detail: str | None, payment: Payment | None
) -> dict:
    return {
        "event_id": event.id,
        "disposition": disposition,
        "processed_at": utcnow(),
        "detail": detail[:255] if detail else None,
        "payment_id": payment.id if payment is not None else None,
        "bar_id": payment.bar_id if payment is not None else None,
    }


def _apply(
    event: CallbackEvent, locked: dict[str, Payment] | None = None
) -> tuple[str, str | None, Payment | None]:
    """(disposition, detail, the payment the token names); the event itself is not touched.
    `locked`: the payments a batch has locked already, by callback token."""
    # Lock the payment before anything else touches it (the event's foreign key included), so
    # concurrent deliveries queue here instead of deadlocking on the paid UPDATE.
    if locked is None:
        payment = db.session.scalar(_LOCK_PAYMENT, {"token": event.token})
    else:
        payment = locked.get(event.token)
    if payment is None:
        return "unknown_token", "no payment has this callback token", None
    logging_setup.bind(bar_id=payment.bar_id)
    if event.truncated:
        return "malformed", f"body larger than the limit ({event.body_size} bytes)", payment
    try:
        callback = parse_stk_callback(event.raw_body)
    except MalformedCallback as err:
        return "malformed", str(err.reason)[:255], payment
    problem = _check_matches(payment, callback)
    if problem:
        return "mismatch", problem, payment
    disposition = ledger.record(payment, _outcome(callback))
    if disposition == "held":  # a failure that may still turn into money: not final yet
        return "applied", "held until an STK query confirms it", payment
    return disposition, None, payment


def _check_matches(payment: Payment, callback: StkCallback) -> str | None:
    if payment.checkout_request_id is None:
        if payment.status not in (PaymentStatus.CREATED, PaymentStatus.UNKNOWN):
            return "payment has no CheckoutRequestID to match"
        # The callback beat the push response (or the response was lost): adopt its ids.
        payment.checkout_request_id = callback.checkout_request_id
        payment.merchant_request_id = payment.merchant_request_id or callback.merchant_request_id
    elif callback.checkout_request_id != payment.checkout_request_id:
        return "CheckoutRequestID does not match this payment"
    if callback.succeeded and not callback.receipt:
        return "a paid result without a receipt number"
    if callback.succeeded and callback.amount is None:
        # Not money until M-Pesa confirms it: the recover job's STK query (the payment stays in
        # flight) or the statement. A payment already paid is left as it is.
        if payment.status != PaymentStatus.PAID:
            ledger.flag(payment, FlagReason.AMOUNT_MISSING)
        return "a paid result without the amount; not credited until M-Pesa confirms it"
    if callback.succeeded and callback.amount is not None and callback.amount != payment.amount:
        ledger.flag(payment, FlagReason.AMOUNT_MISMATCH)
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
        event.disposition, event.detail, event.next_attempt_at = (
            "error",
            "gave up after retries",
            None,
        )
    else:
        event.next_attempt_at = utcnow() + timedelta(seconds=REPLAY_DELAYS[event.attempts - 1])
    db.session.commit()
    return event.disposition

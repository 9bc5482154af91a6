"""Payments asked for by point-of-sale systems, with Idempotency-Key replays.

One request, one push, even when a POS retries or sends twice at once:

- A request first takes a row lock on its API key (an UPDATE of last_used_at), held until the
  new payment row is committed (`start_push` commits it before calling Daraja). A concurrent
  request with the same key waits, then finds that payment by its Idempotency-Key.
- Keys are unique per bar in the database too: if another key of the same bar races with the
  same Idempotency-Key, the insert fails and the winner is returned.
- Same key, same normalised body: the same payment again (200). Same key, other body: 409.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.api.errors import ApiError, invalid
from app.api.validation import ListFilters, PaymentInput
from app.enums import PaymentStatus, Purpose
from app.extensions import db
from app.models import ApiKey, Bar, Payment, Tab, utcnow
from app.payments.push import PushRefused, PushRequest, PushResult, send_push
from app.payments.states import IN_FLIGHT
from app.tabs import totals as tab_totals

WAITING = "Waiting for the customer to enter their M-Pesa PIN…"
DECLINED = "M-Pesa declined the payment."


def create_payment(
    key: ApiKey, data: PaymentInput, idempotency_key: str | None
) -> tuple[Payment, bool]:
    """Send an STK push for `data`, or return the payment this Idempotency-Key already made.
    Returns (payment, created). Raises ApiError (404 tab, 409, 422, 503)."""
    _hold(key)
    try:
        payment, created = _create(key, data, idempotency_key)
    except BaseException:
        db.session.rollback()  # lets the next request on this key go
        raise
    db.session.commit()
    return payment, created


def _hold(key: ApiKey) -> None:
    # A row lock (a write lock on SQLite): this key's payment requests go one at a time until
    # each one's payment row is committed.
    db.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=utcnow()))


def _create(key: ApiKey, data: PaymentInput, idempotency_key: str | None) -> tuple[Payment, bool]:
    existing = _by_idempotency_key(key.bar_id, idempotency_key) if idempotency_key else None
    if existing is not None:
        return _replay(existing, data), False
    bar = db.session.get(Bar, key.bar_id)
    tab = _open_tab(bar, data) if data.tab_id is not None else None
    result = _send_push(
        bar,
        PushRequest(
            phone=data.phone,
            amount=data.amount,
            purpose=Purpose.API,
            account_reference=data.reference,
            description=data.description,
            tab=tab,
            api_key_id=key.id,
            idempotency_key=idempotency_key,
            idempotency_fingerprint=data.fingerprint() if idempotency_key else None,
        ),
    )
    payment = result.payment
    if result.created:
        return payment, True
    # start_push handed back a push already waiting on this phone (and tab) instead of
    # prompting the customer twice. It answers this request only if it carries this request's
    # Idempotency-Key: another key of the bar raced this one with the same key.
    if idempotency_key is None or payment.idempotency_key != idempotency_key:
        raise _in_flight(payment)
    return _replay(payment, data), False


def _send_push(bar: Bar, request: PushRequest) -> PushResult:
    try:
        return send_push(bar, request)
    except PushRefused as err:
        raise ApiError(
            503 if err.code == "globally_disabled" else 409, err.code, err.message
        ) from None
    except IntegrityError:
        # The bar's unique index on the Idempotency-Key: another key of the bar got there first.
        db.session.rollback()
        winner = (
            _by_idempotency_key(bar.id, request.idempotency_key)
            if request.idempotency_key
            else None
        )
        if winner is None:
            raise
        return PushResult(winner, created=False)


def _by_idempotency_key(bar_id: int, idempotency_key: str) -> Payment | None:
    return db.session.scalar(
        select(Payment).where(Payment.bar_id == bar_id, Payment.idempotency_key == idempotency_key)
    )


def _replay(payment: Payment, data: PaymentInput) -> Payment:
    stored = payment.idempotency_fingerprint or PaymentInput.of(payment).fingerprint()
    if stored != data.fingerprint():
        raise ApiError(
            409,
            "idempotency_key_reused",
            f"This Idempotency-Key was already used for payment {payment.id} with a "
            "different body. Use a new key for a new payment.",
            payment_id=payment.id,
        )
    return payment


def _in_flight(payment: Payment) -> ApiError:
    return ApiError(
        409,
        "push_in_flight",
        f"A payment request to this phone is already waiting for the customer "
        f"(payment {payment.id}). Wait for it to finish, then ask again.",
        payment_id=payment.id,
    )


def _open_tab(bar: Bar, data: PaymentInput) -> Tab:
    tab = db.session.scalar(select(Tab).where(Tab.id == data.tab_id, Tab.bar_id == bar.id))
    if tab is None:
        raise ApiError(404, "not_found", f"No tab {data.tab_id} in this bar.", field="tab_id")
    if tab.status != "open":
        state = "closed" if tab.status == "settled" else "void"
        raise invalid("tab_id", f"Tab {tab.id} is {state}; ask for payment on an open tab.")
    current = tab_totals.totals(tab)
    if current.balance <= 0:
        raise invalid("amount", f"Nothing is owed on tab {tab.id}.")
    if data.amount > current.requestable:
        waiting = (
            f" (KES {current.in_flight:,} is already being asked on another phone)"
            if current.in_flight
            else ""
        )
        raise invalid(
            "amount",
            f"Only KES {current.requestable:,} is left to ask for on tab {tab.id}{waiting}.",
        )
    return tab


def find_payment(bar_id: int, payment_id: int) -> Payment:
    payment = db.session.scalar(
        select(Payment).where(Payment.id == payment_id, Payment.bar_id == bar_id)
    )
    if payment is None:
        raise ApiError(404, "not_found", f"No payment {payment_id} in this bar.")
    return payment


def list_payments(bar_id: int, filters: ListFilters) -> list[Payment]:
    """The bar's payments, newest first, at most `filters.limit`."""
    query = select(Payment).where(Payment.bar_id == bar_id)
    if filters.status is not None:
        query = query.where(Payment.status == filters.status)
    if filters.since is not None:
        query = query.where(Payment.created_at >= filters.since)
    query = query.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(filters.limit)
    return list(db.session.scalars(query))


def payment_json(payment: Payment) -> dict:
    return {
        "id": payment.id,
        "status": payment.status,
        "amount": payment.amount,
        "phone": payment.phone,
        "reference": payment.account_reference,
        "description": payment.description,
        "tab_id": payment.tab_id,
        "receipt": payment.receipt,
        "result_code": payment.result_code,
        "message": _sentence(payment),
        "created_at": _utc(payment.created_at),
        "settled_at": _utc(payment.settled_at),
        "flagged": bool(payment.flagged),
    }


def _sentence(payment: Payment) -> str:
    """What the cashier's screen says about the payment (payments/_status.html)."""
    if payment.status in IN_FLIGHT:
        return (
            payment.message
            if payment.status == PaymentStatus.UNKNOWN and payment.message
            else WAITING
        )
    if payment.message:
        return payment.message
    return "Paid." if payment.status == PaymentStatus.PAID else DECLINED


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.replace(microsecond=0).isoformat() + "Z"

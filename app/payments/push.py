"""Starting an STK push: the row is committed before Daraja is called, and nothing is re-sent."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.enums import FlagReason, PaymentStatus, Purpose
from app.extensions import db
from app.health import metrics
from app.i18n import _
from app.models import Bar, Payment, Tab
from app.mpesa import (
    Credentials,
    DarajaError,
    DarajaOutcomeUnknown,
    InvalidRequest,
    StkPushAccepted,
    describe_error,
)
from app.ops import alerts, system
from app.payments import states
from app.payments.daraja import client_for
from app.settings import vault
from app.tabs.totals import totals


class PushRefused(Exception):
    """Nothing was sent. The message is a sentence for the person who asked."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class PushRequest:
    phone: str  # already normalised at the edge (normalize_phone)
    amount: int
    purpose: str  # test | tab | api
    account_reference: str
    description: str
    tab: Tab | None = None
    initiated_by_id: int | None = None
    api_key_id: int | None = None
    idempotency_key: str | None = None
    idempotency_fingerprint: str | None = None
    # The owner's test push of a live bar's new credentials, not yet in use (app/settings/vault.py
    # keeps them pending). Every other push uses the bar's active credentials.
    pending_credentials: bool = False


def new_callback_token() -> str:
    # Hex only: it can never spell the words Daraja refuses in a CallBackURL (sql, exec, cmd...).
    return secrets.token_hex(20)


def callback_url(payment: Payment) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}/hooks/stk/{payment.callback_token}"


def check_allowed(bar: Bar, purpose: str) -> None:
    """Raise PushRefused when this bar may not send this kind of push right now."""
    if system.pushes_disabled():
        raise PushRefused(
            _(
                "M-Pesa requests are paused by PesaTab's operators. Take payment another way "
                "for now; payments already sent still count."
            ),
            code="globally_disabled",
        )
    if not bar.mpesa_enabled:
        raise PushRefused(
            _("M-Pesa requests are switched off for this bar. Ask the owner to switch them on."),
            code="bar_disabled",
        )
    if purpose != Purpose.TEST and bar.setup_state != "live":
        raise PushRefused(
            _(
                "This bar is not live on M-Pesa yet. The owner must finish the M-Pesa set-up "
                "(a paid test push, then Go live)."
            ),
            code="not_live",
        )


def _inflight_key(bar: Bar, request: PushRequest) -> str:
    scope = f"tab{request.tab.id}" if request.tab is not None else request.purpose
    return f"{bar.id}:{scope}:{request.phone}"


def _in_flight(key: str) -> Payment | None:
    return db.session.scalar(select(Payment).where(Payment.inflight_key == key))


@dataclass(frozen=True)
class PushResult:
    payment: Payment
    created: bool  # False: a payment already in flight for this tab (or purpose) and phone


def start_push(bar: Bar, request: PushRequest) -> Payment:
    """Send an STK push for `request` and return its payment (see send_push)."""
    return send_push(bar, request).payment


def send_push(bar: Bar, request: PushRequest) -> PushResult:
    """Send an STK push for `request`. The payment may be one already in flight for the same tab
    and phone (the customer is never prompted twice): `created` says which. Raises PushRefused."""
    try:
        revision, creds = _sendable_credentials(bar, request)
    except PushRefused as err:
        metrics.count_push("refused", err.code)
        raise
    key = _inflight_key(bar, request)
    existing = _in_flight(key)
    if existing is not None:
        return PushResult(existing, created=False)
    payment, created = _create(bar, request, key, revision)
    if not created:
        return PushResult(payment, created=False)  # a concurrent tap got there first
    try:
        accepted = client_for(creds.environment).stk_push(
            creds,
            phone=request.phone,
            amount=request.amount,
            account_reference=request.account_reference,
            description=request.description,
            callback_url=callback_url(payment),
        )
    except DarajaOutcomeUnknown as err:
        states.move(
            payment, PaymentStatus.UNKNOWN, error_kind=err.kind, message=describe_error(err)
        )
        outcome, kind = PaymentStatus.UNKNOWN, err.kind
    except (DarajaError, InvalidRequest) as err:
        kind = getattr(err, "kind", "invalid_input")
        states.move(payment, PaymentStatus.REJECTED, error_kind=kind, message=describe_error(err))
        outcome = PaymentStatus.REJECTED
        if not request.pending_credentials:  # the bar's token record is about the keys in use
            alerts.note_daraja_error(bar.id, err)
    else:
        _record_acceptance(payment, accepted)
        if not request.pending_credentials:
            alerts.note_token_ok(bar.id)
        outcome, kind = PaymentStatus.SENT, None
    db.session.commit()
    metrics.count_push(outcome, kind)
    return PushResult(payment, created=True)


def _sendable_credentials(bar: Bar, request: PushRequest) -> tuple[int, Credentials]:
    """The revision and opened credentials to push with, if the bar may push now; else
    PushRefused."""
    check_allowed(bar, request.purpose)
    cred = vault.credential_for(bar)
    if cred is None:
        raise PushRefused(_("M-Pesa is not set up for this bar yet."), code="no_credentials")
    try:
        if request.pending_credentials:
            return vault.open_pending(cred)
        return cred.revision, vault.open_credentials(cred)
    except vault.CredentialsUnavailable as err:
        raise PushRefused(str(err), code="credentials_unreadable") from None


def _create(bar: Bar, request: PushRequest, key: str, revision: int) -> tuple[Payment, bool]:
    payment = states.start(
        bar_id=bar.id,
        tab_id=request.tab.id if request.tab is not None else None,
        purpose=request.purpose,
        phone=request.phone,
        amount=request.amount,
        account_reference=request.account_reference,
        description=request.description,
        callback_token=new_callback_token(),
        inflight_key=key,
        credential_revision=revision,
        initiated_by_id=request.initiated_by_id,
        api_key_id=request.api_key_id,
        idempotency_key=request.idempotency_key,
        idempotency_fingerprint=request.idempotency_fingerprint,
    )
    if request.tab is not None:
        _hold_tab(request)
    db.session.add(payment)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = _in_flight(key)
        if existing is None:
            raise
        return existing, False
    return payment, True


def _hold_tab(request: PushRequest) -> None:
    """Lock the tab's row until the payment is committed and ask again what is left: two phones
    asked for one balance at the same instant cannot both be asked for all of it."""
    db.session.execute(select(Tab.id).where(Tab.id == request.tab.id).with_for_update())
    left = totals(request.tab).requestable
    if request.amount > left:
        db.session.rollback()
        metrics.count_push("refused", "over_asked")
        raise PushRefused(
            _(
                "Only KES %(left)s is left to ask for: another phone is being asked for the rest. "
                "Wait for that payment, or ask for less.",
                left=f"{left:,}",
            ),
            code="over_asked",
        )


def _record_acceptance(payment: Payment, accepted: StkPushAccepted) -> None:
    ids = {
        "merchant_request_id": accepted.merchant_request_id,
        "checkout_request_id": accepted.checkout_request_id,
    }
    if states.move(payment, PaymentStatus.SENT, **ids):
        return
    # The callback got here first and settled the payment (it adopted the checkout id).
    if payment.checkout_request_id is None:
        payment.checkout_request_id = accepted.checkout_request_id
    if payment.merchant_request_id is None:
        payment.merchant_request_id = accepted.merchant_request_id
    if payment.checkout_request_id != accepted.checkout_request_id:
        payment.flagged, payment.flag_reason = True, FlagReason.CHECKOUT_MISMATCH

"""Money paid from the M-Pesa menu (C2B confirmations): stored first, applied exactly once.

A bar's confirmation URL carries its secret (`/hooks/c2b/<secret>/confirmation`): the secret
says which bar the money is for, and the confirmation's BusinessShortCode must be that bar's
(else it is kept, marked `foreign_shortcode`, and never applied). The TransID is the receipt:
the money becomes one paid Payment (purpose c2b, `states.paid_without_push`) whose receipt's
unique index refuses a second one, so a confirmation repeated, replayed or raced counts once.
An STK payment to a PayBill may also arrive as a confirmation: its receipt is already a
payment's, so the confirmation is `linked` to it and counts nothing. A PayBill account that is
an open tab's code (TAB42, any case, spaces ignored) lands on that tab; any other payment waits
to be claimed. Whatever arrives is answered with Daraja's acknowledgement, never a 5xx.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app import audit
from app.enums import PaymentStatus, Purpose
from app.extensions import db
from app.i18n import _
from app.models import Bar, C2BConfirmation, C2BRegistration, MpesaCredential, Payment, Tab, utcnow
from app.mpesa import DarajaError, InvalidRequest
from app.mpesa.timestamps import parse_daraja_timestamp
from app.payments import states
from app.payments.daraja import client_for
from app.settings import vault

ACK = {"ResultCode": 0, "ResultDesc": "Success"}
ACCEPT = {"ResultCode": "0", "ResultDesc": "Accepted"}
TAB_CODE = re.compile(r"TAB0*(\d{1,9})")
RECEIPT = re.compile(r"[A-Z0-9]{10}")
WHOLE_KES = re.compile(r"(\d{1,7})(?:\.0{1,2})?")


def registration_of(bar: Bar) -> C2BRegistration | None:
    """The bar's C2B URL record, if it has one (read only)."""
    return db.session.scalar(select(C2BRegistration).where(C2BRegistration.bar_id == bar.id))


def registration_for(bar: Bar) -> C2BRegistration:
    """The bar's C2B URL secret, made the first time it is asked for. Commits."""
    found = db.session.scalar(select(C2BRegistration).where(C2BRegistration.bar_id == bar.id))
    if found is None:
        found = C2BRegistration(bar_id=bar.id, url_secret=secrets.token_urlsafe(24))
        db.session.add(found)
        db.session.commit()
    return found


def store(secret: str, body: bytes, *, source: str | None, size: int, too_large: bool):
    """Commit the confirmation as it arrived (and the bar its secret names, if any) before
    anything reads it."""
    bar_id = db.session.scalar(
        select(C2BRegistration.bar_id).where(C2BRegistration.url_secret == secret)
    )
    record = C2BConfirmation(
        bar_id=bar_id,
        raw_body=body.decode("utf-8", errors="replace"),
        body_size=size,
        source_address=(source or "")[:64] or None,
        disposition="too_large" if too_large else ("pending" if bar_id else "unknown_url"),
    )
    db.session.add(record)
    db.session.commit()
    return record


def _fields(record: C2BConfirmation) -> dict | None:
    try:
        body = json.loads(record.raw_body)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _text(body: dict, key: str, limit: int) -> str:
    value = body.get(key)
    return str(value).strip()[:limit] if isinstance(value, str | int) else ""


def apply(record: C2BConfirmation) -> str:
    """Apply a stored confirmation once; returns its disposition."""
    if record.disposition != "pending":
        return record.disposition
    body = _fields(record)
    trans_id = _text(body, "TransID", 20).upper() if body else ""
    amount_text = _text(body, "TransAmount", 20) if body else ""
    whole = WHOLE_KES.fullmatch(amount_text)
    if body is None or not RECEIPT.fullmatch(trans_id) or whole is None or int(whole[1]) < 1:
        return _settle(record, "malformed")
    record.trans_id, record.amount = trans_id, int(whole[1])
    record.shortcode = _text(body, "BusinessShortCode", 12)
    record.account = _text(body, "BillRefNumber", 40)
    names = (_text(body, k, 40) for k in ("FirstName", "MiddleName", "LastName"))
    record.payer_name = " ".join(n for n in names if n)[:120] or None
    record.msisdn = _text(body, "MSISDN", 64) or None
    try:
        paid_at = parse_daraja_timestamp(_text(body, "TransTime", 14))
    except ValueError:
        return _settle(record, "malformed")
    cred = db.session.scalar(select(MpesaCredential).where(MpesaCredential.bar_id == record.bar_id))
    ours = {c for c in (cred.shortcode, cred.till_number) if c} if cred else set()
    if record.shortcode not in ours:
        return _settle(record, "foreign_shortcode")
    known = db.session.scalar(select(Payment).where(Payment.receipt == trans_id))
    if known is not None:
        # The same money again: a repeated confirmation, or an STK push's receipt.
        record.payment_id = known.id
        return _settle(record, "linked" if known.purpose != Purpose.C2B else "duplicate")
    payment = states.paid_without_push(
        amount=record.amount,
        receipt=trans_id,
        paid_at=paid_at.astimezone(UTC).replace(tzinfo=None),
        bar_id=record.bar_id,
        tab_id=_open_tab_for(record.bar_id, record.account),
        purpose=Purpose.C2B,
        phone=re.sub(r"\s", "", record.msisdn or "")[:12] if "*" in (record.msisdn or "") else "",
        account_reference=re.sub(r"[^A-Za-z0-9]", "", record.account or "")[:12],
        description="M-Pesa menu",
        callback_token=secrets.token_hex(20),
        message=f"Paid from the M-Pesa menu. Receipt {trans_id}.",
    )
    db.session.add(payment)
    try:
        db.session.flush()
    except IntegrityError:  # another copy of this confirmation won the race
        db.session.rollback()
        record = db.session.get(C2BConfirmation, record.id)
        record.payment_id = db.session.scalar(select(Payment.id).where(Payment.receipt == trans_id))
        return _settle(record, "duplicate")
    record.payment_id = payment.id
    return _settle(record, "applied")


def _open_tab_for(bar_id: int, account: str | None) -> int | None:
    """The open tab whose code the customer typed as the account (TAB42, tab42, TAB 0042)."""
    found = TAB_CODE.fullmatch(re.sub(r"\s", "", account or "").upper())
    if found is None:
        return None
    return db.session.scalar(
        select(Tab.id).where(Tab.id == int(found[1]), Tab.bar_id == bar_id, Tab.status == "open")
    )


def _settle(record: C2BConfirmation, disposition: str) -> str:
    record.disposition = disposition
    if record.bar_id is not None:
        registration = db.session.scalar(
            select(C2BRegistration).where(C2BRegistration.bar_id == record.bar_id)
        )
        if registration is not None:
            registration.last_confirmation_at = utcnow()
    db.session.commit()
    return disposition


class ClaimError(ValueError):
    """A claim that cannot be made; the message says why, in the cashier's words."""


def unclaimed(bar_id: int, limit: int = 20) -> list[tuple[Payment, str | None]]:
    """Money from the M-Pesa menu on no tab yet, newest first, with the payer's name as M-Pesa
    gave it."""
    return [
        (payment, name)
        for payment, name in db.session.execute(
            select(Payment, C2BConfirmation.payer_name)
            .outerjoin(C2BConfirmation, C2BConfirmation.payment_id == Payment.id)
            .where(
                Payment.bar_id == bar_id,
                Payment.purpose == Purpose.C2B,
                Payment.tab_id.is_(None),
                Payment.status == PaymentStatus.PAID,
            )
            .order_by(Payment.id.desc())
            .limit(limit)
        ).all()
    ]


def claim(payment: Payment, tab: Tab, user_id: int | None, *, move: bool = False) -> None:
    """Put menu money on an open tab, once: one conditional UPDATE, so two cashiers tapping at
    once cannot both claim it. `move` (a manager) takes it from the tab it is on. Commits."""
    if tab.status != "open":
        raise ClaimError(_("%(tab)s is closed; choose an open tab.", tab=tab.label))
    if payment.purpose != Purpose.C2B or payment.status != PaymentStatus.PAID:
        raise ClaimError(_("Only money paid from the M-Pesa menu can be claimed to a tab."))
    was = payment.tab_id
    if was is not None and not move:
        raise ClaimError(_("This money is already on a tab; a manager can move it."))
    if was == tab.id:
        raise ClaimError(_("This money is already on %(tab)s.", tab=tab.label))
    done = db.session.execute(
        update(Payment)
        .where(
            Payment.id == payment.id,
            Payment.bar_id == tab.bar_id,
            Payment.tab_id.is_(None) if was is None else Payment.tab_id == was,
        )
        .values(tab_id=tab.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        db.session.rollback()
        raise ClaimError(_("Someone claimed this money a moment ago; it is on another tab now."))
    audit.record(
        "payment.moved" if was is not None else "payment.claimed",
        bar_id=tab.bar_id,
        payment_id=payment.id,
        tab_id=tab.id,
        amount=payment.amount,
        receipt=payment.receipt,
    )
    db.session.commit()


class RegisterError(ValueError):
    """Daraja did not take the C2B URLs; the message says what to do."""


def urls_for(bar: Bar) -> tuple[str, str]:
    """The bar's confirmation and validation URLs (its secret in the path)."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    secret = registration_for(bar).url_secret
    return f"{base}/hooks/c2b/{secret}/confirmation", f"{base}/hooks/c2b/{secret}/validation"


def register(bar: Bar, *, version: str = "v2") -> C2BRegistration:
    """Register the bar's C2B URLs with Daraja (v2, or v1 for apps that only have it). Commits."""
    cred = vault.credential_for(bar)
    if cred is None:
        raise RegisterError(_("Add the bar's M-Pesa credentials first."))
    try:
        creds = vault.open_credentials(cred)
    except vault.CredentialsUnavailable as err:
        raise RegisterError(str(err)) from None
    confirmation, validation = urls_for(bar)
    try:
        client_for(creds.environment).c2b_register(
            creds, confirmation_url=confirmation, validation_url=validation, version=version
        )
    except InvalidRequest as err:
        raise RegisterError(str(err)) from None
    except DarajaError as err:
        raise RegisterError(
            _(
                "Daraja did not register the URLs (%(reason)s). Check that the app on the Daraja "
                "portal has the M-Pesa C2B product; in production a shortcode's URLs may already "
                "be registered and are changed through Safaricom.",
                reason=err.message,
            )
        ) from None
    registration = registration_for(bar)
    registration.registered_at = utcnow()
    audit.record("c2b.registered", bar_id=bar.id, version=version)
    db.session.commit()
    return registration

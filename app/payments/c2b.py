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

import re
import secrets
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app import audit
from app.enums import PaymentStatus, Purpose
from app.extensions import db
from app.health import metrics
from app.i18n import _
from app.models import (
    AuditEvent,
    Bar,
    C2BConfirmation,
    C2BRegistration,
    MpesaCredential,
    Payment,
    Tab,
    utcnow,
)
from app.mpesa import DarajaError, InvalidRequest, catalogue
from app.mpesa.timestamps import parse_daraja_timestamp
from app.payments import bodies, c2b_refusals, states
from app.payments.daraja import client_for
from app.settings import vault
from app.statements import menu_money

ACK = {"ResultCode": 0, "ResultDesc": "Success"}
ACCEPT = {"ResultCode": "0", "ResultDesc": "Accepted"}
TAB_CODE = re.compile(r"TAB0*(\d{1,9})", re.ASCII)
RECEIPT = re.compile(r"[A-Z0-9]{10}")
WHOLE_KES = re.compile(r"(\d{1,7})(?:\.0{1,2})?", re.ASCII)  # "٣٠٠" is not KES 300
EARLIEST_TRANS_TIME = datetime(2007, 3, 1, tzinfo=UTC)  # M-Pesa began in March 2007


def registration_of(bar: Bar) -> C2BRegistration | None:
    """The bar's C2B URL record, if it has one (read only)."""
    return db.session.scalar(select(C2BRegistration).where(C2BRegistration.bar_id == bar.id))


def registration_for(bar: Bar) -> C2BRegistration:
    """The bar's C2B URL secret, made the first time it is asked for. Commits."""
    found = db.session.scalar(select(C2BRegistration).where(C2BRegistration.bar_id == bar.id))
    if found is None:
        found = C2BRegistration(bar_id=bar.id, url_secret=_url_secret())
        db.session.add(found)
        db.session.commit()
    elif found.registered_at is None and c2b_refusals.refused_word(found.url_secret):
        found.url_secret = _url_secret()  # never registered, so nothing calls the old one
        db.session.commit()
    return found


def _url_secret() -> str:
    """A URL secret without a word Daraja refuses in a URL: about 1 random secret in 500 has
    "sql", "cmd", "exec" or "query" in it (any case), and that bar could never register."""
    while c2b_refusals.refused_word(secret := secrets.token_urlsafe(24)):
        pass
    return secret


def store(secret: str, body: bytes, *, source: str | None, size: int, too_large: bool):
    """Commit the confirmation as it arrived (and the bar its secret names, if any) before
    anything reads it."""
    bar_id = db.session.scalar(
        select(C2BRegistration.bar_id).where(C2BRegistration.url_secret == secret)
    )
    record = C2BConfirmation(
        bar_id=bar_id,
        # PostgreSQL text cannot hold NUL: keep the body as it came, with NUL made visible.
        raw_body=bodies.as_stored(body),
        body_size=size,
        source_address=(source or "")[:64] or None,
        disposition="too_large" if too_large else ("pending" if bar_id else "unknown_url"),
    )
    db.session.add(record)
    db.session.commit()
    if record.disposition != "pending":
        metrics.count_c2b(record.disposition)
    return record


def _fields(record: C2BConfirmation) -> dict | None:
    return bodies.json_object(record.raw_body)


def field_text(body: dict, key: str, limit: int, *, exact: bool = False) -> str:
    """The field as text, at most `limit` characters; `exact`: a longer one is no value at all
    (cutting "20261122150233   x" to 15 characters would make a valid TransTime of junk)."""
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    # A control character is made visible, never dropped (dropping one could turn junk into
    # a valid field; PostgreSQL text refuses NUL). A 40-digit number is not a field either.
    text = value if isinstance(value, str) else str(value) if abs(value) < 10**40 else ""
    text = text.strip()
    if exact and len(text) > limit:
        return ""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text[:limit])


def apply(record: C2BConfirmation) -> str:
    """Apply a stored confirmation once; returns its disposition. An error on our side is
    counted as pending (the confirmation stays stored) and raised to the caller."""
    try:
        return _apply(record)
    except Exception:
        metrics.count_c2b("pending")
        raise


def _apply(record: C2BConfirmation) -> str:
    if record.disposition != "pending":
        return record.disposition
    body = _fields(record)
    trans_id = field_text(body, "TransID", 20, exact=True) if body else ""
    trans_id = trans_id.upper() if trans_id.isascii() else ""  # "ı".upper() is "I"
    amount_text = field_text(body, "TransAmount", 20, exact=True) if body else ""
    whole = WHOLE_KES.fullmatch(amount_text)
    if body is None or not RECEIPT.fullmatch(trans_id) or whole is None or int(whole[1]) < 1:
        return _settle(record, "malformed")
    record.trans_id, record.amount = trans_id, int(whole[1])
    record.shortcode = field_text(body, "BusinessShortCode", 12, exact=True)
    record.account = field_text(body, "BillRefNumber", 40)
    names = (field_text(body, k, 40) for k in ("FirstName", "MiddleName", "LastName"))
    record.payer_name = " ".join(n for n in names if n)[:120] or None
    record.msisdn = field_text(body, "MSISDN", 64) or None
    try:
        paid_at = parse_daraja_timestamp(field_text(body, "TransTime", 14, exact=True)).astimezone(
            UTC
        )
    except (ValueError, OverflowError):  # OverflowError: year 1 in EAT is before year 1 in UTC
        return _settle(record, "malformed")
    if not EARLIEST_TRANS_TIME <= paid_at <= datetime.now(UTC) + timedelta(days=1):
        return _settle(record, "malformed")
    cred = db.session.scalar(select(MpesaCredential).where(MpesaCredential.bar_id == record.bar_id))
    ours = {c for c in (cred.shortcode, cred.till_number) if c} if cred else set()
    if record.shortcode not in ours:
        return _settle(record, "foreign_shortcode")
    known = db.session.scalar(select(Payment).where(Payment.receipt == trans_id))
    if known is not None:
        # The same money again: a repeated confirmation, or an STK push's receipt. Another
        # bar's receipt is never linked to this bar's confirmation (it counts nothing either).
        record.payment_id = known.id if known.bar_id == record.bar_id else None
        return _settle(record, "linked" if known.purpose != Purpose.C2B else "duplicate")
    payment = states.paid_without_push(
        amount=record.amount,
        receipt=trans_id,
        paid_at=paid_at.replace(tzinfo=None),
        bar_id=record.bar_id,
        tab_id=open_tab_for(record.bar_id, record.account),
        purpose=Purpose.C2B,
        phone=re.sub(r"\s", "", record.msisdn or "")[:12] if "*" in (record.msisdn or "") else "",
        account_reference=re.sub(r"[^A-Za-z0-9]", "", record.account or "")[:12],
        description="M-Pesa menu",
        callback_token=secrets.token_hex(20),
        message=catalogue.PAID_FROM_MENU % {"receipt": trans_id},
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
    # A statement imported before this confirmation came has the line as an orphan: match it.
    menu_money.match_late_receipt(record.bar_id, trans_id, payment.id, payment.amount)
    return _settle(record, "applied")


def open_tab_for(bar_id: int, account: str | None) -> int | None:
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
    metrics.count_c2b(disposition)
    return disposition


class ClaimError(ValueError):
    """A claim that cannot be made; the message says why, in the cashier's words."""


def unclaimed_where(bar_id: int) -> tuple:
    """What makes a payment the bar's unclaimed menu money: the one rule the incoming list, its
    poll's fingerprint and the reconciliation's breaks all filter by."""
    return (
        Payment.bar_id == bar_id,
        Payment.purpose == Purpose.C2B,
        Payment.tab_id.is_(None),
        Payment.status == PaymentStatus.PAID,
    )


def unclaimed(bar_id: int, limit: int = 20) -> list[tuple[Payment, str | None]]:
    """Money from the M-Pesa menu on no tab yet, newest first, with the payer's name as M-Pesa
    gave it."""
    return [
        (payment, name)
        for payment, name in db.session.execute(
            select(Payment, C2BConfirmation.payer_name)
            .outerjoin(C2BConfirmation, C2BConfirmation.payment_id == Payment.id)
            .where(*unclaimed_where(bar_id))
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
    metrics.count_c2b_claim("moved" if was is not None else "claimed")


C2B_VERSIONS = ("v2", "v1")


class RegisterError(ValueError):
    """Daraja did not take the C2B URLs; the message says what to do."""


def urls_for(bar: Bar) -> tuple[str, str]:
    """The bar's confirmation and validation URLs (its secret in the path)."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    secret = registration_for(bar).url_secret
    return f"{base}/hooks/c2b/{secret}/confirmation", f"{base}/hooks/c2b/{secret}/validation"


def register(bar: Bar, *, version: str = "v2", again: bool = False) -> C2BRegistration:
    """Register the bar's C2B URLs with Daraja (v2, or v1 for apps that only have it). In
    production a shortcode's URLs register once, so URLs PesaTab registered already are not
    sent again unless `again` (Safaricom cleared them). Every refusal is one sentence
    (c2b_refusals). Commits."""
    if version not in C2B_VERSIONS:
        raise RegisterError(_("Choose C2B v1 or v2."))
    cred = vault.credential_for(bar)
    if cred is None:
        raise RegisterError(_("Add the bar's M-Pesa credentials first."))
    try:
        creds = vault.open_credentials(cred)
    except vault.CredentialsUnavailable as err:
        raise RegisterError(str(err)) from None
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    problem = c2b_refusals.url_problem(base, creds.environment)
    if problem is not None:
        raise RegisterError(problem)
    known = registration_for(bar)
    if creds.environment == "production" and known.registered_at is not None and not again:
        raise RegisterError(c2b_refusals.registered_already(creds.shortcode, known.registered_at))
    confirmation, validation = urls_for(bar)
    try:
        # Nobody waits better for a retried refusal: a person reads the answer now.
        client_for(creds.environment, max_retries=0).c2b_register(
            creds, confirmation_url=confirmation, validation_url=validation, version=version
        )
    except InvalidRequest as err:
        raise RegisterError(str(err)) from None
    except DarajaError as err:
        err.message = (err.message or "").replace(known.url_secret, "***")  # if Daraja echoes it
        if c2b_refusals.kind_of(err) == c2b_refusals.ALREADY_REGISTERED:
            audit.record("c2b.already_registered", bar_id=bar.id, version=version)
            db.session.commit()
        said = c2b_refusals.sentence(err, version=version, shortcode=creds.shortcode, base=base)
        raise RegisterError(said) from None
    registration = registration_for(bar)
    registration.registered_at = utcnow()
    audit.record("c2b.registered", bar_id=bar.id, version=version)
    db.session.commit()
    return registration


def registered_version(bar: Bar) -> str | None:
    """The C2B version (v1 or v2) the bar's URLs were last registered with, from the audit."""
    details = db.session.scalar(
        select(AuditEvent.details)
        .where(AuditEvent.bar_id == bar.id, AuditEvent.action == "c2b.registered")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    version = (details or {}).get("version")
    return version if version in C2B_VERSIONS else None

"""Finding menu money whose confirmation never came, with Daraja's Pull Transactions.

A bar registers its shortcode for Pull once (a nominated Safaricom number and a callback URL).
The pull job then asks, for each registered bar, for the transactions since its last good window
(minus an overlap, never more than Daraja's 48 hours), page by page until a page is empty. Each
transaction PesaTab does not know yet is stored as a confirmation (source `pull`) and applied by
`c2b.apply`, the path a real confirmation takes: the receipt's unique index makes it count
once, so a real confirmation arriving later is a duplicate, and one that came first makes the
pulled record a duplicate (or it is not stored at all).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app import audit
from app.extensions import db
from app.i18n import _
from app.models import Bar, C2BConfirmation, Payment, PullRegistration, utcnow
from app.mpesa import DarajaError, InvalidRequest, normalize_phone
from app.mpesa.pull import MAX_WINDOW, PullTransaction
from app.mpesa.timestamps import EAT
from app.payments import c2b
from app.payments.daraja import client_for
from app.settings import vault

log = logging.getLogger(__name__)

SOURCE = "pull"
NOTICE = "pull_notice"  # what Safaricom POSTs to the Pull callback URL: kept, never money
OVERLAP = timedelta(minutes=15)  # transactions can be posted a little after their time
# Daraja refuses a start older than 48 hours: stay a minute inside it, whatever the clocks say.
FURTHEST_BACK = MAX_WINDOW - timedelta(minutes=1)
MAX_PAGES = 200


class PullError(ValueError):
    """Pull could not be registered or asked; the message says what to do."""


@dataclass
class PullResult:
    """What one bar's pull (or the whole job) found: `items` is what the job health counts."""

    pages: int = 0
    seen: int = 0  # transactions read
    known: int = 0  # already in PesaTab (a confirmation came)
    found: int = 0  # applied from pull: money whose confirmation was lost
    other: int = 0  # stored but not money (duplicate by race, malformed, ...)
    kept_pending: int = 0  # stored, but applying failed on our side: the next run tries again
    failed_bars: int = 0

    @property
    def items(self) -> int:
        return self.found

    def add(self, other: PullResult) -> None:
        for name in ("pages", "seen", "known", "found", "other", "kept_pending", "failed_bars"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def registration_of(bar: Bar) -> PullRegistration | None:
    """The bar's Pull registration, if any (read only)."""
    return db.session.scalar(select(PullRegistration).where(PullRegistration.bar_id == bar.id))


def callback_url(bar: Bar) -> str:
    """Where Safaricom sends Pull notices for the bar (its C2B URL secret in the path)."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return f"{base}/hooks/c2b/{c2b.registration_for(bar).url_secret}/pull"


def _open(bar: Bar):
    cred = vault.credential_for(bar)
    if cred is None:
        raise PullError(_("Add the bar's M-Pesa credentials first."))
    try:
        return vault.open_credentials(cred)
    except vault.CredentialsUnavailable as err:
        raise PullError(str(err)) from None


def register(bar: Bar, nominated_number: str) -> PullRegistration:
    """Register the bar's shortcode for Pull Transactions with Daraja. Commits."""
    creds = _open(bar)
    try:
        client_for(creds.environment).pull_register(
            creds, nominated_number=nominated_number, callback_url=callback_url(bar)
        )
    except InvalidRequest as err:
        if err.field == "nominated_number":
            raise PullError(
                _("The nominated number must be a Safaricom number, like 0722 000 000.")
            ) from None
        raise PullError(str(err)) from None
    except DarajaError as err:
        raise PullError(
            _(
                "Daraja did not register Pull Transactions (%(reason)s). The app on the Daraja "
                "portal needs the Pull Transactions product (production apps only), and the "
                "nominated number must be the one Safaricom holds for the shortcode.",
                reason=err.message,
            )
        ) from None
    found = registration_of(bar) or PullRegistration(bar_id=bar.id)
    found.nominated_number = normalize_phone(nominated_number)
    found.registered_at = utcnow()
    db.session.add(found)
    audit.record("c2b.pull_registered", bar_id=bar.id)
    db.session.commit()
    return found


def window(
    registration: PullRegistration, now: datetime, hours: float | None = None
) -> tuple[datetime, datetime]:
    """The window to ask for (naive UTC): from the last good window's end minus the overlap
    (or `hours` back, or as far as Daraja allows the first time), to now; never past 48 h."""
    furthest = now - FURTHEST_BACK
    if hours is not None:
        start = now - timedelta(hours=hours)
    elif registration.window_end is not None:
        start = registration.window_end - OVERLAP
    else:
        start = furthest
    return max(start, furthest), now


def pull_bar(bar: Bar, now: datetime | None = None, hours: float | None = None) -> PullResult:
    """Read the bar's window page by page and apply what PesaTab does not know. The window is
    kept as read only when every page came back; an error is recorded and raised. Commits."""
    registration = registration_of(bar)
    if registration is None or registration.registered_at is None:
        raise PullError(_("Register the bar for Pull Transactions first."))
    now = now or utcnow()
    start, end = window(registration, now, hours)
    registration.last_run_at = utcnow()
    db.session.commit()
    result = PullResult()
    try:
        creds = _open(bar)
        _read_pages(bar, creds, start, end, result)
    except (DarajaError, PullError) as err:
        db.session.rollback()
        registration = registration_of(bar)
        registration.last_error = str(getattr(err, "message", err))[:255]
        db.session.commit()
        raise PullError(
            _("Daraja's Pull Transactions failed (%(reason)s).", reason=registration.last_error)
        ) from None
    registration = registration_of(bar)
    # The window counts as read only if it joins the last one (a manual `--hours 1` after a
    # long gap must not make the job skip the gap) and nothing was left unapplied.
    joins = start <= (registration.window_end or now - FURTHEST_BACK)
    if joins and not result.kept_pending:
        registration.window_end = max(end, registration.window_end or end)
    registration.last_success_at, registration.last_found = utcnow(), result.found
    registration.last_error = (
        f"{result.kept_pending} pulled payments kept to apply on the next run"
        if result.kept_pending
        else None
    )
    db.session.commit()
    return result


def _read_pages(bar: Bar, creds, start: datetime, end: datetime, result: PullResult) -> None:
    client = client_for(creds.environment, max_retries=0)
    offset, first_ids = 0, set()
    while result.pages < MAX_PAGES:
        page = client.pull_query(creds, start.replace(tzinfo=UTC), end.replace(tzinfo=UTC), offset)
        result.pages += 1
        if page.records == 0:
            return
        head = page.transactions[0].transaction_id if page.transactions else None
        if head is not None and head in first_ids:  # the offset was ignored: same page again
            log.warning("Pull answered the same page twice for bar %s; stopping", bar.id)
            return
        first_ids.add(head)
        _take(bar, creds.shortcode, page.transactions, result)
        offset += page.records


def _take(bar: Bar, shortcode: str, transactions, result: PullResult) -> None:
    ids = {t.transaction_id for t in transactions}
    counted = set(db.session.scalars(select(Payment.receipt).where(Payment.receipt.in_(ids))))
    pulled = dict(
        db.session.execute(
            select(C2BConfirmation.trans_id, C2BConfirmation.id).where(
                C2BConfirmation.bar_id == bar.id,
                C2BConfirmation.source == SOURCE,
                C2BConfirmation.trans_id.in_(ids),
            )
        ).all()
    )
    for transaction in transactions:
        result.seen += 1
        known = pulled.get(transaction.transaction_id)
        record = db.session.get(C2BConfirmation, known) if known else None
        if transaction.transaction_id in counted or (record and record.disposition != "pending"):
            result.known += 1
            continue
        record = record or _store(bar, shortcode, transaction)  # a pending one: try again
        pulled[transaction.transaction_id] = record.id
        _apply(record, result)


def _apply(record: C2BConfirmation, result: PullResult) -> None:
    record_id = record.id
    try:
        disposition = c2b.apply(record)
    except Exception:  # stored and pending: the next run applies it
        log.exception("pulled confirmation %s kept pending", record_id)
        db.session.rollback()
        result.kept_pending += 1
        return
    if disposition == "applied":
        result.found += 1
    else:
        result.other += 1


def _store(bar: Bar, shortcode: str, transaction: PullTransaction) -> C2BConfirmation:
    """A confirmation made from the pulled record, committed before it is applied."""
    body = json.dumps(as_confirmation(shortcode, transaction))
    record = C2BConfirmation(
        bar_id=bar.id,
        raw_body=body,
        body_size=len(body),
        source=SOURCE,
        disposition="pending",
        trans_id=transaction.transaction_id[:20],
    )
    db.session.add(record)
    db.session.commit()
    return record


def as_confirmation(shortcode: str, transaction: PullTransaction) -> dict[str, str]:
    """The confirmation Safaricom would have sent for this transaction (no payer names: Pull
    gives none)."""
    goods = "goods" in transaction.kind.lower()
    return {
        "TransactionType": "Buy Goods" if goods else "Pay Bill",
        "TransID": transaction.transaction_id,
        "TransTime": transaction.paid_at.astimezone(EAT).strftime("%Y%m%d%H%M%S"),
        "TransAmount": transaction.amount.replace(",", ""),
        "BusinessShortCode": shortcode,
        "BillRefNumber": "" if goods else transaction.bill_reference,
        "MSISDN": transaction.msisdn,
        "FirstName": "",
        "MiddleName": "",
        "LastName": "",
        "PullTransactionType": transaction.kind,
    }


def pull_due(now: datetime | None = None) -> PullResult:
    """The pull job: every bar registered for Pull, each on its own (one bar's failure is
    recorded on its row and does not stop the others)."""
    total = PullResult()
    bar_ids = db.session.scalars(
        select(PullRegistration.bar_id)
        .where(PullRegistration.registered_at.is_not(None))
        .order_by(PullRegistration.bar_id)
    ).all()
    for bar_id in bar_ids:
        try:
            total.add(pull_bar(db.session.get(Bar, bar_id), now=now))
        except PullError as err:
            log.warning("Pull for bar %s failed: %s", bar_id, err)
            total.failed_bars += 1
    if bar_ids and total.failed_bars == len(bar_ids):
        raise PullError("Pull Transactions failed for every registered bar")
    return total


def store_notice(secret: str, body: bytes, *, source: str | None, size: int) -> C2BConfirmation:
    """What Safaricom POSTs to the Pull callback URL: kept for review, never applied."""
    record = c2b.store(secret, body, source=source, size=size, too_large=False)
    record.source = SOURCE
    if record.disposition == "pending":
        record.disposition = NOTICE
    db.session.commit()
    return record

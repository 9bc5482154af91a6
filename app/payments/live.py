"""A payment's live status, ready for its fragment: what it shows, its fingerprint, and a poll.

The status fragment (templates/payments/_status.html) polls every 2 s while a payment is in
flight. Everything it shows is handed to it here, so the template asks no questions of the
database: the payment, how long it has waited, the set-up hint of a failed test push, for a
tab's payment the tab's out-of-band panel (its totals; once final, its pay panel too), and for a
final test push the M-Pesa page's go-live section, out of band (the Go live button, or the
switch to new credentials, appears without a reload). A poll
whose screen already shows the current version is answered from one Core query and no
template (`poll` returns UNCHANGED, the route a 204).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import and_, bindparam, select

from app.enums import PaymentStatus, Purpose
from app.extensions import db
from app.models import Bar, Payment, Tab, User, one_of, utcnow
from app.payments.states import IN_FLIGHT
from app.settings import golive, onboarding, vault
from app.tabs import panel as tab_panel
from app.tabs import totals as tab_totals
from app.web import security

UNCHANGED = "unchanged"  # the screen shows the current version: nothing to send


def status_context(payment: Payment, version: str | None = None) -> dict:
    """What the status fragment shows: in flight (with elapsed time) or the final sentence.
    `version` (see `status_version`) goes into an in-flight fragment's poll URL, so the next
    poll can be answered 204 when nothing it shows has changed."""
    lifetime = current_app.config["PROMPT_LIFETIME_SECONDS"]
    started = payment.sent_at or payment.created_at
    elapsed = max(0, int((utcnow() - started).total_seconds()))
    hint = None
    if payment.purpose == Purpose.TEST and payment.status in (
        PaymentStatus.FAILED,
        PaymentStatus.REJECTED,
    ):
        bar = db.session.get(Bar, payment.bar_id)
        hint = onboarding.setup_hint(payment, vault.credential_for(bar))
    return {
        "payment": payment,
        "in_flight": payment.status in IN_FLIGHT,
        "elapsed": elapsed,
        "lifetime": lifetime,
        "setup_hint": hint,
        "version": version,
    }


def fragment_context(
    payment: Payment,
    version: str | None = None,
    *,
    tab: Tab | None = None,
    totals=None,
    panels: bool = True,
) -> dict:
    """`status_context` for a fragment swapped in on its own (a poll, "Check now"): with what
    the fragment carries out of band: the tab's panel when the payment is on a tab, the go-live
    section (`go_live_oob`) once a test push is final. Not `panels` for a screen that has
    neither (the payment's own page): out-of-band parts with nowhere to go are htmx errors."""
    context = status_context(payment, version)
    if not panels:
        return context
    if payment.tab_id is not None:
        tab = tab or db.session.get(Tab, payment.tab_id)
        totals = totals or tab_totals.totals(tab)
        context["tab_panel"] = tab_panel.panel(tab, totals, final=not context["in_flight"])
    if payment.purpose == Purpose.TEST and not context["in_flight"]:
        context["go_live_oob"] = golive.section_for(payment.bar_id)
    return context


def status_version(
    status: str,
    updated_at,
    message: str | None,
    checkout_request_id: str | None,
    tab_total: int | None,
    tab_paid: int | None,
) -> str:
    """A short fingerprint of everything a status fragment shows that can change while it
    polls: the payment's status, message and "Check now" button (updated_at moves with each
    change) and its tab's totals (the out-of-band summary). The elapsed time is not in it:
    app.js counts it on the screen."""
    shown = repr(
        (
            status,
            updated_at.isoformat() if updated_at else None,
            message,
            bool(checkout_request_id),
            tab_total,
            tab_paid,
        )
    )
    return hashlib.blake2s(shown.encode(), digest_size=8).hexdigest()


def version_of(payment: Payment, totals: tab_totals.Totals | None) -> str:
    """`status_version` of a loaded payment (and its tab's totals, when it is on a tab): a page
    that renders the fragment gives its first poll the version too, so that poll can be a 204."""
    return status_version(
        payment.status,
        payment.updated_at,
        payment.message,
        payment.checkout_request_id,
        totals.total if totals else None,
        totals.settled if totals else None,
    )


@functools.cache
def _status_row_query():
    """Built once: composing the tab totals' subqueries costs more than running them."""
    return select(
        Payment.status,
        Payment.updated_at,
        Payment.message,
        Payment.checkout_request_id,
        Payment.tab_id,
        *tab_totals.totals_columns(Payment.tab_id),
    ).where(Payment.id == bindparam("payment_id"), Payment.bar_id == bindparam("bar_id"))


@functools.cache
def _session_row_query(roles: tuple[str, ...]):
    """`_status_row_query` with the session checked in the same round trip: the row only if
    the session's person passes the user loader's rules (security.signed_in_where), works in
    the payment's bar and has one of `roles`. Core, no ORM, no pool ping (app/extensions.py)."""
    return (
        select(*_status_row_query().selected_columns)
        .join(
            User,
            and_(
                User.bar_id == Payment.bar_id, one_of(User.role, roles), *security.signed_in_where()
            ),
        )
        .where(Payment.id == bindparam("payment_id"))
    )


def unchanged_for_session(
    payment_id: int, ident: tuple[int, int], roles: tuple[str, ...], shown: str
) -> tuple[bool, object | None]:
    """A waiting screen's poll answered from one query that also checks who asks: (True, row)
    when the session's person may see the payment and it still shows `shown` in flight (the
    route answers 204 without Flask-Login, the ORM or a template); (False, row) when the
    version moved (row: what `poll` would read first, handed to it); (False, None) when the
    person or the payment did not pass, and Flask-Login's own path decides (401, 403, 404).

    One SELECT on a connection of its own in autocommit: no BEGIN before it and no ROLLBACK
    after it (the session's transaction cost two more round trips than the question, ~30% of
    a 204), and the request's session never checks a connection out."""
    with db.engine.connect() as connection:
        row = (
            connection.execution_options(isolation_level="AUTOCOMMIT")
            .execute(
                _session_row_query(roles),
                {"payment_id": payment_id, **security.session_params(ident)},
            )
            .one_or_none()
        )
    if row is None:
        return False, None
    return _version_of_row(row) == shown and row[0] in IN_FLIGHT, row


def _version_of_row(row) -> str:
    status, updated_at, message, checkout_id, tab_id, *sums = row
    totals = tab_totals.of_row(*sums) if tab_id is not None else None
    return status_version(
        status,
        updated_at,
        message,
        checkout_id,
        totals.total if totals else None,
        totals.settled if totals else None,
    )


@dataclass(frozen=True)
class Poll:
    """A poll's answer: UNCHANGED, or the context of a fresh fragment."""

    unchanged: bool
    context: dict | None = None


def poll(
    payment_id: int, bar_id: int, shown: str | None, *, panels: bool = True, row=None
) -> Poll | None:
    """Answer a status poll for a payment of `bar_id` (None: no such payment in that bar, which
    the route answers 404). `shown` is the version the screen holds (`?v=`); `row`, the
    payment's status row already read for this request (`unchanged_for_session`)."""
    # Core, on the session's connection: plain columns need none of the ORM's result handling.
    if row is None:
        row = (
            db.session.connection()
            .execute(_status_row_query(), {"payment_id": payment_id, "bar_id": bar_id})
            .one_or_none()
        )
    if row is None:
        return None
    status, updated_at, message, checkout_id, tab_id, *sums = row
    totals = tab_totals.of_row(*sums) if tab_id is not None else None
    version = status_version(
        status,
        updated_at,
        message,
        checkout_id,
        totals.total if totals else None,
        totals.settled if totals else None,
    )
    if shown == version and status in IN_FLIGHT:
        return Poll(unchanged=True)
    found = db.session.execute(
        select(Payment, Tab)
        .outerjoin(Tab, Tab.id == Payment.tab_id)
        .where(Payment.id == payment_id, Payment.bar_id == bar_id)
    ).one_or_none()
    if found is None:
        return None
    payment, tab = found
    context = fragment_context(payment, version, tab=tab, totals=totals, panels=panels)
    return Poll(unchanged=False, context=context)

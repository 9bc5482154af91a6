"""Alerts: what is going wrong for a bar right now, in one sentence, with what to do about it.

Everything is computed live from payments, callbacks and the bar's token-fetch record, so an
alert clears by itself as soon as its condition stops holding: there is nothing to dismiss.
`all_alerts` answers for every bar at once with a handful of grouped queries (the operators'
page never queries bar by bar); `bar_alerts` runs the same queries for one bar (its dashboard).

The token-fetch record is kept by `note_token_failure` / `note_token_ok`, called where a push,
a credentials check or a recovery query learns whether Safaricom issued a token.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, exists, func, select, update

from app.enums import PaymentStatus
from app.extensions import db
from app.i18n import N_, _
from app.models import Bar, CallbackEvent, Payment, utcnow
from app.mpesa import DarajaAuthError
from app.mpesa import errors as e
from app.payments.states import IN_FLIGHT

WINDOW = timedelta(hours=1)
# A callback usually lands within seconds; give it two minutes before counting it as missing.
CALLBACK_GRACE = timedelta(minutes=2)
SILENT_PUSHES = 3
# The same half hour after which recovery flags a payment and reconciliation lists it.
UNSETTLED_AFTER = timedelta(minutes=30)
WAITING = (PaymentStatus.SENT, PaymentStatus.UNKNOWN)
RATED_PURPOSES = ("tab", "api")  # an owner's KES 1 test pushes never move a success rate


@dataclass(frozen=True)
class Alert:
    kind: str  # token_failing | no_callbacks | low_success_rate | unsettled
    severity: str  # danger | warning
    sentence: str
    what_to_do: str


def all_alerts(now: datetime | None = None) -> dict[int, list[Alert]]:
    """Every bar's open alerts (bars without any are left out), most serious first."""
    return _alerts(None, now or utcnow())


def bar_alerts(bar_id: int, now: datetime | None = None) -> list[Alert]:
    """One bar's open alerts, most serious first."""
    return _alerts(bar_id, now or utcnow()).get(bar_id, [])


def _alerts(bar_id: int | None, now: datetime) -> dict[int, list[Alert]]:
    found: dict[int, list[Alert]] = defaultdict(list)
    for rule in (_token_failing, _no_callbacks, _low_success_rate, _unsettled):
        for owner, alert in rule(bar_id, now):
            found[owner].append(alert)
    return dict(found)


def _only(column, bar_id: int | None) -> list:
    return [] if bar_id is None else [column == bar_id]


# -- the rules ---------------------------------------------------------------------------------


def _token_failing(bar_id: int | None, now: datetime) -> Iterator[tuple[int, Alert]]:
    rows = db.session.execute(
        select(Bar.id, Bar.token_failures, Bar.token_failure_reason).where(
            Bar.token_failures > 0, *_only(Bar.id, bar_id)
        )
    )
    for bid, failures, reason in rows:
        times = _("once") if failures == 1 else _("%(count)s times in a row", count=failures)
        yield (
            bid,
            Alert(
                "token_failing",
                "danger",
                _(
                    "Safaricom refused to sign PesaTab in with this bar's M-Pesa keys (%(times)s), "
                    "so no M-Pesa request can be sent and waiting ones cannot be checked.",
                    times=times,
                ),
                _(_TOKEN_ADVICE.get(reason, _TOKEN_ADVICE[None])),
            ),
        )


_TOKEN_ADVICE = {
    e.PRODUCT_NOT_ENABLED: N_(
        "The Daraja app no longer has M-Pesa Express enabled: the owner adds that product to the "
        "app on the Daraja portal, then uses Check credentials on the M-Pesa page."
    ),
    None: N_(
        "The consumer key or secret was changed or revoked on the Daraja portal: the owner copies "
        "the current ones into the M-Pesa page and uses Check credentials. Take payment another "
        "way until then."
    ),
}


def _no_callbacks(bar_id: int | None, now: datetime) -> Iterator[tuple[int, Alert]]:
    since = now - WINDOW
    heard = exists().where(
        CallbackEvent.bar_id == Payment.bar_id,
        CallbackEvent.received_at >= since,
        CallbackEvent.received_at <= now,
    )
    rows = db.session.execute(
        select(Payment.bar_id, func.count())
        .where(
            Payment.sent_at >= since,
            Payment.sent_at <= now - CALLBACK_GRACE,
            ~heard,
            *_only(Payment.bar_id, bar_id),
        )
        .group_by(Payment.bar_id)
        .having(func.count() >= SILENT_PUSHES)
    )
    base = current_app.config["PUBLIC_BASE_URL"]
    for bid, count in rows:
        yield (
            bid,
            Alert(
                "no_callbacks",
                "danger",
                _(
                    "M-Pesa accepted %(count)s requests in the last hour but not one callback "
                    "reached PesaTab, so payments show as paid only when PesaTab asks M-Pesa, a "
                    "minute or more later.",
                    count=count,
                ),
                _(
                    "Payments still settle; nothing to do at the till. Safaricom cannot reach "
                    "%(url)s: PesaTab's operators check PUBLIC_BASE_URL, the firewall and the TLS "
                    "certificate.",
                    url=base + "/hooks/stk/…",
                ),
            ),
        )


def _low_success_rate(bar_id: int | None, now: datetime) -> Iterator[tuple[int, Alert]]:
    threshold = current_app.config["ALERT_SUCCESS_RATE"]
    minimum = current_app.config["ALERT_MIN_PUSHES"]
    paid = func.sum(case((Payment.status == PaymentStatus.PAID, 1), else_=0))
    rows = db.session.execute(
        select(Payment.bar_id, func.count(), paid)
        .where(
            Payment.created_at >= now - WINDOW,
            Payment.created_at <= now,
            Payment.purpose.in_(RATED_PURPOSES),
            Payment.status.not_in(IN_FLIGHT),
            *_only(Payment.bar_id, bar_id),
        )
        .group_by(Payment.bar_id)
        .having(func.count() >= minimum)
    )
    for bid, settled, paid_count in rows:
        paid_count = int(paid_count or 0)
        if paid_count * 100 >= threshold * settled:
            continue
        yield (
            bid,
            Alert(
                "low_success_rate",
                "warning",
                _(
                    "Only %(paid)s of the %(settled)s M-Pesa requests settled in the last hour "
                    "were paid (%(rate)s%%, below %(threshold)s%%).",
                    paid=paid_count,
                    settled=settled,
                    rate=round(100 * paid_count / settled),
                    threshold=threshold,
                ),
                _(
                    "Open Reconciliation for today's failure reasons: cancellations and wrong PINs "
                    "are customers; 'not sent' or set-up errors point at the bar's M-Pesa set-up "
                    "or at M-Pesa itself."
                ),
            ),
        )


def _unsettled(bar_id: int | None, now: datetime) -> Iterator[tuple[int, Alert]]:
    pushed = func.coalesce(Payment.sent_at, Payment.created_at)
    rows = db.session.execute(
        select(Payment.bar_id, func.count(), func.sum(Payment.amount))
        .where(
            Payment.status.in_(WAITING),
            pushed < now - UNSETTLED_AFTER,
            *_only(Payment.bar_id, bar_id),
        )
        .group_by(Payment.bar_id)
    )
    for bid, count, kes in rows:
        values = {"count": count, "kes": f"{int(kes or 0):,}"}
        yield (
            bid,
            Alert(
                "unsettled",
                "warning",
                _(
                    "%(count)s M-Pesa request has had no answer for more than 30 minutes "
                    "(KES %(kes)s).",
                    **values,
                )
                if count == 1
                else _(
                    "%(count)s M-Pesa requests have had no answer for more than 30 minutes "
                    "(KES %(kes)s).",
                    **values,
                ),
                _(
                    "Check the M-Pesa statement or the customer's SMS for these amounts before "
                    "asking again; Reconciliation lists them."
                ),
            ),
        )


# -- the token-fetch record --------------------------------------------------------------------


def note_token_failure(bar_id: int, reason: str | None = None, now: datetime | None = None) -> None:
    """Safaricom refused a token for this bar's keys. Joins the caller's transaction."""
    db.session.execute(
        update(Bar)
        .where(Bar.id == bar_id)
        .values(
            token_failures=Bar.token_failures + 1,
            token_failed_at=now or utcnow(),
            token_failure_reason=reason,
        )
        .execution_options(synchronize_session=False)
    )


def note_token_ok(bar_id: int) -> None:
    """A token was issued: the alert clears. Writes nothing unless a failure was on record, so
    the push path pays one no-op UPDATE, not a write."""
    db.session.execute(
        update(Bar)
        .where(Bar.id == bar_id, Bar.token_failures > 0)
        .values(token_failures=0, token_failure_reason=None)
        .execution_options(synchronize_session=False)
    )


def note_daraja_error(bar_id: int, err: Exception) -> None:
    """For a branch catching every Daraja error: only a refused token is about the keys."""
    if isinstance(err, DarajaAuthError):
        note_token_failure(bar_id, err.reason)

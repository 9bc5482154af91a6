"""The owner's "M-Pesa balance" card: ask M-Pesa what the shortcode's accounts hold, and show
its answer.

1. Asking needs the bar's Daraja credentials and its initiator credentials (the M-Pesa page);
   without them the card says what to add, and nothing is sent.
2. M-Pesa is asked at most BALANCE_LIMIT_PER_BAR ("1 per 5 minutes"): the bar's requests in
   the window are counted in the database, with the bar's row locked while it is decided, so
   two clicks (or two workers) cannot both send one. Asking sooner is refused with a sentence
   saying when it may be asked again, and the last figures stay on the card. A request made
   before the initiator credentials last changed does not count: the owner fixed something and
   may try again at once.
3. The request goes through app/payments/initiator.py (kind BALANCE): its result comes later
   to the request's own URL and is applied once; the card polls until it has come. The
   accounts are read from the stored answer (app/payments/account_balance.py) when shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from limits import parse
from sqlalchemy import select, update

from app import audit
from app.enums import BalanceOutcome, InitiatorKind, InitiatorState
from app.extensions import db
from app.formats import kes, local_time
from app.i18n import _
from app.models import Bar, InitiatorRequest, utcnow
from app.mpesa.balance import Account, whole_shillings
from app.payments import account_balance, initiator
from app.payments.daraja import client_for
from app.settings import initiator as initiator_credentials
from app.settings import vault

ANSWER_WAIT_SECONDS = 90  # then "M-Pesa did not answer", as a queue timeout would say
TIME = "%d %b %Y, %H:%M"


class TooSoon(Exception):
    """M-Pesa was asked for the balance too recently; the message says when it may be again."""


@dataclass(frozen=True)
class Line:
    """One account as the card shows it: Daraja's name, whole shillings with separators."""

    name: str
    available: str
    current: str


@dataclass
class Card:
    """What the card shows: the request it follows (None before the first), the last
    figures M-Pesa gave, and a sentence about the request when it has not given figures."""

    request: InitiatorRequest | None = None
    lines: list[Line] = field(default_factory=list)
    as_at: str | None = None
    sentence: str | None = None
    tone: str = "good"
    settings_link: bool = False  # the sentence asks the owner to fix something on the M-Pesa page
    can_ask: bool = True
    notice: str | None = None  # asked too soon
    hint: str = ""

    @property
    def waiting(self) -> bool:
        return self.request is not None and self.request.state == InitiatorState.WAITING


def _limit():
    return parse(current_app.config["BALANCE_LIMIT_PER_BAR"])


def card(bar: Bar, request: InitiatorRequest | None = None, *, notice: str | None = None) -> Card:
    """The card now: for `request` (else the bar's latest), with the latest figures shown."""
    request = request or _latest(bar.id)
    if request is not None:
        initiator.expire(request, ANSWER_WAIT_SECONDS)
    shown = request if request is not None and request.outcome == BalanceOutcome.SHOWN else None
    shown = shown or _latest(bar.id, BalanceOutcome.SHOWN)
    found = Card(request=request, notice=notice, hint=_hint())
    if shown is not None:
        answer = account_balance.balance(shown.parameters or {})
        found.lines = [_line(a) for a in answer.accounts]
        at = answer.completed_at or shown.answered_at
        found.as_at = _("As at %(time)s", time=_when(bar, at, TIME))
    _say(found, request, shown)
    setup = _setup_sentence(bar)
    if setup is not None and not found.waiting:
        found.sentence, found.tone, found.settings_link, found.can_ask = setup, "warn", True, False
    return found


def _say(found: Card, request: InitiatorRequest | None, shown: InitiatorRequest | None) -> None:
    if request is None:
        return
    outcome = request.outcome
    if found.waiting or outcome is None:
        found.sentence, found.tone = _("Asking M-Pesa for the balance…"), "wait"
    elif outcome == BalanceOutcome.SHOWN and not found.lines:
        found.sentence = _("M-Pesa answered, but PesaTab could not read a balance in its answer.")
        found.tone = "bad"
    elif outcome == BalanceOutcome.NO_ANSWER:
        found.sentence, found.tone = _("M-Pesa did not answer; try again in a few minutes."), "warn"
    elif outcome == BalanceOutcome.BAD_CREDENTIALS:
        found.sentence = _(
            "M-Pesa refused the initiator credentials (the initiator name or password is wrong, "
            "or the credential is locked), so it did not give the balance. Check them on the "
            "M-Pesa page."
        )
        found.tone, found.settings_link = "bad", True
    elif outcome == BalanceOutcome.REFUSED:
        found.sentence = _("M-Pesa refused to give the balance: %(reason)s",
                           reason=request.result_desc or "—")  # fmt: skip
        found.tone = "bad"


def _setup_sentence(bar: Bar) -> str | None:
    cred = vault.credential_for(bar)
    if cred is None or not vault.can_open(cred):
        return _("Connect the bar's M-Pesa on the M-Pesa page first: the balance is asked with "
                 "its credentials.")  # fmt: skip
    if initiator_credentials.initiator_for(bar.id) is None:
        return _(
            "To see the balance, add the initiator credentials on the M-Pesa page (Verifying "
            "M-Pesa codes): M-Pesa gives the balance only to the bar's initiator."
        )
    return None


def _hint() -> str:
    limit = _limit()
    minutes = max(1, math.ceil(limit.get_expiry() / 60))
    if limit.amount == 1:
        return _("M-Pesa is asked at most once every %(minutes)s minutes.", minutes=minutes)
    return _("M-Pesa is asked at most %(count)s times every %(minutes)s minutes.",
             count=limit.amount, minutes=minutes)  # fmt: skip


def _line(account: Account) -> Line:
    def money(value) -> str:
        if value is None:
            return "—"
        shillings = whole_shillings(value)
        if account.currency in (None, "KES"):
            return kes(shillings)
        return f"{'-' if shillings < 0 else ''}{account.currency} {abs(shillings):,}"

    return Line(account.name, money(account.shown), money(account.current))


def _when(bar: Bar, at: datetime | None, fmt: str) -> str:
    """A stored (naive UTC) time in the bar's timezone, with the zone's name ("EAT")."""
    if at is None:
        return "—"
    zone = at.replace(tzinfo=UTC).astimezone(ZoneInfo(bar.timezone)).tzname() or ""
    return f"{local_time(at, bar.timezone, fmt)} {zone}".strip()


# Asking ---------------------------------------------------------------------------------------


def ask(bar: Bar, user_id: int | None) -> Card:
    """Ask M-Pesa for the balance now, if the bar may; the card after asking. Raises TooSoon
    (nothing sent) when the bar asked within the limit's window."""
    if _setup_sentence(bar) is not None:
        return card(bar)
    opened = initiator_credentials.open_with_credentials(bar)
    if opened is None:
        return card(bar)
    creds, who = opened
    # The bar's row, locked (PostgreSQL) or the database's write lock taken (SQLite) until the
    # request is committed: a second ask waits here, then counts this one.
    db.session.execute(
        update(Bar)
        .where(Bar.id == bar.id)
        .values(name=Bar.name)
        .execution_options(synchronize_session=False)
    )
    refusal = _too_soon(bar)
    if refusal is not None:
        db.session.rollback()
        raise TooSoon(refusal)
    request = initiator.start(bar.id, InitiatorKind.BALANCE, creds.shortcode, user_id)  # commits
    audit.record("balance.asked", bar_id=bar.id, request_id=request.id, shortcode=creds.shortcode)
    db.session.commit()
    client = client_for(creds.environment)
    initiator.send(
        request,
        lambda result_url, timeout_url: client.account_balance(
            creds, who, result_url=result_url, timeout_url=timeout_url
        ),
    )
    return card(bar, request)


def _too_soon(bar: Bar) -> str | None:
    """The refusal sentence when the bar's requests in the window fill the limit."""
    limit = _limit()
    window = timedelta(seconds=limit.get_expiry())
    since = utcnow() - window
    saved = initiator_credentials.initiator_for(bar.id)
    if saved is not None and saved.saved_at and saved.saved_at > since:
        since = saved.saved_at
    recent = list(
        db.session.scalars(
            select(InitiatorRequest.created_at)
            .where(
                InitiatorRequest.bar_id == bar.id,
                InitiatorRequest.kind == InitiatorKind.BALANCE,
                InitiatorRequest.created_at >= since,
            )
            .order_by(InitiatorRequest.created_at.desc(), InitiatorRequest.id.desc())
            .limit(limit.amount)
        )
    )
    if len(recent) < limit.amount:
        return None
    again = recent[-1] + window
    if again.second or again.microsecond:  # said in minutes: the next whole one
        again = again.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return _(
        "M-Pesa was asked for the balance at %(asked)s. It can be asked again at %(again)s; "
        "until then the last figures stay shown.",
        asked=_when(bar, recent[0], "%H:%M"),
        again=_when(bar, again, "%H:%M"),
    )


# Finding --------------------------------------------------------------------------------------


def _latest(bar_id: int, outcome: str | None = None) -> InitiatorRequest | None:
    query = select(InitiatorRequest).where(
        InitiatorRequest.bar_id == bar_id, InitiatorRequest.kind == InitiatorKind.BALANCE
    )
    if outcome is not None:
        query = query.where(InitiatorRequest.outcome == outcome)
    return db.session.scalar(query.order_by(InitiatorRequest.id.desc()).limit(1))


def request_for(bar: Bar, request_id: int) -> InitiatorRequest | None:
    """The bar's own Account Balance request (another bar's, or another kind: None)."""
    return db.session.scalar(
        select(InitiatorRequest).where(
            InitiatorRequest.id == request_id,
            InitiatorRequest.bar_id == bar.id,
            InitiatorRequest.kind == InitiatorKind.BALANCE,
        )
    )

"""Is this M-Pesa code real? One answer, in one sentence, for the cashier at the counter.

1. The code is normalised (upper case, spaces dropped) and must be 10 letters and digits.
2. The bar's own records answer first: a payment with that receipt is genuine, and either
   waits to be claimed (menu money on no tab) or is already counted (on a tab, a test push).
3. Else M-Pesa is asked (Transaction Status with the bar's initiator credentials, limited per
   bar). The result comes later to the request's own URL; the cashier's screen polls the
   request until it is answered: genuine, not found, not completed, paid to another business,
   no answer, or the initiator credentials refused (2001, a sentence for the owner).
   A code asked a few minutes ago is not asked again: its request answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import or_, select

from app import audit
from app.enums import InitiatorKind, InitiatorState, PaymentStatus, Purpose, VerifyOutcome
from app.extensions import db
from app.formats import kes, local_time
from app.health import metrics
from app.i18n import _
from app.models import Bar, C2BConfirmation, InitiatorRequest, Payment, Tab, utcnow
from app.mpesa import mask_phone
from app.payments import initiator, transaction_status
from app.payments.daraja import client_for
from app.settings import initiator as initiator_credentials

CODE = re.compile(r"[A-Z0-9]{10}")
ANSWER_WAIT_SECONDS = 90  # then "M-Pesa did not answer", as a queue timeout would say
REUSE_MINUTES = 10  # a code asked this recently is not asked again
# Answers about the money itself: asking again minutes later would say the same. "No answer"
# and refused credentials are not kept: the next ask tries again (the owner may have fixed them).
SETTLED_ANSWERS = (
    VerifyOutcome.GENUINE,
    VerifyOutcome.NOT_FOUND,
    VerifyOutcome.NOT_COMPLETED,
    VerifyOutcome.OTHER_BUSINESS,
)
GOOD = (VerifyOutcome.GENUINE,)
WARN = (VerifyOutcome.CLAIMED, VerifyOutcome.NO_ANSWER, VerifyOutcome.NO_INITIATOR)


class CodeError(ValueError):
    """Not an M-Pesa code; the message says what one looks like."""


class AskLimited(Exception):
    """The bar asked M-Pesa about too many codes just now; the message says so."""


@dataclass
class Answer:
    """What the cashier is told: the outcome (None while M-Pesa is being asked) and why."""

    code: str
    outcome: str | None
    sentence: str
    request: InitiatorRequest | None = None
    claimable: Payment | None = None  # menu money on no tab: claim buttons follow
    tabs: list[Tab] = field(default_factory=list)
    owner_hint: str | None = None

    @property
    def waiting(self) -> bool:
        return self.outcome is None

    @property
    def tone(self) -> str:
        if self.outcome is None:
            return "wait"
        return "good" if self.outcome in GOOD else ("warn" if self.outcome in WARN else "bad")


def normalise(text: str | None) -> str:
    code = re.sub(r"\s", "", text or "").upper()
    if not CODE.fullmatch(code):
        raise CodeError(_("An M-Pesa code is 10 letters and digits, like QK12ABC3XY."))
    return code


def verify(bar: Bar, user_id: int | None, text: str, may_ask: Callable[[], bool]) -> Answer:
    """The answer for `text`; `may_ask()` says whether the bar's Daraja allowance has room
    (it is called only when M-Pesa must be asked). Raises CodeError."""
    code = normalise(text)
    local = from_records(bar, code)
    if local is not None:
        metrics.count_verify(local.outcome)
        return local
    recent = _recent(bar.id, code)
    if recent is not None:
        return present(bar, recent)
    opened = initiator_credentials.open_with_credentials(bar)
    if opened is None:
        metrics.count_verify(VerifyOutcome.NO_INITIATOR)
        return Answer(code, VerifyOutcome.NO_INITIATOR, _no_initiator())
    creds, who = opened
    if not may_ask():
        raise AskLimited(_too_many())
    request = initiator.start(bar.id, InitiatorKind.STATUS, code, user_id)
    audit.record("verify.asked", bar_id=bar.id, receipt=code, request_id=request.id)
    db.session.commit()
    client = client_for(creds.environment)
    initiator.send(
        request,
        lambda result_url, timeout_url: client.transaction_status(
            creds, who, transaction_id=code, result_url=result_url, timeout_url=timeout_url
        ),
    )
    return present(bar, request)


def _no_initiator() -> str:
    return _(
        "Not in PesaTab's records, and PesaTab cannot ask M-Pesa: the owner has not added the "
        "initiator credentials on the M-Pesa page. Do not accept it until you see the money "
        "arrive."
    )


def _too_many() -> str:
    return _(
        "Not in PesaTab's records, and too many codes were asked of M-Pesa in the last few "
        "minutes. Wait a moment, then check it again."
    )


def from_records(bar: Bar, code: str) -> Answer | None:
    """The bar's own payment with this receipt, if there is one."""
    payment = db.session.scalar(
        select(Payment).where(
            Payment.bar_id == bar.id, Payment.receipt == code, Payment.status == PaymentStatus.PAID
        )
    )
    if payment is None:
        return None
    what = _money(bar, payment)
    if payment.tab_id is not None:
        tab = db.session.get(Tab, payment.tab_id)
        sentence = _("Genuine, but already claimed to %(tab)s (%(money)s). Do not take it again.",
                     tab=tab.label, money=what)  # fmt: skip
        return Answer(code, VerifyOutcome.CLAIMED, sentence)
    if payment.purpose != Purpose.C2B:
        sentence = _("Genuine, but already counted (%(money)s): it is not a tab's to take.",
                     money=what)  # fmt: skip
        return Answer(code, VerifyOutcome.CLAIMED, sentence)
    sentence = _("Genuine: %(money)s, not yet claimed.", money=what)
    return Answer(code, VerifyOutcome.GENUINE, sentence, claimable=payment, tabs=_open_tabs(bar))


def _money(bar: Bar, payment: Payment) -> str:
    name = db.session.scalar(
        select(C2BConfirmation.payer_name).where(C2BConfirmation.payment_id == payment.id)
    )
    who = name or (mask_phone(payment.phone) if payment.phone else None)
    at = local_time(payment.transaction_time or payment.settled_at, bar.timezone, "%H:%M")
    if who:
        return _("%(amount)s from %(name)s at %(time)s", amount=kes(payment.amount), name=who,
                 time=at)  # fmt: skip
    return _("%(amount)s at %(time)s", amount=kes(payment.amount), time=at)


def _open_tabs(bar: Bar, limit: int = 8) -> list[Tab]:
    return list(
        db.session.scalars(
            select(Tab)
            .where(Tab.bar_id == bar.id, Tab.status == "open")
            .order_by(Tab.opened_at.desc(), Tab.id.desc())
            .limit(limit)
        )
    )


def _recent(bar_id: int, code: str) -> InitiatorRequest | None:
    since = utcnow() - timedelta(minutes=REUSE_MINUTES)
    return db.session.scalar(
        select(InitiatorRequest)
        .where(
            InitiatorRequest.bar_id == bar_id,
            InitiatorRequest.kind == InitiatorKind.STATUS,
            InitiatorRequest.subject == code,
            or_(
                InitiatorRequest.state == InitiatorState.WAITING,
                InitiatorRequest.outcome.in_(SETTLED_ANSWERS),
            ),
            InitiatorRequest.created_at >= since,
        )
        .order_by(InitiatorRequest.id.desc())
        .limit(1)
    )


def present(bar: Bar, request: InitiatorRequest) -> Answer:
    """The answer a Transaction Status request gives now (waiting until its result comes)."""
    initiator.expire(request, ANSWER_WAIT_SECONDS)
    code, outcome = request.subject, request.outcome
    if request.state == InitiatorState.WAITING or outcome is None:
        return Answer(code, None, _("Asking M-Pesa about %(code)s…", code=code), request)
    if outcome == VerifyOutcome.GENUINE:
        local = from_records(bar, code)  # its confirmation may have arrived since
        if local is not None:
            local.request = request
            return local
    return Answer(code, outcome, _sentence(bar, request), request, owner_hint=_hint(outcome))


def _sentence(bar: Bar, request: InitiatorRequest) -> str:
    paid = transaction_status.paid(request.parameters or {})
    outcome = request.outcome
    if outcome == VerifyOutcome.GENUINE:
        at = local_time(paid.paid_at, bar.timezone, "%H:%M") if paid.paid_at else "—"
        return _(
            "Genuine: %(amount)s from %(name)s at %(time)s, paid to this bar. PesaTab has not "
            "received M-Pesa's notice of it yet, so it cannot be claimed to a tab here.",
            amount=kes(paid.amount), name=paid.payer or _("(no name)"), time=at,
        )  # fmt: skip
    if outcome == VerifyOutcome.OTHER_BUSINESS:
        return _("Paid to another business (%(business)s), not to this bar. Do not accept it.",
                 business=paid.paid_to or _("not named"))  # fmt: skip
    if outcome == VerifyOutcome.NOT_COMPLETED:
        return _("M-Pesa says this payment is not complete (%(status)s). Do not accept it.",
                 status=paid.status or "—")  # fmt: skip
    if outcome == VerifyOutcome.NOT_FOUND:
        return _("Not found: M-Pesa has no payment with the code %(code)s. Do not accept it.",
                 code=request.subject)  # fmt: skip
    if outcome == VerifyOutcome.NO_ANSWER:
        return _(
            "M-Pesa did not answer in time. Do not accept the code yet: check it again in a minute."
        )
    if outcome == VerifyOutcome.BAD_CREDENTIALS:
        return _(
            "M-Pesa refused PesaTab's initiator credentials, so the code could not be checked. "
            "Do not accept it until you see the money arrive."
        )
    return _("M-Pesa would not answer the question (%(reason)s). Check the code again in a "
             "minute.", reason=request.result_desc or "—")  # fmt: skip


def _hint(outcome: str) -> str | None:
    if outcome != VerifyOutcome.BAD_CREDENTIALS:
        return None
    return _(
        "Owner: check the initiator name and password on the M-Pesa page (M-Pesa answered 2001, "
        "the initiator information is invalid, or the credential is locked)."
    )


def request_for(bar: Bar, request_id: int) -> InitiatorRequest | None:
    """The bar's own Transaction Status request (another bar's: None)."""
    return db.session.scalar(
        select(InitiatorRequest).where(
            InitiatorRequest.id == request_id,
            InitiatorRequest.bar_id == bar.id,
            InitiatorRequest.kind == InitiatorKind.STATUS,
        )
    )

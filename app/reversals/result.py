"""What M-Pesa's answer to a reversal means, and what it changes (HANDLERS[REVERSAL] of
app/payments/initiator.py: `settled` runs inside the transaction that moves the request, once).

The refusal codes are not all documented (daraja.md: "already reversed, too old, insufficient
balance in the business account"): R000001 and R000002 are what integrators report for
"already reversed" and "invalid original transaction"; "1" is M-Pesa's insufficient-balance
code elsewhere. M-Pesa's words are read too, and kept and shown whatever they map to.
"""

from __future__ import annotations

import re

from sqlalchemy import select, update

from app import audit
from app.enums import InitiatorState, PaymentStatus, ReversalOutcome, ReversalState
from app.extensions import db
from app.models import InitiatorRequest, Payment, Reversal, Tab, utcnow
from app.mpesa.initiator import InitiatorResult
from app.payments.transaction_status import CREDENTIAL_CODES
from app.tabs.totals import totals

_WORDS = (
    (ReversalOutcome.ALREADY_REVERSED, re.compile(r"already\s+(been\s+)?revers", re.I)),
    (
        ReversalOutcome.LOW_BALANCE,
        re.compile(r"insufficient|not enough|balance is (too )?low", re.I),
    ),
    (ReversalOutcome.TOO_OLD, re.compile(r"too old|older than|expired|period|time limit", re.I)),
    (ReversalOutcome.NOT_FOUND, re.compile(r"invalid|does not exist|not found|no such", re.I)),
)
_CODES = {
    "R000001": ReversalOutcome.ALREADY_REVERSED,
    "R000002": ReversalOutcome.NOT_FOUND,
    "1": ReversalOutcome.LOW_BALANCE,
}
STATE_OF = {
    ReversalOutcome.REVERSED: ReversalState.REVERSED,
    ReversalOutcome.NO_ANSWER: ReversalState.NO_ANSWER,
}
# A result may replace "no answer" (the queue timed out, then the result came after all).
MOVABLE = (ReversalState.REQUESTED, ReversalState.NO_ANSWER)
# Where an owner's settling by hand leaves a reversal without an answer; its outcome stays
# NO_ANSWER (M-Pesa never said), which tells it from one M-Pesa answered.
MANUAL_STATES = (ReversalState.REVERSED, ReversalState.REFUSED)


def outcome(result: InitiatorResult, ours: set[str], subject: str) -> str | None:
    """The ReversalOutcome of `result`; None when it names another transaction than the one
    reversed (`subject`): that answer must not settle this reversal."""
    code = result.result_code
    if code in CREDENTIAL_CODES:
        return ReversalOutcome.BAD_CREDENTIALS
    if code == "0":
        original = str(result.parameters.get("OriginalTransactionID") or "").strip().upper()
        return ReversalOutcome.REVERSED if not original or original == subject else None
    return refusal(code, result.result_desc)


def refusal(code: str | None, words: str | None) -> str:
    """The ReversalOutcome a refusal's code or words stand for."""
    if code in _CODES:
        return _CODES[code]
    for found, pattern in _WORDS:
        if pattern.search(words or ""):
            return found
    return ReversalOutcome.REFUSED


def timed_out() -> str:
    return ReversalOutcome.NO_ANSWER


def refused(code: str | None) -> str:
    if code in CREDENTIAL_CODES:
        return ReversalOutcome.BAD_CREDENTIALS
    return _CODES.get(code or "", ReversalOutcome.REFUSED)


def settled(request_id: int, outcome_: str) -> None:
    """Move the reversal the request belongs to; on REVERSED give the tab its balance back.
    Does not commit (the request's own move commits it all)."""
    reversal = db.session.scalar(select(Reversal).where(Reversal.request_id == request_id))
    if reversal is None:
        return
    request = db.session.get(InitiatorRequest, request_id, populate_existing=True)
    state = STATE_OF.get(outcome_, ReversalState.REFUSED)
    values = {"state": state, "outcome": outcome_, "settled_at": utcnow()}
    if request is not None and request.state != InitiatorState.TIMED_OUT:
        values["mpesa_desc"] = (request.result_desc or "")[:255] or None
        values["reversal_receipt"] = _receipt(request.parameters)
    moved = db.session.execute(
        update(Reversal)
        .where(Reversal.id == reversal.id, Reversal.state.in_(MOVABLE))
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        _late(reversal, outcome_)
        return
    db.session.expire(reversal)
    details = {"payment_id": reversal.payment_id, "amount": reversal.amount, "outcome": outcome_}
    if state == ReversalState.REVERSED:
        give_back(reversal)
        audit.record_system("reversal.reversed", bar_id=reversal.bar_id, **details)
    elif state == ReversalState.REFUSED:
        audit.record_system("reversal.refused", bar_id=reversal.bar_id, **details)
    else:
        audit.record_system("reversal.no_answer", bar_id=reversal.bar_id, **details)


def _late(reversal: Reversal, outcome_: str) -> None:
    """M-Pesa answered after an owner settled the reversal by hand (app/reversals/manual.py):
    the answer is kept on its request and changes nothing; the audit log says what it was."""
    db.session.refresh(reversal)
    if reversal.outcome != ReversalOutcome.NO_ANSWER or reversal.state not in MANUAL_STATES:
        return
    audit.record_system(
        "reversal.late_answer",
        bar_id=reversal.bar_id,
        payment_id=reversal.payment_id,
        amount=reversal.amount,
        outcome=outcome_,
        reversal=reversal.id,
    )


def give_back(reversal: Reversal) -> None:
    """The payment counts for less on its tab; a settled tab that now owes money reopens. Run
    once per reversal, by whoever moved it to REVERSED (M-Pesa's result, or an owner by hand)."""
    db.session.execute(
        update(Payment)
        .where(Payment.id == reversal.payment_id, Payment.status == PaymentStatus.PAID)
        .values(reversed_amount=Payment.reversed_amount + reversal.amount)
        .execution_options(synchronize_session=False)
    )
    if reversal.tab_id is None:
        return
    tab = db.session.get(Tab, reversal.tab_id, populate_existing=True)
    if tab is None or tab.status != "settled" or totals(tab).balance <= 0:
        return
    tab.status, tab.closed_at, tab.closed_by_id, tab.outstanding_at_close = "open", None, None, None
    audit.record_system("tab.reopened", bar_id=tab.bar_id, tab_id=tab.id, reversal=reversal.id)


def _receipt(parameters: dict | None) -> str | None:
    value = str((parameters or {}).get("TransactionID") or "").strip().upper()
    return value[:20] or None

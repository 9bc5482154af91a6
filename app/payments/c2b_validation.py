"""C2B validation: Safaricom asks a bar's validation URL before the money moves (only where it
enabled external validation for the shortcode), and takes its answer as final.

The bar chooses (on the M-Pesa page) to accept everything, the default, or to refuse a PayBill
payment whose account is not an open tab's code, answered `C2B00012` (invalid account number).
The account is matched as forgivingly as a confirmation's (TAB42, tab 0042: the same
`c2b.open_tab_for`). A Till (Buy Goods) payment has no account to check: never refused.

Every question is stored as it arrived, then decided under a deadline of its own
(C2B_VALIDATION_DEADLINE_MS, well inside Daraja's ~8 s): a decision that cannot be made in time,
or fails, ACCEPTS, because a bar that cannot decide must not lose the money. The storing, the
decision and the recording of the answer run in a small worker pool, so a hung database holds
a worker, never Safaricom's request; the first answer settled (the decision or the deadline)
is both the one sent and the one recorded.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import select

from app import audit
from app.extensions import db
from app.models import (
    Bar,
    C2BRegistration,
    C2BValidation,
    C2BValidationRule,
    MpesaCredential,
    utcnow,
)
from app.payments import bodies, c2b

ACCEPT_ALL = "accept_all"
OPEN_TABS = "open_tabs"
RULES = (ACCEPT_ALL, OPEN_TABS)
ACCEPTED = "0"
INVALID_ACCOUNT = "C2B00012"
PAYBILL_TYPES = ("Pay Bill", "CustomerPayBillOnline")  # v2 and v1 words
MAX_DEADLINE_MS = 6000  # Daraja gives up at about 8 s; leave room for the network
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="c2b-validation")


@dataclass(frozen=True)
class Decision:
    code: str  # "0" or a C2B000xx refusal
    reason: str

    @property
    def body(self) -> dict[str, str]:
        """The answer in Daraja's words."""
        return {"ResultCode": self.code, "ResultDesc": "Accepted" if self.accepts else "Rejected"}

    @property
    def accepts(self) -> bool:
        return self.code == ACCEPTED


DEADLINE = Decision(ACCEPTED, "deadline")


class _Exchange:
    """One question's answer: the first settled wins (the worker's decision or the deadline)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answer: Decision | None = None
        self.recorded = threading.Event()

    def settle(self, decision: Decision) -> Decision:
        with self._lock:
            if self._answer is None:
                self._answer = decision
            return self._answer

    @property
    def settled(self) -> bool:
        with self._lock:
            return self._answer is not None


def answer(secret: str, body: bytes, *, source: str | None, size: int, too_large: bool) -> dict:
    """Store the question, decide it within the deadline, and return Daraja's answer (accepted
    whenever the decision is late or fails). Never raises."""
    started = time.monotonic()
    exchange = _Exchange()
    app = current_app._get_current_object()
    seconds = min(app.config["C2B_VALIDATION_DEADLINE_MS"], MAX_DEADLINE_MS) / 1000
    try:
        _POOL.submit(_work, app, exchange, started, secret, body, source, size, too_large)
        exchange.recorded.wait(max(0.0, seconds - (time.monotonic() - started)))
    except Exception:  # a pool that cannot start work: accept, as a late decision would
        app.logger.exception("C2B validation could not be decided; accepted")
    decision = exchange.settle(DEADLINE)
    if decision.reason == DEADLINE.reason:
        app.logger.warning("C2B validation not decided within %.1f s; accepted", seconds)
    return decision.body


def _work(app: Flask, exchange: _Exchange, started: float, *args) -> None:
    with app.app_context():
        try:
            record = _store(*args)
            if not exchange.settled:  # past the deadline already: do not bother deciding
                exchange.settle(_decide_safely(app, record))
            decided = exchange.settle(DEADLINE)  # whichever was settled first
            record.result_code, record.reason = decided.code, decided.reason
            record.answered_ms = int((time.monotonic() - started) * 1000)
            db.session.commit()
        except Exception:
            exchange.settle(Decision(ACCEPTED, "error"))
            app.logger.exception("C2B validation kept without its answer")
            db.session.rollback()
        finally:
            exchange.recorded.set()


def _store(secret: str, body: bytes, source: str | None, size: int, too_large: bool):
    """Commit the question as it arrived (and the bar its URL secret names) before reading it."""
    bar_id = db.session.scalar(
        select(C2BRegistration.bar_id).where(C2BRegistration.url_secret == secret[:64])
    )
    record = C2BValidation(
        bar_id=bar_id,
        raw_body=bodies.as_stored(body),
        body_size=size,
        source_address=(source or "")[:64] or None,
        reason="too_large" if too_large else None,
    )
    db.session.add(record)
    db.session.commit()
    return record


def _decide_safely(app: Flask, record: C2BValidation) -> Decision:
    try:
        return decide(record)
    except Exception:
        app.logger.exception("C2B validation %s could not be decided; accepted", record.id)
        db.session.rollback()
        return Decision(ACCEPTED, "error")


def decide(record: C2BValidation) -> Decision:
    """The bar's answer to a stored question; fills in the account and amount it read, and
    leaves the answer to the caller to record."""
    if record.reason == "too_large":
        return Decision(ACCEPTED, "too_large")
    if record.bar_id is None:
        return Decision(ACCEPTED, "unknown_url")
    fields = bodies.json_object(record.raw_body)
    if fields is None:
        return Decision(ACCEPTED, "malformed")
    record.account = c2b.field_text(fields, "BillRefNumber", 40)
    record.amount_text = c2b.field_text(fields, "TransAmount", 20) or None
    if rule_of(record.bar_id) != OPEN_TABS:
        return Decision(ACCEPTED, ACCEPT_ALL)
    cred = db.session.scalar(select(MpesaCredential).where(MpesaCredential.bar_id == record.bar_id))
    if cred is None:
        return Decision(ACCEPTED, "error")
    if c2b.field_text(fields, "TransactionType", 40) not in PAYBILL_TYPES or cred.till_number:
        return Decision(ACCEPTED, "till")  # Buy Goods (a till bar): no account to check
    if c2b.open_tab_for(record.bar_id, record.account) is None:
        return Decision(INVALID_ACCOUNT, "no_tab")
    return Decision(ACCEPTED, "tab")


def rule_of(bar_id: int) -> str:
    """The bar's validation rule (accept_all unless it chose otherwise)."""
    rule = db.session.scalar(
        select(C2BValidationRule.rule).where(C2BValidationRule.bar_id == bar_id)
    )
    return rule if rule in RULES else ACCEPT_ALL


def set_rule(bar: Bar, rule: str, user_id: int | None) -> bool:
    """Choose the bar's rule (audited); False when `rule` is not one. Commits."""
    if rule not in RULES:
        return False
    found = db.session.scalar(select(C2BValidationRule).where(C2BValidationRule.bar_id == bar.id))
    if found is None:
        found = C2BValidationRule(bar_id=bar.id)
        db.session.add(found)
    was = found.rule or ACCEPT_ALL
    found.rule, found.changed_by = rule, user_id
    found.changed_at = utcnow()
    audit.record("c2b.validation_rule", bar_id=bar.id, rule=rule, was=was)
    db.session.commit()
    return True

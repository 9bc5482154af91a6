"""What an import found, and the manager's actions on its lines.

The report: lines matched to payments, orphans (money nobody in PesaTab asked for: paid from
the phone menu), and payments the statement does not show. An orphan can be attached to a
tab: it becomes a payment that starts as paid (`states.paid_without_push`), claimed with a
conditional UPDATE so two managers cannot attach one line twice. An orphan that could be a
payment still waiting for its receipt is offered as "this is payment N" instead (adoption.py).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app import audit
from app.enums import PaymentStatus, Purpose
from app.extensions import db
from app.i18n import N_
from app.models import Payment, StatementImport, StatementLine, Tab
from app.mpesa import catalogue
from app.payments import states
from app.statements import menu_money
from app.statements.adoption import could_be, pending_candidates, receipt_pending_payments
from app.statements.reader import MASKED_PHONE, StatementError

REPORT_LIMIT = 200


@dataclass(frozen=True)
class Report:
    statement: StatementImport
    counts: dict[str, int]
    matched: list  # (line, tab label or None)
    differs: list  # (line, payment amount in KES)
    orphans: list[StatementLine]
    missing: list[Payment]
    missing_count: int
    maybe: dict  # orphan line id -> the paid-without-receipt payments it could be
    limit: int = REPORT_LIMIT
    menu: dict = field(default_factory=dict)  # line id -> menu_money.Note (C2B money)
    unclaimed: int = 0  # matched lines that are menu money no cashier has claimed yet


def _in_statement(record: StatementImport):
    """This import's lines, and the bar's lines from other imports inside its period."""
    inside = StatementLine.import_id == record.id
    if record.period_start and record.period_end:
        inside = or_(
            inside, StatementLine.completion_time.between(record.period_start, record.period_end)
        )
    return (StatementLine.bar_id == record.bar_id) & inside


def line_of(record: StatementImport, line_id: int) -> StatementLine | None:
    """The line `line_id` if it is one `record`'s page shows (its own, or the bar's inside its
    period), else None: an action on a line is only ever taken from that page."""
    return db.session.scalar(
        select(StatementLine).where(StatementLine.id == line_id, _in_statement(record))
    )


def report(record: StatementImport) -> Report:
    """What the statement says next to what PesaTab says, a few small queries (lists capped)."""
    where = _in_statement(record)
    counts = dict(
        db.session.execute(
            select(StatementLine.match_state, func.count())
            .where(where)
            .group_by(StatementLine.match_state)
        ).all()
    )
    ordered = (StatementLine.completion_time, StatementLine.id)
    matched = db.session.execute(
        select(StatementLine, Tab.label)
        .outerjoin(Tab, Tab.id == StatementLine.attached_tab_id)
        .where(where, StatementLine.match_state == "matched")
        .order_by(*ordered)
        .limit(REPORT_LIMIT)
    ).all()
    differs = db.session.execute(
        select(StatementLine, Payment.amount)
        .join(Payment, Payment.id == StatementLine.payment_id)
        .where(where, StatementLine.match_state == "amount_differs")
        .order_by(*ordered)
        .limit(REPORT_LIMIT)
    ).all()
    orphans = db.session.scalars(
        select(StatementLine)
        .where(where, StatementLine.match_state == "orphan")
        .order_by(*ordered)
        .limit(REPORT_LIMIT)
    ).all()
    missing = _missing(record)
    shown = [line for line, _label in matched] + list(orphans)
    return Report(
        record,
        counts,
        list(matched),
        list(differs),
        list(orphans),
        list(
            db.session.scalars(missing.order_by(Payment.settled_at, Payment.id).limit(REPORT_LIMIT))
        ),
        db.session.scalar(select(func.count()).select_from(missing.subquery())),
        _maybe(record.bar_id, orphans),
        menu=menu_money.notes(record.bar_id, shown),
        unclaimed=menu_money.unclaimed_count(record.bar_id, where),
    )


def _maybe(bar_id: int, orphans) -> dict[int, list[Payment]]:
    if not orphans:
        return {}
    times = [line.completion_time for line in orphans]
    pending = list(db.session.scalars(receipt_pending_payments(bar_id, min(times), max(times))))
    found = {line.id: [p for p in pending if could_be(line, p)] for line in orphans}
    return {line_id: payments for line_id, payments in found.items() if payments}


def _missing(record: StatementImport):
    """Paid in PesaTab during the statement's period, but no line of the bar has the receipt
    (or the payment has no receipt yet: someone should look at it by hand)."""
    known = exists().where(
        StatementLine.bar_id == record.bar_id, StatementLine.receipt == Payment.receipt
    )
    query = select(Payment).where(
        Payment.bar_id == record.bar_id,
        Payment.status == PaymentStatus.PAID,
        or_(Payment.receipt.is_(None), ~known),
    )
    if record.period_start and record.period_end:
        query = query.where(Payment.settled_at.between(record.period_start, record.period_end))
    return query


def open_tabs(bar_id: int) -> list[tuple[int, str]]:
    return list(
        db.session.execute(
            select(Tab.id, Tab.label)
            .where(Tab.bar_id == bar_id, Tab.status == "open")
            .order_by(Tab.opened_at.desc())
        ).all()
    )


def attach(line: StatementLine, tab: Tab, user_id: int | None) -> Payment:
    """Record an orphan line (money paid from the phone menu) as a paid payment on `tab`.
    Exactly once: the receipt is unique on payments and the line is claimed conditionally,
    so a double click or two managers at once make one payment. Commits."""

    def already() -> StatementError:
        return StatementError(
            N_(
                "Already attached: receipt %(receipt)s is a payment in PesaTab, so nothing changed."
            ),
            receipt=line.receipt,
        )

    if tab.bar_id != line.bar_id:
        raise StatementError(N_("That tab belongs to another bar."))
    if line.match_state != "orphan" or line.payment_id is not None:
        raise already()
    if tab.status != "open":
        raise StatementError(N_("%(tab)s is closed; choose an open tab."), tab=tab.label)
    if line.paid_in_cents % 100:
        raise StatementError(
            N_(
                "KES %(amount)s is not whole shillings; tabs take whole shillings, so settle this "
                "one by hand."
            ),
            amount=f"{line.paid_in_cents / 100:,.2f}",
        )
    maybe = pending_candidates(line)
    if maybe:
        raise StatementError(
            N_(
                "Receipt %(receipt)s may be payment %(ids)s, already paid in PesaTab but without "
                'its receipt. Attaching it to a tab would count the money twice: use "This is '
                'payment …" instead.'
            ),
            receipt=line.receipt,
            ids=" / ".join(str(p.id) for p in maybe),
        )
    payment = _menu_payment(line, tab, user_id)
    db.session.add(payment)
    try:
        db.session.flush()
        if not _claim(line, payment, tab):
            db.session.rollback()
            raise already()
        audit.record(
            "statement.line_attached",
            bar_id=tab.bar_id,
            user_id=user_id,
            line_id=line.id,
            tab_id=tab.id,
            payment_id=payment.id,
            receipt=line.receipt,
        )
        db.session.commit()
    except IntegrityError:  # the receipt is on a payment already (another click won)
        db.session.rollback()
        raise already() from None
    return payment


def _claim(line: StatementLine, payment: Payment, tab: Tab) -> bool:
    """Point the line at the payment only if no one else has: exactly one caller wins."""
    return (
        db.session.execute(
            update(StatementLine)
            .where(StatementLine.id == line.id, StatementLine.payment_id.is_(None))
            .values(payment_id=payment.id, attached_tab_id=tab.id, match_state="matched")
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def _menu_payment(line: StatementLine, tab: Tab, user_id: int | None) -> Payment:
    phone = line.other_party.split(" - ", 1)[0].strip()
    return states.paid_without_push(
        amount=line.paid_in_cents // 100,
        receipt=line.receipt,
        paid_at=line.completion_time,
        bar_id=tab.bar_id,
        tab_id=tab.id,
        purpose=Purpose.C2B,
        phone=phone if MASKED_PHONE.fullmatch(phone) else "",
        account_reference=re.sub(r"[^A-Za-z0-9]", "", line.account_no)[:12],
        description="M-Pesa menu",
        callback_token=secrets.token_hex(20),
        message=catalogue.PAID_FROM_MENU % {"receipt": line.receipt},
        initiated_by_id=user_id,
    )

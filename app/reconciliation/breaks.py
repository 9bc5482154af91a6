"""Breaks: anything that does not add up, each with what to do about it.

The list is every break open now, whatever day it began on: a break does not go away because
midnight passed, only when it is resolved (the receipt arrives, the payment settles, the tab's
money comes in, or someone marks it as checked after comparing it with the statement). Each
knows whether it began in the period on screen, so the page can mark those.

Callbacks whose token matched no payment have no bar; operators see those, not owners.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.sql.expression import ColumnElement

from app.enums import STATE_FLAGS, FlagReason, PaymentStatus
from app.extensions import db
from app.i18n import N_, _
from app.models import Bar, CallbackEvent, Payment, StatementLine, Tab, utcnow
from app.payments.states import IN_FLIGHT
from app.reconciliation import c2b_breaks
from app.tabs import totals as tab_totals

SILENT_AFTER = timedelta(minutes=30)
LIMIT = 100  # per source; the page says when there are more
# Breaks that describe a state of a payment: they end with it, nobody marks them as checked.
STATE_KINDS = (*STATE_FLAGS, "silent", c2b_breaks.UNCLAIMED)

# flag_reason -> (what happened, what to do)
FLAG_SENTENCES: dict[str, tuple[str, str]] = {
    FlagReason.LATE_SUCCESS: (
        N_("Paid after the request had failed"),
        N_(
            "Money arrived after the request had failed: check the customer was not asked twice; "
            "refund if so."
        ),
    ),
    FlagReason.AMOUNT_MISMATCH: (
        N_("M-Pesa reported a different amount"),
        N_(
            "The amount paid differs from the amount asked: check the M-Pesa statement and settle "
            "the difference with the customer."
        ),
    ),
    FlagReason.AMOUNT_MISSING: (
        N_("M-Pesa said paid but not how much"),
        N_(
            "PesaTab has not counted this money: it counts it once M-Pesa confirms the payment "
            "(PesaTab asks M-Pesa by itself) or the M-Pesa statement shows it. Check the statement "
            "before asking the customer again."
        ),
    ),
    FlagReason.UNKNOWN_RESULT_CODE: (
        N_("M-Pesa answered with a code PesaTab does not know"),
        N_("Check the M-Pesa statement for this payment before asking the customer again."),
    ),
    FlagReason.CHECKOUT_MISMATCH: (
        N_("M-Pesa's request number does not match"),
        N_(
            "Two answers from M-Pesa disagree about this request: check the statement for this "
            "amount before asking again."
        ),
    ),
    FlagReason.RECEIPT_REUSED: (
        N_("Receipt already credited to another payment"),
        N_("M-Pesa reported one receipt for two payments: check the statement; only one was paid."),
    ),
    FlagReason.SECOND_RECEIPT: (
        N_("A second receipt for a paid payment"),
        N_(
            "M-Pesa reported two receipts for one payment: check the statement; the customer may "
            "have paid twice and be owed a refund."
        ),
    ),
    FlagReason.NEVER_CONFIRMED: (
        N_("M-Pesa never confirmed the request"),
        N_("Check the M-Pesa statement for this amount before asking the customer again."),
    ),
}
OTHER_FLAG = N_("Check this payment against the M-Pesa statement, then mark it as checked.")
# These flags describe a state; the state itself is checked, so they end when it does.
RECEIPT_PENDING = (
    N_("Paid, no M-Pesa receipt yet"),
    N_("Wait for the M-Pesa callback or import the statement; the receipt fills in."),
)
SILENT = (
    N_("No answer from M-Pesa for 30 minutes"),
    N_(
        "M-Pesa has not answered for 30 minutes: check the M-Pesa statement or the customer's SMS "
        "before asking again."
    ),
)
CALLBACK_SENTENCES = {
    "mismatch": (
        N_("Callback that does not match its payment"),
        N_(
            "M-Pesa's news does not match what was asked; it was kept, not applied. Compare it "
            "with the M-Pesa statement before crediting anything."
        ),
    ),
    "malformed": (
        N_("Callback PesaTab could not read"),
        N_("It was kept, not applied. Check the M-Pesa statement for a payment at this time."),
    ),
}
TAB_OUTSTANDING = N_("Tab closed with money outstanding")
STATEMENT_ONLY = (
    N_("Money in the M-Pesa statement that PesaTab did not ask for"),
    N_(
        "Someone paid from the M-Pesa menu: attach it to its tab on the statement page (or say "
        "which payment it is); it stays here until then."
    ),
)


@dataclass(frozen=True)
class Break:
    kind: (
        str  # a flag reason, receipt_pending, silent, callback_mismatch|malformed,
        # tab_outstanding, statement_only, c2b_unclaimed, c2b_kept
    )
    what: str
    action: str
    when: datetime
    amount: int | None
    payment_id: int | None = None
    tab_id: int | None = None
    event_id: int | None = None
    statement_line: tuple[int, int] | None = None  # (import id, line id)
    confirmation_id: int | None = None  # a C2B confirmation kept without being applied
    label: str = ""
    detail: str | None = None
    in_period: bool = False

    @property
    def checkable(self) -> tuple[str, int] | None:
        """What a person marks as checked to close this break (app/payments/review.py): a
        kept callback or C2B confirmation, a closed tab, or a payment's flag. None for breaks
        that describe a state (no receipt yet, no answer, menu money unclaimed): those close
        themselves when the state ends."""
        if self.event_id is not None:
            return "callback", self.event_id
        if self.confirmation_id is not None:
            return "c2b", self.confirmation_id
        if self.tab_id is not None and self.kind == "tab_outstanding":
            return "tab", self.tab_id
        if self.payment_id is not None and self.kind not in STATE_KINDS:
            return "payment", self.payment_id
        return None

    @property
    def key(self) -> str:
        """Stable and unique on the page: `break-payment-42-late_success`, `break-callback-7`."""
        if self.event_id:
            return f"break-callback-{self.event_id}"
        if self.confirmation_id:
            return f"break-c2b-{self.confirmation_id}"
        if self.statement_line:
            return f"break-statement-{self.statement_line[1]}"
        if self.payment_id:
            return f"break-payment-{self.payment_id}-{self.kind}"
        return f"break-tab-{self.tab_id}"


@dataclass(frozen=True)
class Breaks:
    items: list[Break]
    more: bool  # some source had more than LIMIT open breaks


def open_breaks(bar: Bar, period: tuple[datetime, datetime], now: datetime | None = None) -> Breaks:
    """Every open break of `bar`, newest first; `period` (naive UTC) marks those that began in
    it."""
    now = now or utcnow()
    sources = (
        _payment_breaks(bar, now),
        _callback_breaks(bar),
        _tab_breaks(bar),
        _statement_breaks(bar),
        _menu_breaks(bar, now),
    )
    items = [b for found, _more in sources for b in found]
    lo, hi = period
    items = [replace(b, in_period=lo <= b.when < hi) for b in items]
    items.sort(key=lambda b: (b.when, b.key), reverse=True)
    return Breaks(items, any(more for _found, more in sources))


def _payment_breaks(bar: Bar, now: datetime) -> tuple[list[Break], bool]:
    pushed = func.coalesce(Payment.sent_at, Payment.created_at)
    flagged = and_(
        Payment.flagged.is_(True),
        Payment.flag_reason.is_not(None),
        Payment.flag_reason.not_in(STATE_FLAGS),
    )
    no_receipt = and_(Payment.status == _inline(PaymentStatus.PAID), Payment.receipt.is_(None))
    silent = and_(Payment.status.in_([_inline(s) for s in IN_FLIGHT]), pushed < now - SILENT_AFTER)
    # Each branch implies ix_payment_bar_id_may_break_created_at's predicate (MAY_BREAK_SQL):
    # the bar's few such payments are read from it, newest first, not a year of them.
    rows = db.session.execute(
        select(
            Payment.id,
            Payment.status,
            Payment.amount,
            Payment.paid_amount,
            Payment.flagged,
            Payment.flag_reason,
            Payment.receipt,
            Payment.created_at,
            Payment.sent_at,
        )
        .where(Payment.bar_id == bar.id, or_(flagged, no_receipt, silent))
        .order_by(Payment.created_at.desc(), Payment.id.desc())
        .limit(LIMIT + 1)
    ).all()
    found = [b for row in rows[:LIMIT] for b in _breaks_of(row, now)]
    return found, len(rows) > LIMIT


def _inline(value: str | int) -> ColumnElement:
    """A constant written into the SQL rather than bound as a parameter. A partial index can be
    used only when the planner sees the values: a prepared statement's generic plan (psycopg
    prepares a query run 5 times) sees parameters, and would read all the bar's rows instead."""
    return literal(value, literal_execute=True)


def _breaks_of(row, now: datetime) -> list[Break]:
    label = _("Payment %(id)s", id=row.id)
    common = {"amount": row.amount, "payment_id": row.id, "label": label}
    found = []
    if row.flagged and row.flag_reason and row.flag_reason not in STATE_FLAGS:
        what, action = FLAG_SENTENCES.get(row.flag_reason, (None, OTHER_FLAG))
        if what:
            what = _(what)
        else:  # a reason without its sentence yet: its words, as the payments list shows them
            what = _("Flagged: %(reason)s", reason=_(row.flag_reason.replace("_", " ")))
        detail = None
        if row.flag_reason == FlagReason.AMOUNT_MISMATCH and row.paid_amount not in (
            None,
            row.amount,
        ):
            detail = _("M-Pesa reported KES %(amount)s", amount=format(row.paid_amount, ","))
        found.append(
            Break(row.flag_reason, what, _(action), row.created_at, detail=detail, **common)
        )
    if row.status == PaymentStatus.PAID and row.receipt is None:
        found.append(
            Break(FlagReason.RECEIPT_PENDING, *_both(RECEIPT_PENDING), row.created_at, **common)
        )
    pushed = row.sent_at or row.created_at
    if row.status in IN_FLIGHT and pushed < now - SILENT_AFTER:
        found.append(Break("silent", *_both(SILENT), pushed, **common))
    return found


def _both(sentences: tuple[str, str]) -> tuple[str, str]:
    """What happened and what to do, in the reader's language."""
    return _(sentences[0]), _(sentences[1])


def _callback_breaks(bar: Bar) -> tuple[list[Break], bool]:
    rows = db.session.execute(
        select(
            CallbackEvent.id,
            CallbackEvent.disposition,
            CallbackEvent.detail,
            CallbackEvent.received_at,
            CallbackEvent.payment_id,
            Payment.amount,
        )
        .outerjoin(Payment, Payment.id == CallbackEvent.payment_id)
        .where(
            CallbackEvent.bar_id == bar.id,
            CallbackEvent.disposition.in_(CALLBACK_SENTENCES),
            CallbackEvent.checked_at.is_(None),
        )
        .order_by(CallbackEvent.received_at.desc(), CallbackEvent.id.desc())
        .limit(LIMIT + 1)
    ).all()
    found = [
        Break(
            f"callback_{row.disposition}",
            *_both(CALLBACK_SENTENCES[row.disposition]),
            row.received_at,
            row.amount,
            payment_id=row.payment_id,
            event_id=row.id,
            label=_("Callback %(id)s for payment %(payment)s", id=row.id, payment=row.payment_id)
            if row.payment_id
            else _("Callback %(id)s", id=row.id),
            detail=row.detail,
        )
        for row in rows[:LIMIT]
    ]
    return found, len(rows) > LIMIT


def _tab_breaks(bar: Bar) -> tuple[list[Break], bool]:
    """Closed tabs (void, or settled) whose lines come to more than their paid payments.

    A closed tab's balance never rises (its lines are fixed and a payment only ever becomes
    paid), so only those closed with money outstanding can owe now (or those closed without it
    being recorded): ix_tab_bar_id_may_owe_closed_at holds just them. Their balance is then
    counted as ever, as some of that money may have come in since."""
    paid = (
        select(func.coalesce(func.sum(Payment.amount), 0))
        .where(
            Payment.tab_id == Tab.id, Payment.bar_id == bar.id, Payment.status == PaymentStatus.PAID
        )
        .scalar_subquery()
    )
    balance = tab_totals.line_total(Tab.id) - paid - tab_totals.tendered(Tab.id)
    may_owe = and_(  # MAY_OWE_SQL, word for word
        Tab.status != _inline("open"),
        or_(Tab.outstanding_at_close.is_(None), Tab.outstanding_at_close > _inline(0)),
    )
    rows = db.session.execute(
        select(
            Tab.id,
            Tab.label,
            Tab.status,
            Tab.void_reason,
            Tab.closed_at,
            Tab.opened_at,
            balance.label("balance"),
        )
        .where(Tab.bar_id == bar.id, may_owe, Tab.checked_at.is_(None), balance > 0)
        .order_by(Tab.closed_at.desc(), Tab.id.desc())
        .limit(LIMIT + 1)
    ).all()
    found = [
        Break(
            "tab_outstanding",
            _(TAB_OUTSTANDING),
            _(
                "KES %(amount)s on this tab was never paid: collect it if it is owed; if not, "
                "it is a loss to note in the books.",
                amount=format(int(row.balance), ","),
            ),
            row.closed_at or row.opened_at,
            int(row.balance),
            tab_id=row.id,
            label=_("%(label)s (tab %(id)s)", label=row.label, id=row.id),
            detail=_("Void: %(reason)s", reason=row.void_reason)
            if row.status == "void" and row.void_reason
            else None,
        )
        for row in rows[:LIMIT]
    ]
    return found, len(rows) > LIMIT


def _statement_breaks(bar: Bar) -> tuple[list[Break], bool]:
    """Money in an imported statement that matches no payment and is on no tab: the bar has it,
    PesaTab cannot say whose it is until someone attaches it."""
    rows = db.session.execute(
        select(
            StatementLine.id,
            StatementLine.import_id,
            StatementLine.receipt,
            StatementLine.completion_time,
            StatementLine.paid_in_cents,
            StatementLine.other_party,
        )
        .where(
            StatementLine.bar_id == bar.id,
            StatementLine.match_state == "orphan",
            StatementLine.payment_id.is_(None),
            StatementLine.attached_tab_id.is_(None),
            StatementLine.paid_in_cents > 0,
        )
        .order_by(StatementLine.completion_time.desc(), StatementLine.id.desc())
        .limit(LIMIT + 1)
    ).all()
    found = [
        Break(
            "statement_only",
            *_both(STATEMENT_ONLY),
            row.completion_time,
            row.paid_in_cents // 100,
            statement_line=(row.import_id, row.id),
            label=_("Receipt %(receipt)s", receipt=row.receipt),
            detail=row.other_party or None,
        )
        for row in rows[:LIMIT]
    ]
    return found, len(rows) > LIMIT


def _menu_breaks(bar: Bar, now: datetime) -> tuple[list[Break], bool]:
    """Money paid from the M-Pesa menu that no cashier has claimed to a tab, and confirmations
    kept without being applied (c2b_breaks)."""
    found, more = c2b_breaks.unclaimed(bar, now, LIMIT)
    kept, more_kept = c2b_breaks.kept(bar, LIMIT)
    return [Break(**fields) for fields in found + kept], more or more_kept

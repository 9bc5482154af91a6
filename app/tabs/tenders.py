"""Cash and card at the counter, and correcting a tab's lines. Every change is audited with the
person who made it; the balance stays derived (app/tabs/totals.py).

A cashier may correct or take off a line until money has been asked against it (an M-Pesa
request or a cash or card payment made after the line was added); from then on only a manager
or the owner may, and never below what is already paid or being asked.
"""

from __future__ import annotations

from sqlalchemy import exists, select

from app import audit
from app.enums import PaymentStatus
from app.extensions import db
from app.i18n import N_, _
from app.models import Payment, Tab, TabLine, Tender, utcnow
from app.models.tabs import TENDER_KINDS
from app.tabs.actions import TabError, require_open
from app.tabs.totals import totals

# What the counter says once a cash or card payment is recorded, or taken back.
RECORDED = {
    "cash": N_("KES %(amount)s in cash recorded."),
    "card": N_("KES %(amount)s by card recorded."),
}
TAKEN_BACK = {
    "cash": N_("KES %(amount)s in cash taken back."),
    "card": N_("KES %(amount)s by card taken back."),
}
NEEDS_MANAGER = N_("Money has been asked against this line; ask a manager to change it.")


def record(tab: Tab, user_id: int | None, kind: str, amount: int, note: str = "") -> Tender:
    """Record money taken in cash or by card. It may not be more than the tab still owes once
    the phones being asked now are counted (change is given back, not kept on the tab)."""
    require_open(tab)
    if kind not in TENDER_KINDS:
        raise TabError(_("Choose cash or card."), field="kind")
    if amount < 1:
        raise TabError(_("Enter an amount of at least KES 1."), field="amount")
    current = totals(tab)
    if current.balance <= 0:
        raise TabError(_("Nothing is owed on this tab."), field="amount")
    if amount > current.requestable:
        owed = f"{current.requestable:,}"
        if current.in_flight:
            message = _(
                "Only KES %(owed)s is owed (KES %(waiting)s is being asked on a phone); give the "
                "rest back as change.",
                owed=owed,
                waiting=f"{current.in_flight:,}",
            )
        else:
            message = _("Only KES %(owed)s is owed; give the rest back as change.", owed=owed)
        raise TabError(message, field="amount")
    tender = Tender(
        bar_id=tab.bar_id,
        tab_id=tab.id,
        kind=kind,
        amount=amount,
        note=" ".join(note.split())[:120] or None,
        recorded_by_id=user_id,
    )
    db.session.add(tender)
    db.session.flush()
    audit.record(
        f"tab.{kind}", bar_id=tab.bar_id, tab_id=tab.id, tender_id=tender.id, amount=amount
    )
    db.session.commit()
    return tender


def remove(tab: Tab, tender: Tender, user_id: int | None, *, senior: bool) -> None:
    """Take back a cash or card payment recorded by mistake: a manager, or the person who
    recorded it while the tab is open."""
    require_open(tab)
    if tender.tab_id != tab.id or tender.removed_at is not None:
        raise TabError(_("That payment is not on this tab."))
    if not senior and tender.recorded_by_id != user_id:
        raise TabError(_("Only a manager, or whoever recorded it, can take this payment back."))
    tender.removed_at, tender.removed_by_id = utcnow(), user_id
    audit.record(
        f"tab.{tender.kind}_removed",
        bar_id=tab.bar_id,
        tab_id=tab.id,
        tender_id=tender.id,
        amount=tender.amount,
    )
    db.session.commit()


def _money_asked_since(line: TabLine) -> bool:
    """An M-Pesa request (that reached the phone or may have) or a cash or card payment made on
    the tab since the line was added."""
    asked = exists().where(
        Payment.tab_id == line.tab_id,
        Payment.created_at >= line.created_at,
        Payment.status != PaymentStatus.REJECTED,
    )
    taken = exists().where(
        Tender.tab_id == line.tab_id,
        Tender.created_at >= line.created_at,
        Tender.removed_at.is_(None),
    )
    return bool(db.session.scalar(select(asked | taken)))


def _check_change(tab: Tab, line: TabLine, new_total: int, *, senior: bool) -> None:
    require_open(tab)
    if line.tab_id != tab.id or line.removed_at is not None:
        raise TabError(_("That line is not on this tab."))
    if not senior and _money_asked_since(line):
        raise TabError(_(NEEDS_MANAGER))
    current = totals(tab)
    floor = current.settled + current.in_flight
    if current.total - line.total + new_total < floor:
        raise TabError(
            _(
                "KES %(floor)s is already paid or being asked on this tab; the lines cannot come "
                "to less.",
                floor=f"{floor:,}",
            )
        )


def correct(
    tab: Tab,
    line: TabLine,
    user_id: int | None,
    *,
    description: str,
    quantity: int,
    unit_price: int,
    senior: bool,
) -> None:
    """Change a line's words, quantity or price (audited, before and after)."""
    if quantity < 1 or quantity > 999:
        raise TabError(_("Quantity is a whole number from 1 to 999."), field="quantity")
    if unit_price < 1 or unit_price > 1_000_000:
        raise TabError(_("Price is whole shillings, from KES 1."), field="unit_price")
    _check_change(tab, line, quantity * unit_price, senior=senior)
    before = f"{line.quantity} × {line.description} at KES {line.unit_price:,}"
    line.description = " ".join((description or "").split())[:80] or line.description
    line.quantity, line.unit_price = quantity, unit_price
    after = f"{line.quantity} × {line.description} at KES {line.unit_price:,}"
    audit.record(
        "tab.line_changed",
        bar_id=tab.bar_id,
        tab_id=tab.id,
        tab_line_id=line.id,
        before=before,
        after=after,
    )
    db.session.commit()


def take_off(tab: Tab, line: TabLine, user_id: int | None, *, senior: bool) -> None:
    """Take a line off the tab. It stays for the record and no longer counts."""
    _check_change(tab, line, 0, senior=senior)
    line.removed_at, line.removed_by_id = utcnow(), user_id
    audit.record(
        "tab.line_removed",
        bar_id=tab.bar_id,
        tab_id=tab.id,
        tab_line_id=line.id,
        line=f"{line.quantity} × {line.description} at KES {line.unit_price:,}",
    )
    db.session.commit()

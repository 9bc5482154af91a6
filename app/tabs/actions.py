"""Tabs: opening, adding lines, asking for payment, closing. The balance is always derived
(app/tabs/totals.py)."""

from __future__ import annotations

from flask import current_app

from app import audit
from app.enums import Purpose
from app.extensions import db
from app.i18n import _
from app.models import Bar, Tab, TabLine, utcnow
from app.payments.push import PushRequest, PushResult, send_push
from app.tabs.totals import totals


class TabError(ValueError):
    """Something a cashier asked for that cannot be done; the message says why."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def open_tab(bar: Bar, user_id: int | None, label: str) -> Tab:
    label = " ".join(label.split())
    if not label:
        raise TabError(_("Give the tab a name, like “Table 4” or “Otieno”."), field="label")
    tab = Tab(bar_id=bar.id, label=label[:60], opened_by_id=user_id, status="open")
    db.session.add(tab)
    db.session.flush()
    audit.record("tab.opened", bar_id=bar.id, tab_id=tab.id)
    db.session.commit()
    return tab


def require_open(tab: Tab) -> None:
    if tab.status == "settled":
        raise TabError(_("This tab is closed; open a new one."))
    if tab.status != "open":
        raise TabError(_("This tab is void; open a new one."))


def add_line(
    tab: Tab, user_id: int | None, description: str, quantity: int, unit_price: int
) -> TabLine:
    require_open(tab)
    description = " ".join((description or "").split()) or "Amount"
    if quantity < 1 or quantity > 999:
        raise TabError(_("Quantity is a whole number from 1 to 999."), field="quantity")
    if unit_price < 1 or unit_price > 1_000_000:
        raise TabError(_("Price is whole shillings, from KES 1."), field="unit_price")
    line = TabLine(
        tab=tab,
        description=description[:80],
        quantity=quantity,
        unit_price=unit_price,
        added_by_id=user_id,
    )
    db.session.add(line)
    db.session.commit()
    return line


def request_payment(tab: Tab, user_id: int | None, phone: str, amount: int) -> PushResult:
    """Send an STK push for part or all of the tab's balance to `phone` (already normalised).
    `created` is False when that phone already has a request waiting on this tab."""
    require_open(tab)
    current = totals(tab)
    maximum = current_app.config["MPESA_MAX_AMOUNT"]
    if current.balance <= 0:
        raise TabError(_("Nothing is owed on this tab."), field="amount")
    if amount < 1:
        raise TabError(_("Enter an amount of at least KES 1."), field="amount")
    if amount > maximum:
        raise TabError(
            _(
                "M-Pesa takes at most KES %(most)s in one payment; split it across requests.",
                most=f"{maximum:,}",
            ),
            field="amount",
        )
    if amount > current.requestable:
        left = f"{current.requestable:,}"
        if current.in_flight:
            message = _(
                "Only KES %(left)s is left to ask for (KES %(waiting)s is already being asked "
                "on another phone).",
                left=left,
                waiting=f"{current.in_flight:,}",
            )
        else:
            message = _("Only KES %(left)s is left to ask for.", left=left)
        raise TabError(message, field="amount")
    bar = db.session.get(Bar, tab.bar_id)
    return send_push(
        bar,
        PushRequest(
            phone=phone,
            amount=amount,
            purpose=Purpose.TAB,
            account_reference=f"TAB{tab.id}",
            description="Bar tab",
            tab=tab,
            initiated_by_id=user_id,
        ),
    )


def close_tab(tab: Tab, user_id: int | None) -> None:
    """Close a tab whose balance is 0 as settled."""
    require_open(tab)
    current = totals(tab)
    if current.in_flight:
        raise TabError(_("A payment is still in progress on this tab; wait for it to finish."))
    if current.balance != 0:
        raise TabError(
            _(
                "KES %(owed)s is still owed; it can be closed when the balance is 0.",
                owed=f"{current.balance:,}",
            )
        )
    tab.status, tab.closed_at, tab.closed_by_id = "settled", utcnow(), user_id
    tab.outstanding_at_close = current.balance  # 0: the reconciliation never looks at it again
    audit.record("tab.settled", bar_id=tab.bar_id, tab_id=tab.id)
    db.session.commit()


def void_tab(tab: Tab, user_id: int | None, reason: str) -> None:
    """A manager voids a tab (a mistake, a walk-out) with a reason. Paid payments stay attached."""
    require_open(tab)
    reason = " ".join((reason or "").split())
    if len(reason) < 3:
        raise TabError(_("Say why the tab is void (at least a few words)."), field="reason")
    # Payments still in flight may yet be paid: the balance now is what it can owe at most.
    outstanding = totals(tab).balance
    tab.status, tab.void_reason = "void", reason[:200]
    tab.closed_at, tab.closed_by_id, tab.outstanding_at_close = utcnow(), user_id, outstanding
    audit.record("tab.voided", bar_id=tab.bar_id, tab_id=tab.id, reason=tab.void_reason)
    db.session.commit()

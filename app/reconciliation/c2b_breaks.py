"""Breaks from money paid from the M-Pesa menu (C2B): money that arrived but nobody claimed.

A confirmation applied to no tab waits on the tabs screen's list for a cashier to claim it
(app/payments/c2b.py). A few minutes there is normal; after UNCLAIMED_AFTER it is a break: the
bar holds money it cannot say is whose. It ends by itself when the money is claimed to a tab,
so it is not marked as checked (breaks.Break.checkable).

Confirmations kept without being applied (another shortcode, unreadable) are not breaks here:
marking one as checked needs a `checked_at` on c2b_confirmation, which it does not have yet. An
imported statement names them next to their line (app/statements/menu_money.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.enums import PaymentStatus, Purpose
from app.extensions import db
from app.i18n import N_, _
from app.models import Bar, C2BConfirmation, Payment

UNCLAIMED = "c2b_unclaimed"
UNCLAIMED_AFTER = timedelta(minutes=30)  # on the list this long with no tab: a break
UNCLAIMED_SENTENCES = (
    N_("Paid from the M-Pesa menu, on no tab for 30 minutes"),
    N_(
        "Nobody has claimed this money: find whose it is (the name and the account typed help), "
        "open their tab and claim it from the money paid from the M-Pesa menu. It stays here "
        "until then."
    ),
)


def unclaimed(bar: Bar, now: datetime, limit: int) -> tuple[list[dict], bool]:
    """The bar's menu money on no tab for longer than UNCLAIMED_AFTER, newest first, as the
    fields of a breaks.Break; and whether there were more than `limit`.

    Read from the bar's confirmations (ix_c2b_confirmation_bar_id: menu money only, not every
    push), each joined to its payment by key; both sides are the bar's."""
    rows = db.session.execute(
        select(
            Payment.id,
            Payment.amount,
            Payment.phone,
            Payment.receipt,
            Payment.transaction_time,
            Payment.created_at,
            C2BConfirmation.payer_name,
            C2BConfirmation.account,
        )
        .join(Payment, Payment.id == C2BConfirmation.payment_id)
        .where(
            C2BConfirmation.bar_id == bar.id,
            C2BConfirmation.disposition == "applied",
            Payment.bar_id == bar.id,
            Payment.purpose == Purpose.C2B,
            Payment.status == PaymentStatus.PAID,
            Payment.tab_id.is_(None),
            Payment.created_at < now - UNCLAIMED_AFTER,
        )
        .order_by(C2BConfirmation.id.desc())
        .limit(limit + 1)
    ).all()
    found = [
        {
            "kind": UNCLAIMED,
            "what": _(UNCLAIMED_SENTENCES[0]),
            "action": _(UNCLAIMED_SENTENCES[1]),
            "when": row.transaction_time or row.created_at,
            "amount": row.amount,
            "payment_id": row.id,
            "label": _("Receipt %(receipt)s", receipt=row.receipt),
            "detail": _details(row),
        }
        for row in rows[:limit]
    ]
    return found, len(rows) > limit


def _details(row) -> str:
    """Who paid, as M-Pesa gave it: the name, the masked phone, what they typed as the account."""
    parts = [row.payer_name or _("(no name)")]
    if row.phone:
        parts.append(row.phone)
    if row.account:
        parts.append(_("Account typed: %(account)s", account=row.account))
    return " · ".join(parts)

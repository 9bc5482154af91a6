"""Breaks from money paid from the M-Pesa menu (C2B): money that arrived but nobody claimed,
and confirmations PesaTab kept without counting them.

A confirmation applied to no tab waits on the tabs screen's list for a cashier to claim it
(app/payments/c2b.py). A few minutes there is normal; after UNCLAIMED_AFTER it is a break: the
bar holds money it cannot say is whose. It ends by itself when the money is claimed to a tab,
so it is not marked as checked (breaks.Break.checkable).

A confirmation kept without being applied (another shortcode, unreadable, too large) counted
nothing: it is a break until an owner or manager, having looked at the M-Pesa statement, marks
it as checked (its `checked_at`, app/payments/review.py). It is still never applied; money that
is the bar's comes in from the statement, which names it next to its line
(app/statements/menu_money.py).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import and_, case, or_, select

from app.extensions import db
from app.i18n import N_, _
from app.models import Bar, C2BConfirmation, Payment
from app.payments import bodies, c2b
from app.payments.c2b import RECEIPT, WHOLE_KES, field_text

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

KEPT = "c2b_kept"
# disposition (app/payments/c2b.py) -> what happened; what to do is KEPT_ACTION.
KEPT_SENTENCES = {
    "foreign_shortcode": N_(
        "M-Pesa sent this payment for another business number (%(shortcode)s) to this bar's "
        "address: it was not counted"
    ),
    "malformed": N_("M-Pesa sent a payment PesaTab could not read: it was not counted"),
    "too_large": N_(
        "M-Pesa sent a message too large for PesaTab to read to this bar's address: it was not "
        "counted"
    ),
}
NO_SHORTCODE = N_(
    "M-Pesa sent this payment for another business number to this bar's address: it was not counted"
)
KEPT_ACTION = N_(
    "Check the M-Pesa statement for this payment. If the money is the bar's, add it from the "
    "statement: import it and attach the line to its tab. Then mark this as checked, saying "
    "what you found."
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
            *c2b.unclaimed_where(bar.id),
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
            "detail": _details(row.payer_name, row.phone, row.account),
        }
        for row in rows[:limit]
    ]
    return found, len(rows) > limit


def _details(name: str | None, phone: str | None, account: str | None) -> str:
    """Who paid, as M-Pesa gave it: the name, the masked phone, what they typed as the account."""
    parts = [name or _("(no name)")]
    if phone:
        parts.append(phone)
    if account:
        parts.append(_("Account typed: %(account)s", account=account))
    return " · ".join(parts)


def kept(bar: Bar, limit: int) -> tuple[list[dict], bool]:
    """The bar's confirmations kept without being applied and not yet checked, newest first, as
    the fields of a breaks.Break; and whether there were more than `limit`."""
    rows = db.session.execute(
        select(
            C2BConfirmation.id,
            C2BConfirmation.disposition,
            C2BConfirmation.received_at,
            C2BConfirmation.trans_id,
            C2BConfirmation.amount,
            C2BConfirmation.shortcode,
            C2BConfirmation.payer_name,
            C2BConfirmation.msisdn,
            C2BConfirmation.account,
            # Read only where applying could not store the receipt or amount: not every body.
            case(
                (
                    and_(
                        C2BConfirmation.disposition == "malformed",
                        or_(C2BConfirmation.trans_id.is_(None), C2BConfirmation.amount.is_(None)),
                    ),
                    C2BConfirmation.raw_body,
                ),
            ).label("raw_body"),
        )
        .where(
            C2BConfirmation.bar_id == bar.id,
            C2BConfirmation.disposition.in_(KEPT_SENTENCES),
            C2BConfirmation.checked_at.is_(None),
        )
        .order_by(C2BConfirmation.received_at.desc(), C2BConfirmation.id.desc())
        .limit(limit + 1)
    ).all()
    found = []
    for row in rows[:limit]:
        receipt, amount = _readable(row)
        # A masked number is shown as the claim list shows it; a hashed one says nothing.
        phone = re.sub(r"\s", "", row.msisdn or "") if "*" in (row.msisdn or "") else None
        if row.disposition == "foreign_shortcode" and not row.shortcode:
            what = _(NO_SHORTCODE)
        else:
            what = _(KEPT_SENTENCES[row.disposition], shortcode=row.shortcode)
        found.append(
            {
                "kind": KEPT,
                "what": what,
                "action": _(KEPT_ACTION),
                "when": row.received_at,
                "amount": amount,
                "confirmation_id": row.id,
                "label": _("Receipt %(receipt)s", receipt=receipt)
                if receipt
                else _("M-Pesa menu confirmation %(id)s", id=row.id),
                "detail": _details(row.payer_name, phone, row.account)
                if row.payer_name or phone or row.account
                else None,
            }
        )
    return found, len(rows) > limit


def _readable(row) -> tuple[str | None, int | None]:
    """The receipt and whole-KES amount, as applying stored them or, for one it could not read,
    as the body says them when they are valid (a too-large body is never read)."""
    receipt, amount = row.trans_id, row.amount
    body = bodies.json_object(row.raw_body) if row.raw_body is not None else None
    if body and receipt is None:
        typed = field_text(body, "TransID", 20, exact=True)
        receipt = typed.upper() if typed.isascii() and RECEIPT.fullmatch(typed.upper()) else None
    if body and amount is None:
        whole = WHOLE_KES.fullmatch(field_text(body, "TransAmount", 20, exact=True))
        amount = int(whole[1]) if whole and int(whole[1]) >= 1 else None
    return receipt, amount

"""The payment state machine. Every change of status goes through `move`.

    created -> sent -> paid | failed | cancelled | expired
    created -> rejected                (Daraja refused: nothing reached the customer)
    created -> unknown                 (the push may have reached Daraja; settle by callback/query)
    unknown -> sent | paid | failed | cancelled | expired

Final states do not move, with one exception: money wins. A success carrying a receipt for a
payment already failed, cancelled or expired moves it to paid and flags it ("late success").
`paid` never moves.

`move` is one conditional UPDATE ("... WHERE status IN (states that may move to new)"), so two
workers applying the same news at once cannot both win: exactly one sees a changed row.
"""

from __future__ import annotations

from sqlalchemy import case, update

from app.extensions import db
from app.models import Payment, utcnow

IN_FLIGHT = ("created", "sent", "unknown")
FINAL = ("paid", "failed", "cancelled", "expired", "rejected")
SETTLED_UNPAID = ("failed", "cancelled", "expired")

ALLOWED: dict[str, set[str]] = {
    "created": {"sent", "rejected", "unknown", "paid", "failed", "cancelled", "expired"},
    "sent": {"paid", "failed", "cancelled", "expired"},
    "unknown": {"sent", "paid", "failed", "cancelled", "expired"},
    "failed": {"paid"},
    "cancelled": {"paid"},
    "expired": {"paid"},
    "rejected": set(),
    "paid": set(),
}


def sources_of(new: str) -> list[str]:
    """The statuses from which a payment may move to `new`."""
    return sorted(s for s, targets in ALLOWED.items() if new in targets)


def move(payment: Payment, new: str, **values) -> bool:
    """Move `payment` to `new` (plus column `values`) if the machine allows it from its
    current status in the database. Returns True when this call made the change."""
    now = utcnow()
    values = {"status": new, "updated_at": now, **values}
    if new == "sent":
        values.setdefault("sent_at", now)
    if new in FINAL:
        values.setdefault("settled_at", now)
        values.setdefault("inflight_key", None)
    if new == "paid":
        # A late success outranks any flag the caller asked for (e.g. receipt_pending).
        late = Payment.status.in_(SETTLED_UNPAID)
        values["flagged"] = case((late, True), else_=values.get("flagged", Payment.flagged))
        values["flag_reason"] = case((late, "late_success"), else_=values.get("flag_reason", Payment.flag_reason))
    statement = (
        update(Payment)
        .where(Payment.id == payment.id, Payment.status.in_(sources_of(new)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    changed = db.session.execute(statement).rowcount == 1
    db.session.expire(payment)
    return changed

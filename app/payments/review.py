"""A person has checked a flagged payment against the statement: the flag is cleared, and why.

Flags that describe a state (no receipt yet, no answer for 30 minutes) are not cleared by hand:
they end when the state does. The flag's reason stays on the payment; the audit log keeps who
checked it, when, and what they found.
"""

from __future__ import annotations

from sqlalchemy import update

from app import audit
from app.extensions import db
from app.models import Payment
from app.reconciliation.breaks import FLAG_SENTENCES, STATE_FLAGS

NOTE_MIN, NOTE_MAX = 3, 200


class ReviewError(Exception):
    """Nothing changed; the message says why."""


def clear_flag(payment: Payment, user_id: int | None, note: str) -> None:
    """Clear `payment`'s flag with `note` (what the person found). Commits."""
    note = " ".join((note or "").split())
    if len(note) < NOTE_MIN:
        raise ReviewError("Say what you found (a few words), for example “customer refunded KES 450”.")
    if not payment.flagged or payment.flag_reason is None:
        raise ReviewError(f"Payment {payment.id} has no flag to clear.")
    if payment.flag_reason in STATE_FLAGS:
        raise ReviewError("This one clears itself when M-Pesa's receipt or answer arrives; import the "
                          "statement if it does not.")
    reason = payment.flag_reason
    cleared = db.session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.flagged.is_(True), Payment.flag_reason == reason)
        .values(flagged=False)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not cleared:  # someone else cleared it (or the flag changed) meanwhile
        db.session.rollback()
        raise ReviewError(f"Payment {payment.id}'s flag was changed meanwhile; nothing changed.")
    audit.record("payment.flag_cleared", bar_id=payment.bar_id, user_id=user_id, payment_id=payment.id,
                 reason=reason, what=FLAG_SENTENCES.get(reason, (reason,))[0], note=note[:NOTE_MAX])
    db.session.commit()
    db.session.expire(payment)

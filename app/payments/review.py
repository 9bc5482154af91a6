"""A person has checked a reconciliation break against the statement and closes it, saying what
they found: a flagged payment (its flag is cleared), a callback kept for review, a C2B
confirmation kept without being applied, or a closed tab that still owes money.

Breaks that describe a state (no receipt yet, no answer for 30 minutes) are not closed by hand:
they end when the state does. Nothing else changes (the flag's reason stays on the payment, the
callback is still not applied, the tab still shows its balance); the audit log keeps who checked,
when, and the note.
"""

from __future__ import annotations

from sqlalchemy import update

from app import audit
from app.extensions import db
from app.i18n import _
from app.models import C2BConfirmation, CallbackEvent, Payment, Tab, utcnow
from app.reconciliation.breaks import CALLBACK_SENTENCES, FLAG_SENTENCES, STATE_FLAGS
from app.reconciliation.c2b_breaks import KEPT_SENTENCES

NOTE_MIN, NOTE_MAX = 3, 200


class ReviewError(Exception):
    """Nothing changed; the message says why."""


def _note(note: str | None) -> str:
    note = " ".join((note or "").split())
    if len(note) < NOTE_MIN:
        raise ReviewError(
            "Say what you found (a few words), for example “customer refunded KES 450”."
        )
    return note[:NOTE_MAX]


def clear_flag(payment: Payment, user_id: int | None, note: str) -> None:
    """Clear `payment`'s flag with `note` (what the person found). Commits."""
    note = _note(note)
    if not payment.flagged or payment.flag_reason is None:
        raise ReviewError(f"Payment {payment.id} has no flag to clear.")
    if payment.flag_reason in STATE_FLAGS:
        raise ReviewError(
            "This one clears itself when M-Pesa's receipt or answer arrives; import the "
            "statement if it does not."
        )
    reason = payment.flag_reason
    cleared = (
        db.session.execute(
            update(Payment)
            .where(
                Payment.id == payment.id, Payment.flagged.is_(True), Payment.flag_reason == reason
            )
            .values(flagged=False)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )
    if not cleared:  # someone else cleared it (or the flag changed) meanwhile
        db.session.rollback()
        raise ReviewError(f"Payment {payment.id}'s flag was changed meanwhile; nothing changed.")
    audit.record(
        "payment.flag_cleared",
        bar_id=payment.bar_id,
        user_id=user_id,
        payment_id=payment.id,
        reason=reason,
        what=FLAG_SENTENCES.get(reason, (reason,))[0],
        note=note,
    )
    db.session.commit()
    db.session.expire(payment)


def check_callback(event: CallbackEvent, user_id: int | None, note: str) -> None:
    """Close the break of a callback kept for review (mismatch, malformed). Commits."""
    note = _note(note)
    if event.disposition not in CALLBACK_SENTENCES:
        raise ReviewError(
            f"Callback {event.id} was not kept for review; there is nothing to check."
        )
    _mark(CallbackEvent, event.id, f"Callback {event.id}")
    audit.record(
        "callback.checked",
        bar_id=event.bar_id,
        user_id=user_id,
        event_id=event.id,
        payment_id=event.payment_id,
        disposition=event.disposition,
        note=note,
    )
    db.session.commit()


def check_c2b(record: C2BConfirmation, user_id: int | None, note: str) -> None:
    """Close the break of a C2B confirmation kept without being applied (another shortcode,
    unreadable, too large). It is still not applied. Commits."""
    note = _note(note)
    name = _("M-Pesa menu confirmation %(id)s", id=record.id)
    if record.disposition not in KEPT_SENTENCES:
        raise ReviewError(
            _(
                "PesaTab did not keep %(name)s aside uncounted; there is nothing to check.",
                name=name,
            )
        )
    _mark(C2BConfirmation, record.id, name)
    readable = {"receipt": record.trans_id, "amount": record.amount}
    audit.record(
        "c2b.checked",
        bar_id=record.bar_id,
        user_id=user_id,
        confirmation_id=record.id,
        disposition=record.disposition,
        **{key: value for key, value in readable.items() if value is not None},
        note=note,
    )
    db.session.commit()


def check_tab(tab: Tab, user_id: int | None, note: str) -> None:
    """Close the break of a closed tab that still owes money (collected, or a loss). Commits."""
    note = _note(note)
    if tab.status == "open":
        raise ReviewError(f"{tab.label} is still open: collect the balance or void the tab first.")
    _mark(Tab, tab.id, tab.label)
    audit.record("tab.checked", bar_id=tab.bar_id, user_id=user_id, tab_id=tab.id, note=note)
    db.session.commit()


def _mark(model, row_id: int, name: str) -> None:
    """Set checked_at once: a second click (or a second manager) changes nothing."""
    marked = (
        db.session.execute(
            update(model)
            .where(model.id == row_id, model.checked_at.is_(None))
            .values(checked_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )
    if not marked:
        db.session.rollback()
        raise ReviewError(f"{name} is already marked as checked; nothing changed.")

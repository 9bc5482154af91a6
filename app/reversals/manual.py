"""Settling by hand a reversal M-Pesa never answered (its queue timed out: NO_ANSWER), once an
owner or manager has checked the M-Pesa statement.

    manual.settle(reversal, given_back=True, note="Seen on the statement", user_id=...)

Given back: the reversal becomes REVERSED exactly as M-Pesa's successful result makes it
(result.give_back: the payment counts for less, a settled tab that owes money reopens). Not
given back: it becomes REFUSED, the final state that no longer holds the payment, so a new
reversal may be asked. No new state, so no migration: both keep the outcome NO_ANSWER (M-Pesa
never said), which tells a reversal settled by hand from one M-Pesa answered (`by_hand`).
The note is kept in the audit entry, with who settled it.

One conditional UPDATE from NO_ANSWER decides, as result.py's does: two clicks, the button and
the CLI, or M-Pesa's late result at the same moment settle it once; the loser changes nothing
and gets SettleError(conflict=True). A result that comes later still moves its request (kept,
as every answer is) but not the reversal (result.MOVABLE); the audit log notes it.
"""

from __future__ import annotations

from sqlalchemy import select, update

from app import audit
from app.enums import ReversalOutcome, ReversalState
from app.extensions import db
from app.formats import local_time
from app.i18n import _
from app.models import AuditEvent, Reversal, utcnow
from app.reversals import result

NOTE_MIN, NOTE_MAX = 3, 200
GIVEN_BACK, NOT_GIVEN_BACK = "given_back", "not_given_back"  # the two buttons' values
ACTIONS = {GIVEN_BACK: "reversal.given_back_by_hand", NOT_GIVEN_BACK: "reversal.not_given_back"}


class SettleError(ValueError):
    """A reversal that cannot be settled by hand, with the sentence that says why."""

    def __init__(self, message: str, field: str | None = None, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.message, self.field = message, field
        self.conflict = conflict  # it was no longer without an answer (a conflict, not bad input)


def by_hand(reversal: Reversal) -> bool:
    """Settled by an owner after checking the statement, not by M-Pesa's answer."""
    return reversal.outcome == ReversalOutcome.NO_ANSWER and reversal.state in result.MANUAL_STATES


def settle(
    reversal: Reversal,
    *,
    given_back: bool,
    note: str | None,
    user_id: int | None,
    timezone: str = "Africa/Nairobi",
) -> Reversal:
    """Settle a reversal without an answer as the statement shows it, once. Commits; raises
    SettleError."""
    if reversal.state != ReversalState.NO_ANSWER:
        raise SettleError(_settled_already(reversal, timezone), conflict=True)
    note = " ".join((note or "").split())
    if len(note) < NOTE_MIN:
        raise SettleError(
            _("Write a short note of what the M-Pesa statement shows (a few words)."),
            field="note",
        )
    if len(note) > NOTE_MAX:
        raise SettleError(_("Keep the note under 200 characters."), field="note")
    state = ReversalState.REVERSED if given_back else ReversalState.REFUSED
    moved = db.session.execute(
        update(Reversal)
        .where(
            Reversal.id == reversal.id,
            Reversal.bar_id == reversal.bar_id,
            Reversal.state == ReversalState.NO_ANSWER,
        )
        .values(state=state, settled_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:  # settled a moment ago, by another click or M-Pesa's late result
        db.session.rollback()
        raise SettleError(_settled_already(reversal, timezone), conflict=True)
    db.session.expire(reversal)
    if given_back:
        result.give_back(reversal)
    audit.record(
        ACTIONS[GIVEN_BACK if given_back else NOT_GIVEN_BACK],
        bar_id=reversal.bar_id,
        user_id=user_id,
        payment_id=reversal.payment_id,
        amount=reversal.amount,
        reversal=reversal.id,
        note=note,
    )
    db.session.commit()
    return reversal


def note_of(reversal: Reversal) -> str | None:
    """The note written when the reversal was settled by hand (kept in its audit entry)."""
    if not by_hand(reversal):
        return None
    found = db.session.scalars(
        select(AuditEvent.details)
        .where(AuditEvent.bar_id == reversal.bar_id, AuditEvent.action.in_(ACTIONS.values()))
        .order_by(AuditEvent.id.desc())
    )
    return next((d.get("note") for d in found if (d or {}).get("reversal") == reversal.id), None)


def _settled_already(reversal: Reversal, timezone: str) -> str:
    db.session.refresh(reversal)
    if reversal.state == ReversalState.REQUESTED:
        return _(
            "M-Pesa has not answered this reversal yet, and may still. Wait for its answer: "
            "only a reversal without an answer is settled from the statement."
        )
    return _(
        "This reversal was settled already (%(when)s), so nothing changed.",
        when=local_time(reversal.settled_at or reversal.created_at, timezone),
    )

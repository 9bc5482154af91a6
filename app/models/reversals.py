"""Money given back: one row per reversal asked of M-Pesa for a paid payment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.enums import REVERSAL_HOLDS, ReversalState
from app.extensions import db
from app.models.base import utcnow

# The partial unique index's predicate, the same text on both databases (migration 0016 too).
HOLDS_SQL = "state IN ({})".format(", ".join(f"'{state}'" for state in REVERSAL_HOLDS))


class Reversal(db.Model):
    """A reversal of a paid payment (STK or C2B), asked by an owner or manager with a reason.

    `state` moves requested -> reversed | refused | no_answer, once, inside the transaction that
    applies M-Pesa's result (app/reversals/result.py). At most one reversal that holds the
    payment (requested, reversed, no answer) exists per payment: the partial unique index
    `uq_reversal_payment_holds` makes a second click, a second worker or the CLI fail to
    insert, so a reversal is never sent twice. A refused one does not hold the payment."""

    __tablename__ = "reversal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"))
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"))
    tab_id: Mapped[int | None] = mapped_column(ForeignKey("tab.id"), nullable=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("initiator_request.id"), nullable=True, unique=True
    )
    receipt: Mapped[str] = mapped_column(String(20))  # the payment's M-Pesa receipt
    amount: Mapped[int] = mapped_column(Integer)
    # Less than the payment: the part a tab was overpaid by (recorded as a partial refund).
    partial: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(12), default=ReversalState.REQUESTED)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)  # ReversalOutcome
    mpesa_desc: Mapped[str | None] = mapped_column(String(255), nullable=True)  # M-Pesa's words
    reversal_receipt: Mapped[str | None] = mapped_column(String(20), nullable=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (
        Index(
            "uq_reversal_payment_holds",
            "payment_id",
            unique=True,
            sqlite_where=text(HOLDS_SQL),
            postgresql_where=text(HOLDS_SQL),
        ),
        Index("ix_reversal_bar_id_settled_at", "bar_id", "settled_at"),
        Index("ix_reversal_tab_id", "tab_id"),
    )

"""Tabs and their lines. A tab's balance is derived: lines minus paid payments, never typed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import utcnow

TAB_STATUSES = ("open", "settled", "void")
# Closed tabs that may still owe money: the predicate of a partial index, written exactly as
# the reconciliation's query writes it (constants inline), so the database may use the index.
MAY_OWE_SQL = "status <> 'open' AND (outstanding_at_close IS NULL OR outstanding_at_close > 0)"


class Tab(db.Model):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"))
    label: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(10), default="open")
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    void_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # Lines minus paid payments when the tab was closed (settled or void); None while open.
    # After closing, lines never change and a payment only ever becomes paid, so the balance can
    # only fall: this is an upper bound on what the tab owes from then on, and a tab closed at 0
    # or less never owes again. The reconciliation's tab breaks look only at closed tabs where it
    # is positive (or was never recorded), through ix_tab_bar_id_may_owe_closed_at.
    outstanding_at_close: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A person looked at the money a closed tab still owes (collected elsewhere, or a loss noted
    # in the books); who and what is in the audit log. Its reconciliation break is then closed.
    checked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    lines: Mapped[list[TabLine]] = relationship(
        back_populates="tab", order_by="TabLine.id", cascade="all, delete-orphan"
    )
    opened_by = relationship("User", foreign_keys=[opened_by_id])

    __table_args__ = (
        Index("ix_tab_bar_id_status_opened_at", "bar_id", "status", "opened_at"),
        Index(
            "ix_tab_bar_id_may_owe_closed_at",
            "bar_id",
            "closed_at",
            "id",
            postgresql_where=text(MAY_OWE_SQL),
            sqlite_where=text(MAY_OWE_SQL),
        ),
    )


class TabLine(db.Model):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tab_id: Mapped[int] = mapped_column(ForeignKey("tab.id"), index=True)
    description: Mapped[str] = mapped_column(String(80))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[int] = mapped_column(Integer)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # A line taken off the tab stays for the record (and the audit log says why); it no longer
    # counts in the total.
    removed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)

    tab: Mapped[Tab] = relationship(back_populates="lines")

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price


TENDER_KINDS = ("cash", "card")


class Tender(db.Model):
    """Money taken at the counter without M-Pesa: "paid KES 500 in cash" or "by card". It counts
    against the tab's balance and in the reconciliation as its own column, never as M-Pesa."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"))
    tab_id: Mapped[int] = mapped_column(ForeignKey("tab.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(120), nullable=True)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Recorded by mistake and taken back (audited); it no longer counts.
    removed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)

    recorded_by = relationship("User", foreign_keys=[recorded_by_id])

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_tender_bar_id_created_at", "bar_id", "created_at"),
    )

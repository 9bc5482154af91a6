"""Tabs and their lines. A tab's balance is derived: lines minus paid payments, never typed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, text
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

    tab: Mapped[Tab] = relationship(back_populates="lines")

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price

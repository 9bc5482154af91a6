"""M-Pesa statements imported by owners, and the nightly reconciliation summaries.

Statement amounts are kept in cents (integers): charges on a statement can carry fractions of a
shilling, while everything PesaTab asks for is whole shillings.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow


class StatementImport(db.Model):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    shortcode: Mapped[str | None] = mapped_column(String(12), nullable=True)
    period_start: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    period_end: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    new_lines: Mapped[int] = mapped_column(Integer, default=0)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("bar_id", "sha256", name="uq_statement_import_bar_id_sha256"),
    )


class StatementLine(db.Model):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"))
    import_id: Mapped[int] = mapped_column(ForeignKey("statement_import.id"), index=True)
    receipt: Mapped[str] = mapped_column(String(20))
    completion_time: Mapped[datetime] = mapped_column(DateTime)  # naive UTC
    initiation_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    details: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(40), default="")
    paid_in_cents: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn_cents: Mapped[int] = mapped_column(Integer, default=0)
    reason_type: Mapped[str] = mapped_column(String(60), default="")
    other_party: Mapped[str] = mapped_column(String(120), default="")
    account_no: Mapped[str] = mapped_column(String(60), default="")
    # matched | amount_differs | orphan | not_money_in
    match_state: Mapped[str] = mapped_column(String(16), default="orphan")
    payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment.id"), nullable=True, index=True
    )
    attached_tab_id: Mapped[int | None] = mapped_column(ForeignKey("tab.id"), nullable=True)

    __table_args__ = (
        # The same line in two exports (or one export twice) is one line.
        UniqueConstraint(
            "bar_id",
            "receipt",
            "completion_time",
            "paid_in_cents",
            "withdrawn_cents",
            name="uq_statement_line_identity",
        ),
        Index("ix_statement_line_bar_id_receipt", "bar_id", "receipt"),
        Index("ix_statement_line_bar_id_completion_time", "bar_id", "completion_time"),
    )


class ReconciliationSummary(db.Model):
    """A bar's day, written by the nightly job so history is kept and the page opens fast."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"))
    day: Mapped[date] = mapped_column(Date)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("bar_id", "day", name="uq_reconciliation_summary_bar_id_day"),
    )

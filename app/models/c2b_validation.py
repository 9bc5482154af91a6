"""C2B validation: what a bar answers when Safaricom asks before the money moves (only where
external validation is enabled for the shortcode), and each question as it arrived."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow


class C2BValidationRule(db.Model):
    """A bar's choice: accept every payment (no row, or `accept_all`) or refuse a PayBill
    payment whose account is not an open tab's code (`open_tabs`)."""

    __tablename__ = "c2b_validation_rule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"), unique=True)
    rule: Mapped[str] = mapped_column(String(20), default="accept_all")
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)


class C2BValidation(db.Model):
    """A validation request exactly as it arrived (stored before it is read) and the answer
    Safaricom got: `result_code` "0" (accepted) or a C2B000xx refusal, and why."""

    __tablename__ = "c2b_validation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int | None] = mapped_column(ForeignKey("bar.id"), nullable=True, index=True)
    raw_body: Mapped[str] = mapped_column(Text)
    body_size: Mapped[int] = mapped_column(Integer)
    source_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    account: Mapped[str | None] = mapped_column(String(40), nullable=True)
    amount_text: Mapped[str | None] = mapped_column(String(20), nullable=True)
    result_code: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # accept_all, till, tab, no_tab, deadline, error, malformed, unknown_url, too_large
    reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    answered_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)

"""Money paid from the M-Pesa menu (C2B): each bar's confirmation URL and what arrives on it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow


class C2BRegistration(db.Model):
    """A bar's C2B URLs: the secret in their path says which bar a confirmation is for."""

    __tablename__ = "c2b_registration"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"), unique=True)
    url_secret: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    registered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_confirmation_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class C2BConfirmation(db.Model):
    """A confirmation exactly as it arrived, stored before anything reads it, and what became of
    it. The money itself is a Payment (purpose c2b) whose receipt is the TransID: the receipt's
    unique index is what makes it count once."""

    __tablename__ = "c2b_confirmation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int | None] = mapped_column(ForeignKey("bar.id"), nullable=True, index=True)
    raw_body: Mapped[str] = mapped_column(Text)
    body_size: Mapped[int] = mapped_column(Integer)
    source_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # pending, applied, duplicate, linked (an STK payment's receipt), foreign_shortcode,
    # unknown_url, malformed, too_large
    disposition: Mapped[str] = mapped_column(String(20), default="pending")
    trans_id: Mapped[str | None] = mapped_column(String(20), nullable=True, index=True)
    amount: Mapped[int | None] = mapped_column(Integer, nullable=True)
    shortcode: Mapped[str | None] = mapped_column(String(12), nullable=True)
    account: Mapped[str | None] = mapped_column(String(40), nullable=True)
    payer_name: Mapped[str | None] = mapped_column(String(120), nullable=True)
    msisdn: Mapped[str | None] = mapped_column(String(64), nullable=True)  # masked or hashed
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id"), nullable=True)
    # callback: POSTed by Safaricom; pull: made from a Pull Transactions record the
    # confirmation of which never came (app/payments/c2b_pull.py), applied the same way.
    source: Mapped[str] = mapped_column(String(10), default="callback", server_default="callback")
    # Kept without being applied (another shortcode, unreadable): a break until a manager marks
    # it as checked (app/payments/review.py); it is still never applied.
    checked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

"""M-Pesa set-up per bar, payments and the callbacks Safaricom sends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.enums import IN_FLIGHT, PaymentStatus
from app.extensions import db
from app.models.base import utcnow

ENVIRONMENTS = ("sandbox", "production")
KINDS = ("paybill", "till")

# The predicates of Payment's partial indexes, per dialect, as SQLAlchemy compiles the queries
# they serve (`Payment.flagged.is_(True)` is `flagged IS true` on PostgreSQL, `flagged IS 1` on
# SQLite). Migration 0006 writes the same text.
FLAGGED_SQL = {"postgresql": "flagged IS true", "sqlite": "flagged IS 1"}
_IN_FLIGHT_SQL = ", ".join(f"'{status}'" for status in IN_FLIGHT)
MAY_BREAK_SQL = {
    dialect: f"{flagged} OR (status = '{PaymentStatus.PAID}' AND receipt IS NULL) "
    f"OR status IN ({_IN_FLIGHT_SQL})"
    for dialect, flagged in FLAGGED_SQL.items()
}


class MpesaCredential(db.Model):
    """A bar's Daraja set-up. Secrets are sealed (app/crypto.py); only the last 4 of the key
    show."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"), unique=True)
    environment: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(8))
    shortcode: Mapped[str] = mapped_column(String(8))
    till_number: Mapped[str | None] = mapped_column(String(8), nullable=True)
    consumer_key_sealed: Mapped[str] = mapped_column(Text)
    consumer_secret_sealed: Mapped[str] = mapped_column(Text)
    passkey_sealed: Mapped[str] = mapped_column(Text)
    consumer_key_last4: Mapped[str] = mapped_column(String(4))
    key_id: Mapped[str] = mapped_column(String(32))
    # Goes up whenever any field changes: a paid test push proves one revision only.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    checked_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    verified_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    # New credentials saved while the bar is live: cashiers keep using the ones above until these
    # pass their check and a paid test push (which carries pending_revision), and the owner
    # switches to them (app/settings/vault.py, onboarding.py). Sealed like the others; all None
    # when nothing is pending.
    pending_environment: Mapped[str | None] = mapped_column(String(12), nullable=True)
    pending_kind: Mapped[str | None] = mapped_column(String(8), nullable=True)
    pending_shortcode: Mapped[str | None] = mapped_column(String(8), nullable=True)
    pending_till_number: Mapped[str | None] = mapped_column(String(8), nullable=True)
    pending_consumer_key_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    pending_consumer_secret_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    pending_passkey_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    pending_consumer_key_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    pending_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pending_saved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    pending_checked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def is_verified(self) -> bool:
        return self.verified_revision == self.revision

    @property
    def has_pending(self) -> bool:
        return self.pending_revision is not None

    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Payment(db.Model):
    """One STK push and what became of it. Status moves only through app/payments/states.py."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"))
    tab_id: Mapped[int | None] = mapped_column(ForeignKey("tab.id"), nullable=True, index=True)
    purpose: Mapped[str] = mapped_column(
        String(8)
    )  # test | tab | api | c2b (attached from a statement)
    phone: Mapped[str] = mapped_column(String(12))
    amount: Mapped[int] = mapped_column(Integer)
    account_reference: Mapped[str] = mapped_column(String(12))
    description: Mapped[str] = mapped_column(String(13))
    status: Mapped[str] = mapped_column(String(10), default=PaymentStatus.CREATED)
    callback_token: Mapped[str] = mapped_column(String(64), unique=True)
    # Set while the payment is in flight, cleared when it settles: the unique index makes
    # "one push in flight per tab (or purpose) and phone" a database guarantee.
    inflight_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    merchant_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checkout_request_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    result_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    result_desc: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    message: Mapped[str | None] = mapped_column(String(255), nullable=True)
    receipt: Mapped[str | None] = mapped_column(String(20), unique=True, nullable=True)
    paid_amount: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Given back by a reversal M-Pesa confirmed (app/reversals/): the tab counts amount less
    # this as paid. Written with the reversal's state, in the same transaction.
    reversed_amount: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    paid_phone: Mapped[str | None] = mapped_column(String(12), nullable=True)
    transaction_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    credential_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    initiated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id"), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # sha256 of the request that used the idempotency key: same key, other body -> 409.
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    query_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_query_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    initiated_by = relationship("User", foreign_keys=[initiated_by_id])

    __table_args__ = (
        Index("ix_payment_bar_id_created_at", "bar_id", "created_at", "id"),
        Index("ix_payment_status_next_query_at", "status", "next_query_at"),
        Index("ix_payment_bar_id_idempotency_key", "bar_id", "idempotency_key", unique=True),
        # The payments list filtered by phone, newest first (app/payments/listing.py).
        Index("ix_payment_bar_id_phone_created_at", "bar_id", "phone", "created_at", "id"),
        # Partial indexes: PostgreSQL uses one only when it can prove from the query's own text
        # that every row wanted is in it, so each predicate is written exactly as its query
        # writes the condition (`flagged IS true`, not `flagged`), with the constants inline.
        # The payments list's "flagged" filter:
        Index(
            "ix_payment_bar_id_flagged_created_at",
            "bar_id",
            "created_at",
            "id",
            postgresql_where=text(FLAGGED_SQL["postgresql"]),
            sqlite_where=text(FLAGGED_SQL["sqlite"]),
        ),
        # Payments that may be a reconciliation break (app/reconciliation/breaks.py): flagged,
        # paid without a receipt, or in flight. A few rows in a year of them.
        Index(
            "ix_payment_bar_id_may_break_created_at",
            "bar_id",
            "created_at",
            "id",
            postgresql_where=text(MAY_BREAK_SQL["postgresql"]),
            sqlite_where=text(MAY_BREAK_SQL["sqlite"]),
        ),
    )


class CallbackEvent(db.Model):
    """A callback exactly as it arrived, stored before anything reads it."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), index=True)
    payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment.id"), nullable=True, index=True
    )
    bar_id: Mapped[int | None] = mapped_column(ForeignKey("bar.id"), nullable=True, index=True)
    raw_body: Mapped[str] = mapped_column(Text)
    body_size: Mapped[int] = mapped_column(Integer)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    source_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    known_source: Mapped[bool] = mapped_column(Boolean, default=False)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    # pending -> applied | duplicate | mismatch | malformed | unknown_token | late_success | error
    disposition: Mapped[str] = mapped_column(String(16), default="pending")
    detail: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # A person compared a kept (mismatch/malformed) callback with the statement; who and what
    # they found is in the audit log. Its reconciliation break is then closed.
    checked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (Index("ix_callback_event_disposition", "disposition", "next_attempt_at"),)

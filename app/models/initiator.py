"""Requests signed with a bar's initiator credentials (Transaction Status now; Reversal and
Account Balance next): the credentials, each request with its own result URL secret, and every
result body exactly as it arrived."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.enums import InitiatorState
from app.extensions import db
from app.models.base import utcnow


class InitiatorCredential(db.Model):
    """The bar's initiator (an M-Pesa org portal user allowed to use the APIs) and Safaricom's
    public certificate for the environment. The password is sealed like the Daraja secrets
    (field `initiator_password`) and never shown back; the certificate is public."""

    __tablename__ = "initiator_credential"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"), unique=True)
    initiator_name: Mapped[str] = mapped_column(String(64))
    password_sealed: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(32))
    certificate_pem: Mapped[str] = mapped_column(Text)
    certificate_subject: Mapped[str] = mapped_column(String(255))
    certificate_expires_at: Mapped[datetime] = mapped_column(DateTime)
    saved_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # When M-Pesa last answered 2001 (wrong initiator name or password) to these credentials.
    refused_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class InitiatorRequest(db.Model):
    """One question asked of Daraja with the initiator credentials. Daraja answers later, at
    /hooks/result/<url_secret> (or /hooks/timeout/<url_secret>): the secret picks the request,
    and the result is applied once (one conditional UPDATE on `state`)."""

    __tablename__ = "initiator_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"))
    kind: Mapped[str] = mapped_column(String(12))  # app.enums.InitiatorKind
    url_secret: Mapped[str] = mapped_column(String(64), unique=True)
    subject: Mapped[str] = mapped_column(String(20))  # the TransactionID asked about
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(12), default=InitiatorState.WAITING)
    originator_conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    result_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    result_desc: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The result's ResultParameters as {Key: Value}, and what they mean for this kind.
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (
        Index("ix_initiator_request_bar_id_kind_subject", "bar_id", "kind", "subject", "id"),
    )


class InitiatorResult(db.Model):
    """A result or queue-timeout body exactly as it arrived, committed before anything reads it.
    An unknown URL secret is kept (request_id None) and never applied."""

    __tablename__ = "initiator_result"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("initiator_request.id"), nullable=True, index=True
    )
    endpoint: Mapped[str] = mapped_column(String(8))  # result | timeout
    raw_body: Mapped[str] = mapped_column(Text)
    body_size: Mapped[int] = mapped_column(Integer)
    source_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # pending -> applied | duplicate | mismatch | malformed | unknown_url | too_large
    disposition: Mapped[str] = mapped_column(String(12), default="pending")

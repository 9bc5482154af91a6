"""Daraja OAuth tokens shared by every process (app/payments/token_store.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow


class DarajaToken(db.Model):
    """One row per Daraja credential set: its current access token, sealed, and its expiry.

    `cache_key` is an HMAC of the credentials' cache key under the app's SECRET_KEY (never a
    key or secret, nor a plain hash of them). The row is also the lock the processes take to
    fetch one token at a time; it holds no token (NULLs) until the first fetch succeeds.
    """

    __tablename__ = "daraja_token"

    cache_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Sealed with the key ring (app/crypto.py), the row's cache_key bound as associated data.
    sealed_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When Daraja stops accepting the token (naive UTC, no safety margin taken off).
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

"""Links that show one paid tab's receipt to whoever holds them, signed in or not."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow


class ReceiptLink(db.Model):
    """A shared receipt: the token is shown once and only its SHA-256 is kept, so the table
    alone opens nothing. It stops working when it expires or someone revokes it (audited)."""

    __tablename__ = "receipt_link"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int] = mapped_column(ForeignKey("bar.id"))
    tab_id: Mapped[int] = mapped_column(ForeignKey("tab.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now

"""Bars and their people."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from datetime import datetime, timedelta

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.enums import BAR_ROLES, ROLE_LABELS, Role
from app.extensions import db
from app.models.base import utcnow

ROLES = BAR_ROLES  # the roles inside a bar (app/enums.py)
OPERATOR = Role.OPERATOR  # PesaTab's own staff: no bar, never a bar's route or credentials
SETUP_STATES = ("no_credentials", "credentials_saved", "verified", "live")


def slugify(text: str) -> str:
    """A URL-safe, lowercase slug ('Mama Oliech's Bar' -> 'mama-oliechs-bar')."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower().replace("'", "")).strip("-")
    return slug[:50].strip("-") or "bar"


class Bar(db.Model):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Africa/Nairobi")
    mpesa_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    setup_state: Mapped[str] = mapped_column(String(20), default="no_credentials")
    # The language of the bar's screens and emails unless a person chooses their own.
    locale: Mapped[str] = mapped_column(String(5), default="en", server_default="en")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Token fetches Safaricom refused in a row (DarajaAuthError), reset by the next good one:
    # revoked or changed credentials show as an alert (app/ops/alerts.py), not as puzzled cashiers.
    token_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    token_failed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    token_failure_reason: Mapped[str | None] = mapped_column(String(24), nullable=True)
    # Printed on the bar's receipts (app/receipts/): set by the owner, both optional.
    address: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kra_pin: Mapped[str | None] = mapped_column(String(11), nullable=True)

    users: Mapped[list[User]] = relationship(back_populates="bar", order_by="User.id")

    @staticmethod
    def unique_slug(name: str) -> str:
        """A slug for `name` that no other bar has yet."""
        base = slugify(name)
        slug, n = base, 1
        while db.session.scalar(select(Bar.id).where(Bar.slug == slug)) is not None:
            n += 1
            slug = f"{base}-{n}"
        return slug


class User(UserMixin, db.Model):
    """Someone who signs in: a bar's owner, manager or cashier, or one of PesaTab's operators
    (the only people without a bar; the check constraint keeps it that way)."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int | None] = mapped_column(ForeignKey("bar.id"), index=True, nullable=True)
    name: Mapped[str] = mapped_column(String(120))
    # A cashier may be added with a phone number and no email (they sign in with the phone).
    email: Mapped[str | None] = mapped_column(String(254), unique=True, nullable=True)
    phone: Mapped[str | None] = mapped_column(String(12), unique=True, nullable=True, index=True)
    # The language this person works in ('en', 'sw'); None: the bar's.
    locale: Mapped[str | None] = mapped_column(String(5), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Part of the login cookie's id: changing it signs the person out everywhere.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    bar: Mapped[Bar | None] = relationship(back_populates="users")

    __table_args__ = (
        CheckConstraint(f"(role = '{OPERATOR}') = (bar_id IS NULL)", name="operator_has_no_bar"),
    )

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return bool(self.active)

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def set_password(self, password: str, method: str = "scrypt") -> None:
        self.password_hash = generate_password_hash(password, method=method)
        self.session_version = (self.session_version or 0) + 1

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    def can(self, *roles: str) -> bool:
        return self.role in roles


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SetPasswordLink(db.Model):
    """A one-time link an owner passes on so a new person can choose a password."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    user: Mapped[User] = relationship(foreign_keys=[user_id])

    @classmethod
    def issue(cls, user: User, created_by: User | None, hours: int) -> tuple[SetPasswordLink, str]:
        """Create a link for `user`; returns it and the token (shown once, stored hashed)."""
        token = secrets.token_urlsafe(32)
        link = cls(
            user=user,
            token_hash=_hash_token(token),
            created_by_id=created_by.id if created_by else None,
            expires_at=utcnow() + timedelta(hours=hours),
        )
        db.session.add(link)
        return link, token

    @classmethod
    def find_usable(cls, token: str) -> SetPasswordLink | None:
        """The unused, unexpired link for `token`, or None."""
        link = db.session.scalar(select(cls).where(cls.token_hash == _hash_token(token)))
        if link is None or link.used_at is not None or link.expires_at <= utcnow():
            return None
        if not link.user.active:
            return None
        return link

"""Operator accounts: PesaTab's own people, who belong to no bar. No views here."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app import audit
from app.auth import accounts
from app.extensions import db
from app.models import User
from app.models.accounts import OPERATOR

# Operators can stop M-Pesa for every bar: a longer password than a bar's people need.
MIN_PASSWORD = 12


def create_operator(name: str, email: str, password: str) -> User:
    """An active operator with this password. Commits; raises AccountError."""
    if len(password) < MIN_PASSWORD:
        raise accounts.AccountError(
            f"An operator's password must be at least {MIN_PASSWORD} characters."
        )
    email = accounts.ensure_email_free(email)
    user = User(bar=None, name=name.strip(), email=email, role=OPERATOR, active=True)
    user.set_password(password, current_app.config["PASSWORD_HASH_METHOD"])
    db.session.add(user)
    db.session.flush()
    audit.record("operator.created", user_id=user.id, email=user.email)
    db.session.commit()
    return user


def list_operators() -> list[User]:
    return list(db.session.scalars(select(User).where(User.role == OPERATOR).order_by(User.email)))


def deactivate_operator(email: str) -> User:
    """Sign an operator out everywhere and refuse their sign-ins from now on. Commits."""
    user = accounts.find_user_by_email(email)
    if user is None or user.role != OPERATOR:
        raise accounts.AccountError(f"No operator with the email {email!r}.")
    user.active = False
    user.session_version += 1
    audit.record("operator.deactivated", user_id=user.id, email=user.email)
    db.session.commit()
    return user

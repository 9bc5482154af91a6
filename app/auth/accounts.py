"""The accounts domain: creating bars and people, passwords, activation. No views here."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select

from app import audit
from app.enums import Role
from app.extensions import db
from app.models import Bar, SetPasswordLink, User, utcnow


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message is for the person."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


EMAIL_MAX = 254  # RFC 5321's limit on a forward path
EMAIL_INVALID = "Enter a valid email address, like name@example.com."
EMAIL_TOO_LONG = f"An email address has at most {EMAIL_MAX} characters."


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str | None) -> str | None:
    """Why `email` cannot be a sign-in email, or None when it can.

    The one rule for every way a person is made (sign-up, staff, `flask bars create`, operators)
    and for the sign-in form, so nobody is created with an email they could never sign in with.
    """
    import email_validator

    email = normalize_email(email or "")
    if len(email) > EMAIL_MAX:
        return EMAIL_TOO_LONG
    try:
        email_validator.validate_email(email, check_deliverability=False)
    except email_validator.EmailNotValidError:
        return EMAIL_INVALID
    return None


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def _hash_method() -> str:
    return current_app.config["PASSWORD_HASH_METHOD"]


def ensure_email_free(email: str) -> str:
    problem = email_problem(email)
    if problem is not None:
        raise AccountError(problem, field="email")
    email = normalize_email(email)
    if find_user_by_email(email) is not None:
        raise AccountError("An account with this email already exists.", field="email")
    return email


def create_bar_with_owner(bar_name: str, owner_name: str, email: str, password: str) -> User:
    """Sign-up: a bar and its owner in one step. Commits."""
    email = ensure_email_free(email)
    bar = Bar(name=bar_name.strip(), slug=Bar.unique_slug(bar_name))
    owner = User(bar=bar, name=owner_name.strip(), email=email, role=Role.OWNER, active=True)
    owner.set_password(password, _hash_method())
    db.session.add_all([bar, owner])
    db.session.flush()
    audit.record("bar.created", bar_id=bar.id, user_id=owner.id, slug=bar.slug)
    db.session.commit()
    return owner


def authenticate(email: str, password: str) -> User | None:
    """The active person with these credentials, or None (same answer for every failure)."""
    user = find_user_by_email(email)
    if user is None or not user.active or not user.check_password(password):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def add_staff(bar: Bar, added_by: User, name: str, email: str, role: str) -> tuple[User, str]:
    """Add a manager or cashier; returns the person and their one-time set-password token."""
    if role not in (Role.MANAGER, Role.CASHIER):
        raise AccountError("Choose Manager or Cashier.", field="role")
    email = ensure_email_free(email)
    user = User(bar=bar, name=name.strip(), email=email, role=role, active=True)
    db.session.add(user)
    db.session.flush()
    _, token = SetPasswordLink.issue(user, added_by, current_app.config["SET_PASSWORD_LINK_HOURS"])
    audit.record("staff.added", staff_id=user.id, role=role)
    db.session.commit()
    return user, token


def reissue_link(user: User, issued_by: User) -> str:
    """A fresh set-password link; earlier unused links for the person stop working."""
    now = utcnow()
    for link in db.session.scalars(
        select(SetPasswordLink).where(
            SetPasswordLink.user_id == user.id, SetPasswordLink.used_at.is_(None)
        )
    ):
        link.used_at = now
    _, token = SetPasswordLink.issue(user, issued_by, current_app.config["SET_PASSWORD_LINK_HOURS"])
    audit.record("staff.link_issued", staff_id=user.id)
    db.session.commit()
    return token


def set_active(user: User, active: bool) -> None:
    """Deactivate (signed out on their next request) or reactivate a member of staff."""
    if user.role == Role.OWNER:
        raise AccountError("The owner's account cannot be deactivated.")
    user.active = active
    user.session_version += 1
    audit.record("staff.reactivated" if active else "staff.deactivated", staff_id=user.id)
    db.session.commit()


def use_link(link: SetPasswordLink, password: str) -> User:
    """Set the password through a one-time link, which then stops working."""
    link.used_at = utcnow()
    link.user.set_password(password, _hash_method())
    audit.record("user.password_set", bar_id=link.user.bar_id, user_id=link.user.id)
    db.session.commit()
    return link.user


def count_bars() -> int:
    return db.session.scalar(select(func.count(Bar.id))) or 0

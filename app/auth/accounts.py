"""The accounts domain: creating bars and people, passwords, activation. No views here."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import audit
from app.enums import Role
from app.extensions import db
from app.i18n import DEFAULT, LANGUAGES, N_, _
from app.models import Bar, SetPasswordLink, User, utcnow
from app.mpesa import InvalidPhone, normalize_phone
from app.mpesa import phone as mpesa_phone


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message is for the person."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


EMAIL_MAX = 254  # RFC 5321's limit on a forward path
EMAIL_INVALID = N_("Enter a valid email address, like name@example.com.")
EMAIL_TOO_LONG = N_("An email address has at most %(max)d characters.")
NAME_MAX = 120  # the name columns of bar and user
PHONE_MAX = 20  # what a person types: "+254 (0) 712 345 678" is 20; stored as 12 digits
PASSWORD_MIN, PASSWORD_MAX = 10, 200
PHONE_EXAMPLE = "0712 345 678"
PHONE_TAKEN = N_("An account with this phone number already exists.")
EMAIL_TAKEN = N_("An account with this email already exists.")


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
        return _(EMAIL_TOO_LONG, max=EMAIL_MAX)
    try:
        email_validator.validate_email(email, check_deliverability=False)
    except email_validator.EmailNotValidError:
        return _(EMAIL_INVALID)
    return None


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def staff_phone(text: str) -> str:
    """A person's phone number as stored (2547XXXXXXXX / 2541XXXXXXXX), normalised once here;
    AccountError with a sentence when it is not a Kenyan mobile number."""
    if len(text or "") > PHONE_MAX:
        raise AccountError(
            _("A phone number has at most %(max)d characters.", max=PHONE_MAX), field="phone"
        )
    try:
        return normalize_phone(text)
    except InvalidPhone as err:
        message = str(err)
        if message in (mpesa_phone.EMPTY, mpesa_phone.FOREIGN):  # worded for a customer's phone
            message = _(
                "Enter a Kenyan mobile number (07… or 01…), like %(example)s.",
                example=PHONE_EXAMPLE,
            )
        else:  # app/mpesa's English sentence, in the reader's language where a part has it
            message = _(message)
        raise AccountError(message, field="phone") from None


def find_user_by_login(text: str) -> User | None:
    """The person an email or a phone number typed at sign-in names, or None."""
    text = (text or "").strip()
    if not text or len(text) > EMAIL_MAX:
        return None
    if "@" in text:
        return find_user_by_email(text)
    try:
        phone = normalize_phone(text)
    except InvalidPhone:
        return None
    return db.session.scalar(select(User).where(User.phone == phone))


def login_problem(text: str | None) -> str | None:
    """Why `text` can be neither a sign-in email nor a phone number, or None."""
    text = (text or "").strip()
    if "@" in text or len(text) > EMAIL_MAX:
        return email_problem(text)
    try:
        normalize_phone(text)
    except InvalidPhone:
        return _("Enter your email, or your phone number like %(example)s.", example=PHONE_EXAMPLE)
    return None


def display_phone(msisdn: str | None) -> str:
    """`254712345678` as people write it: `0712 345 678`."""
    if not msisdn or len(msisdn) != 12:
        return msisdn or ""
    return f"0{msisdn[3:6]} {msisdn[6:9]} {msisdn[9:]}"


def sign_in_name(user: User) -> str:
    """What the person types to sign in: their email, else their phone number."""
    return user.email or display_phone(user.phone)


def reader_locale(user: User) -> str:
    """The language `user` reads what is sent to them in (a mailed link, a shared message):
    their own choice, else their bar's; never the language of whoever made it be sent."""
    chosen = user.locale or (user.bar.locale if user.bar is not None else None)
    return chosen if chosen in LANGUAGES else DEFAULT


def _hash_method() -> str:
    return current_app.config["PASSWORD_HASH_METHOD"]


def ensure_email_free(email: str) -> str:
    problem = email_problem(email)
    if problem is not None:
        raise AccountError(problem, field="email")
    email = normalize_email(email)
    if find_user_by_email(email) is not None:
        raise AccountError(_(EMAIL_TAKEN), field="email")
    return email


def ensure_phone_free(text: str) -> str:
    phone = staff_phone(text)
    if db.session.scalar(select(User.id).where(User.phone == phone)) is not None:
        raise AccountError(_(PHONE_TAKEN), field="phone")
    return phone


def _staff_name(text: str) -> str:
    name = (text or "").strip()
    if not name:
        raise AccountError(_("Enter their name."), field="name")
    if len(name) > NAME_MAX:
        raise AccountError(_("A name has at most %(max)d characters.", max=NAME_MAX), field="name")
    return name


def create_bar_with_owner(
    bar_name: str, owner_name: str, email: str, password: str, locale: str | None = None
) -> User:
    """Sign-up: a bar and its owner in one step. Commits. `locale`: the bar's language (the one
    the sign-up page was read in); English when not given."""
    email = ensure_email_free(email)
    bar = Bar(name=bar_name.strip(), slug=Bar.unique_slug(bar_name), locale=locale or "en")
    owner = User(bar=bar, name=owner_name.strip(), email=email, role=Role.OWNER, active=True)
    owner.set_password(password, _hash_method())
    db.session.add_all([bar, owner])
    db.session.flush()
    audit.record("bar.created", bar_id=bar.id, user_id=owner.id, slug=bar.slug)
    db.session.commit()
    return owner


def authenticate(login: str, password: str) -> User | None:
    """The active person with these credentials (an email or a phone number, and the password),
    or None (same answer for every failure)."""
    user = find_user_by_login(login)
    if user is None or not user.active or not user.check_password(password):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def add_staff(
    bar: Bar, added_by: User, name: str, email: str | None, role: str, phone: str | None = None
) -> tuple[User, str]:
    """Add a manager or cashier; returns the person and their one-time set-password token.

    A cashier may be added with a phone number instead of an email (or with both) and then signs
    in with it; a manager needs an email."""
    if role not in (Role.MANAGER, Role.CASHIER):
        raise AccountError(_("Choose Manager or Cashier."), field="role")
    name = _staff_name(name)
    email, phone = (email or "").strip() or None, (phone or "").strip() or None
    if email is None and phone is None:
        raise AccountError(_("Enter their email, or a cashier's phone number."), field="email")
    if email is None and role != Role.CASHIER:
        raise AccountError(
            _("A manager needs an email; only a cashier can be added with a phone number alone."),
            field="email",
        )
    email = ensure_email_free(email) if email else None
    phone = ensure_phone_free(phone) if phone else None
    user = User(bar=bar, name=name, email=email, phone=phone, role=role, active=True)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # taken by someone added at the same moment
        db.session.rollback()
        raise AccountError(
            _("An account with this email or phone number already exists.")
        ) from None
    _link, token = SetPasswordLink.issue(
        user, added_by, current_app.config["SET_PASSWORD_LINK_HOURS"]
    )
    audit.record("staff.added", staff_id=user.id, role=role)
    db.session.commit()
    return user, token


def reissue_link(user: User, issued_by: User | None, **details) -> str:
    """A fresh set-password link; earlier unused links for the person stop working.

    `issued_by` None: the person asked for it themselves (forgot password), signed out."""
    now = utcnow()
    for link in db.session.scalars(
        select(SetPasswordLink).where(
            SetPasswordLink.user_id == user.id, SetPasswordLink.used_at.is_(None)
        )
    ):
        link.used_at = now
    _link, token = SetPasswordLink.issue(
        user, issued_by, current_app.config["SET_PASSWORD_LINK_HOURS"]
    )
    audit.record("staff.link_issued", bar_id=user.bar_id, staff_id=user.id, **details)
    db.session.commit()
    return token


def set_active(user: User, active: bool) -> None:
    """Deactivate (signed out on their next request) or reactivate a member of staff."""
    if user.role == Role.OWNER:
        raise AccountError(_("The owner's account cannot be deactivated."))
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

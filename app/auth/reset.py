"""Forgot password: a mailed set-password link for owners, the Staff page for everyone else.

An owner who asks gets a fresh set-password link by email when SMTP is set up (the same
one-time link the Staff page gives out, `accounts.reissue_link`); a manager or cashier (and an
owner when there is no SMTP) asks their owner or manager to give them one from the Staff page.
The page answers the same whatever was typed, so it never says whether an account exists; the
mail goes to the address the account has, never to one typed in. No views here.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta
from email.message import EmailMessage

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from sqlalchemy import select

from app.auth import accounts
from app.enums import Role
from app.extensions import db
from app.i18n import N_, _
from app.models import SetPasswordLink, User, utcnow
from app.ops import notify

log = logging.getLogger(__name__)

# One mailed link per owner in this long, however often the form is sent: the form cannot be
# used to fill an owner's inbox (the form itself is limited per address too).
RESEND_AFTER = timedelta(minutes=10)
ASK_THE_STAFF_PAGE = N_(
    "If you are a manager or cashier, ask your bar's owner (or, for a cashier, a manager) to "
    "give you a new set-password link from the Staff page."
)


def answer() -> list[str]:
    """What the page says after the form is sent: the same whatever was typed."""
    hours = current_app.config["SET_PASSWORD_LINK_HOURS"]
    if not notify.email_configured():
        return [
            _(
                "Ask your bar's owner or manager to give you a new set-password link from the "
                "Staff page; it works once, within %(hours)s hours.",
                hours=hours,
            )
        ]
    return [
        _(
            "If that is a bar owner's account, we have emailed its owner a link to choose a new "
            "password; it works once, within %(hours)s hours.",
            hours=hours,
        ),
        _(ASK_THE_STAFF_PAGE),
    ]


def request_link(typed: str) -> None:
    """Mail an owner a fresh set-password link if `typed` names one and SMTP is set up.

    Anything else does nothing, quietly. A mail server that fails is logged, not shown."""
    if not notify.email_configured():
        return
    user = accounts.find_user_by_login(typed)
    if user is None or not _may_mail(user) or _mailed_recently(user):
        return
    token = accounts.reissue_link(user, None, by="email")
    try:
        with notify._Mailer() as mailer:  # the daily summary's SMTP path: TLS, login, timeout
            sent = mailer.send(_message(user, token))
    except (OSError, smtplib.SMTPException) as err:
        log.warning("set-password email for user %s not sent: %s", user.id, type(err).__name__)
        return
    if not sent:
        log.warning("set-password email for user %s refused by the mail server", user.id)


def _may_mail(user: User) -> bool:
    return bool(user.active and user.email and user.bar_id and user.role == Role.OWNER)


def _mailed_recently(user: User) -> bool:
    since = utcnow() - RESEND_AFTER
    return (
        db.session.scalar(
            select(SetPasswordLink.id).where(
                SetPasswordLink.user_id == user.id,
                SetPasswordLink.created_by_id.is_(None),
                SetPasswordLink.created_at > since,
            )
        )
        is not None
    )


def _message(user: User, token: str) -> EmailMessage:
    # The public address, never the request's Host header: a forged Host must not put someone
    # else's server in the link.
    link = current_app.config["PUBLIC_BASE_URL"] + url_for("auth.set_password", token=token)
    context = {
        "user": user,
        "link": link,
        "hours": current_app.config["SET_PASSWORD_LINK_HOURS"],
    }
    with force_locale(accounts.reader_locale(user)):  # theirs, not the form sender's
        subject = _("Choose a new PesaTab password for %(bar)s", bar=user.bar.name)
        body = render_template("auth/reset_email.txt", **context)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = current_app.config["SMTP_FROM"]
    message["To"] = user.email
    message.set_content(body)
    return message

"""Fair sign-in throttling: a guesser is slowed down without locking the real person out.

Three limits, and only failed attempts count (a refused attempt, answered 429, checked no
password and counts for nothing):

- per (address, account) pair, `LOGIN_LIMIT_PER_PAIR`: wrong passwords for one account from one
  place. Someone at another address (the cashier's own phone on mobile data) is not held up.
- per address, `LOGIN_LIMIT_PER_ADDRESS`: generous, against one place trying many accounts.
- per account, `LOGIN_LIMIT_PER_ACCOUNT`: against guessing one account from many addresses.

A *known device* is a browser that has signed in to the account before: each sign-in leaves a
long-lived signed, HttpOnly cookie naming the device and the accounts signed in from it (ids
only, nothing secret; signed with the app's SECRET_KEY by itsdangerous, so it cannot be made
up or edited). For an account it knows, the device is its own pair, (device, account), instead
of (address, account), and is exempt from the address and account limits: the right password
from the cashier's own tablet is let in while a stranger at the same counter, or a crowd of
addresses, is being throttled, and the device's own wrong passwords are still throttled, so it
is no way around the limits for a guesser.
"""

from __future__ import annotations

import hashlib
import secrets

from flask import current_app, g, request
from flask_limiter.util import get_remote_address
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.auth import accounts

DEVICE_COOKIE = "pesatab_device"
DEVICE_COOKIE_PATH = "/login"  # only the sign-in form reads it
DEVICE_DAYS = 365
DEVICE_ACCOUNTS = 8  # the accounts a shared counter tablet remembers, most recent first
_SALT = "pesatab.known-device"
# The form field that names the account (an email or a phone number).
LOGIN_FIELD = "email"


def failed(response) -> bool:
    """Only failed attempts count towards the sign-in limits: a sign-in redirects (302), a
    throttled attempt (429) checked no password."""
    return response.status_code not in (302, 429)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=_SALT)


def _device() -> tuple[str | None, list[int]]:
    """This browser's device id and the accounts it has signed in to (none if unsigned)."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None, []
    try:
        data = _serializer().loads(raw, max_age=DEVICE_DAYS * 86400)
        device, known = str(data["d"]), [int(uid) for uid in data["u"]]
    except (BadSignature, KeyError, TypeError, ValueError):
        return None, []
    return device, known


def _account() -> tuple[str, int | None]:
    """The account the form names, as a limiter key, and its id (None: no such account). The
    same account whichever way it was typed (a phone as 07…, +254…, an email in capitals)."""
    if "login_account" not in g:
        typed = request.form.get(LOGIN_FIELD, "")[: accounts.EMAIL_MAX + 1]
        user = accounts.find_user_by_login(typed)
        if user is not None:
            g.login_account = (f"user:{user.id}", user.id)
        else:
            digest = hashlib.sha256(typed.strip().lower().encode()).hexdigest()[:32]
            g.login_account = (f"typed:{digest}", None)
    return g.login_account


def known_device() -> bool:
    """This browser has signed in to the account the form names before."""
    device, known = _device()
    user_id = _account()[1]
    return device is not None and user_id is not None and user_id in known


def pair_key() -> str:
    account = _account()[0]
    if known_device():
        return f"login-device:{_device()[0]}:{account}"
    return f"login-pair:{get_remote_address()}:{account}"


def account_key() -> str:
    return "login-account:" + _account()[0]


def remember_device(response, user) -> None:
    """Mark this browser as a known device for `user` (kept or started, for another year)."""
    device, known = _device()
    device = device or secrets.token_urlsafe(12)
    known = [user.id, *(uid for uid in known if uid != user.id)][:DEVICE_ACCOUNTS]
    response.set_cookie(
        DEVICE_COOKIE,
        _serializer().dumps({"d": device, "u": known}),
        max_age=DEVICE_DAYS * 86400,
        path=DEVICE_COOKIE_PATH,
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
        httponly=True,
        samesite="Lax",
    )


def limit(setting: str):
    """The limit string a setting holds, read on each request (tests and operators change it)."""
    return lambda: current_app.config[setting]

"""Who may do what, tenant scoping, the login loader and the security headers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import wraps

from flask import Flask, abort, current_app, g, session
from flask_login import current_user, login_required
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from app import logging_setup
from app.extensions import db, login_manager

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Production only: browsers then refuse plain http for a year, subdomains included (local runs
# are plain http, and a browser would remember the header for 127.0.0.1).
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


def init_app(app: Flask) -> None:
    from app.web.sessions import CookieSessionInterface

    app.session_interface = CookieSessionInterface()
    app.after_request(_security_headers)


def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if current_app.config.get("PESATAB_ENV") == "production":
        headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    if response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return response


# -- who is signed in: one set of rules for the user loader and for a poll's own query ----------


def session_ident(user_id: object) -> tuple[int, int] | None:
    """The login cookie's id `<id>:<session_version>` as (user id, session version); None when
    it is not one."""
    if not isinstance(user_id, str):
        return None
    try:
        raw_id, raw_version = user_id.split(":", 1)
        return int(raw_id), int(raw_version)
    except ValueError:
        return None


def signed_in_where() -> tuple:
    """What a session's person must be, as SQL (bound parameters `user_id` and
    `session_version`): that person, still active, on the session version the cookie was
    issued with (a password change or "sign out everywhere" moves it). The user loader's query
    and the status poll's (app/payments/live.py) both filter by it, so they cannot drift."""
    from app.models import User

    return (
        User.id == bindparam("user_id"),
        User.active.is_(True),
        User.session_version == bindparam("session_version"),
    )


def session_params(ident: tuple[int, int]) -> dict:
    return {"user_id": ident[0], "session_version": ident[1]}


def session_ident_as_loaded() -> tuple[int, int] | None:
    """The (user id, session version) Flask-Login would hand the user loader for this request,
    when it would take them straight from the session: nobody loaded yet, session protection
    passes without touching the session, and the session holds a well-formed id. None in
    every other case (signed out, a remember-me cookie, a changed address or browser): the
    caller then goes through Flask-Login itself, which decides as it always has."""
    if "_login_user" in g:
        return None
    mode = current_app.config.get("SESSION_PROTECTION", login_manager.session_protection)
    protected = mode in ("basic", "strong") and session
    if protected and session.get("_id") != login_manager._session_identifier_generator():
        return None
    return session_ident(session.get("_user_id"))


@functools.cache
def _user_with_bar():
    """The signed-in person and their bar in one query (most pages ask for the bar, and a lazy
    load would be a second round trip); built once, as composing it costs more than running it."""
    from app.models import User

    return select(User).options(joinedload(User.bar)).where(*signed_in_where())


@login_manager.user_loader
def load_user(user_id: str):
    """Resolve the cookie id `<id>:<session_version>`; a stale version or inactive person is
    None (`signed_in_where`)."""
    ident = session_ident(user_id)
    if ident is None:
        return None
    user = db.session.scalars(_user_with_bar(), session_params(ident)).one_or_none()
    if user is None:
        return None
    logging_setup.bind_user(user)  # plain ids for the logs, read while the object is fresh
    return user


def role_required(*roles: str) -> Callable:
    """Allow only signed-in people with one of `roles`; others get 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        wrapped.allowed_roles = roles  # read by the route-permission tests
        return wrapped

    return decorator


def bar_object_or_404(model, object_id: int):
    """Fetch `model` by id within the signed-in person's bar; anything else is a 404."""
    obj = db.session.scalar(
        select(model).where(model.id == object_id, model.bar_id == current_user.bar_id)
    )
    if obj is None:
        abort(404)
    return obj


def current_bar():
    """The signed-in person's bar (cached for the request). Operators have none: a bar page
    that forgot its role_required still answers them 403, never another bar's data or a 500."""
    if "bar" not in g:
        if getattr(current_user, "bar_id", None) is None:
            abort(403)
        g.bar = current_user.bar
    return g.bar

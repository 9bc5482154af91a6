"""Who may do what, tenant scoping, the login loader and the security headers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import wraps

from flask import Flask, abort, current_app, g
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


@functools.cache
def _user_with_bar():
    """The signed-in person and their bar in one query (most pages ask for the bar, and a lazy
    load would be a second round trip); built once, as composing it costs more than running it."""
    from app.models import User

    return select(User).options(joinedload(User.bar)).where(User.id == bindparam("user_id"))


@login_manager.user_loader
def load_user(user_id: str):
    """Resolve the cookie id `<id>:<session_version>`; a stale version or inactive person is
    None."""
    try:
        raw_id, raw_version = user_id.split(":", 1)
        uid, version = int(raw_id), int(raw_version)
    except ValueError:
        return None
    user = db.session.scalars(_user_with_bar(), {"user_id": uid}).one_or_none()
    if user is None or not user.active or user.session_version != version:
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

"""The "Sandbox: no real money" marker on every page of a bar whose credentials in use are
Daraja's sandbox. A context processor (registered by the settings blueprint) hands templates
`sandbox_bar()`, which only base.html calls: a status poll, or any other fragment that never
renders base.html, costs nothing; a page costs one query on mpesa_credential's unique bar_id
index, once per request."""

from __future__ import annotations

from flask import g
from flask_login import current_user
from sqlalchemy import select

from app.extensions import db
from app.models import MpesaCredential

SANDBOX = "sandbox"


def bar_is_sandbox(bar_id: int) -> bool:
    """The bar's credentials in use are sandbox ones (a bar without any is not a sandbox bar)."""
    environment = db.session.scalar(
        select(MpesaCredential.environment).where(MpesaCredential.bar_id == bar_id)
    )
    return environment == SANDBOX


def is_sandbox_bar() -> bool:
    """The signed-in person's bar is a sandbox bar (False for operators and people signed
    out)."""
    if "sandbox_bar" not in g:
        bar_id = getattr(current_user, "bar_id", None)
        g.sandbox_bar = bar_id is not None and bar_is_sandbox(bar_id)
    return g.sandbox_bar


def marker_context() -> dict:
    return {"sandbox_bar": is_sandbox_bar}

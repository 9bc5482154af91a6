"""Writing audit entries. Details are plain facts (which fields, which person), never secrets."""

from __future__ import annotations

from flask import has_request_context, request
from flask_login import current_user

from app.extensions import db
from app.models import AuditEvent


def record(
    action: str, *, bar_id: int | None = None, user_id: int | None = None, **details
) -> None:
    """Add an audit entry to the session; it is committed with the change it describes."""
    address = None
    if has_request_context():
        address = request.remote_addr
        if user_id is None and current_user.is_authenticated:
            user_id = current_user.id
        if bar_id is None and current_user.is_authenticated:
            bar_id = current_user.bar_id
    db.session.add(
        AuditEvent(bar_id=bar_id, user_id=user_id, action=action, details=details, address=address)
    )

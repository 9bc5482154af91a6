"""Writing audit entries. Details are plain facts (which fields, which person), never secrets."""

from __future__ import annotations

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import insert

from app.extensions import db
from app.models import AuditEvent, utcnow

_INSERT = insert(AuditEvent.__table__)


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


def record_system(action: str, *, bar_id: int | None, **details) -> None:
    """An entry no signed-in person made (Safaricom's callback applied): `record` without its
    look-up of the current user, written at once through Core in the session's transaction
    (committed or rolled back with the change it describes). The hot callback path's: the
    ORM's unit of work for one row cost about a tenth of a callback."""
    address = request.remote_addr if has_request_context() else None
    db.session.execute(
        _INSERT,
        {
            "bar_id": bar_id,
            "user_id": None,
            "action": action,
            "details": details,
            "address": address,
            "created_at": utcnow(),
        },
    )

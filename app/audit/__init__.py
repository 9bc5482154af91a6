"""Writing audit entries. Details are plain facts (which fields, which person), never secrets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import insert

from app.extensions import db
from app.models import AuditEvent, utcnow

_INSERT = insert(AuditEvent.__table__)
# Entries `record_system` holds back inside `batched()`, per thread (contextvars): None outside.
_held: ContextVar[list[dict] | None] = ContextVar("pesatab_audit_held", default=None)


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
    row = {
        "bar_id": bar_id,
        "user_id": None,
        "action": action,
        "details": details,
        "address": address,
        "created_at": utcnow(),
    }
    held = _held.get()
    if held is not None:
        held.append(row)
    else:
        db.session.execute(_INSERT, row)


@contextmanager
def batched() -> Iterator[None]:
    """`record_system` entries made inside are written together when the block ends, in one
    multi-row INSERT in the same transaction (the background applier's batches of callbacks:
    one statement instead of one per callback). Nothing is written if the block raises: its
    transaction is being rolled back anyway."""
    rows: list[dict] = []
    token = _held.set(rows)
    try:
        yield
    finally:
        _held.reset(token)
    if rows:
        db.session.execute(_INSERT, rows)

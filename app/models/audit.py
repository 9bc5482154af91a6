"""The audit trail: who did what, when, from where. Never secrets.

Rows are written once and never changed: the ORM refuses to update or delete them, whether
one object at a time (a flush) or in bulk (`update(AuditEvent)` / `delete(AuditEvent)`), so no
code path in the app can rewrite history. (The tests empty tables with plain SQL, which is
not the app.)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, event
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from app.extensions import db
from app.models.base import utcnow


class AuditEvent(db.Model):
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bar_id: Mapped[int | None] = mapped_column(ForeignKey("bar.id"), index=True, nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(60))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class AuditImmutable(RuntimeError):
    """Something tried to change or remove an audit entry."""

    def __init__(self, verb: str) -> None:
        super().__init__(f"Audit entries cannot be {verb}; record a new entry instead.")


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(mapper, connection, target) -> None:
    raise AuditImmutable("changed")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(mapper, connection, target) -> None:
    raise AuditImmutable("deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and AuditEvent.__mapper__ in state.all_mappers:
        raise AuditImmutable("changed" if state.is_update else "deleted")

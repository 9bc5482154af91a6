"""The owner's audit log: filters from the query string and a keyset-paged, bar-scoped query.

Pages walk the id downwards (ids only grow, so newest first is id order), through app/web/pager.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import and_, select

from app.extensions import db
from app.i18n import N_
from app.models import AuditEvent, Bar, User
from app.web import pager
from app.web.querystring import (
    BAD_CURSOR,
    DATES_REVERSED,
    parse_date,
    small_int,
    utc_bounds,
)

PAGE_SIZE = 50

BAD_ACTION = N_("Choose an action from the list.")
BAD_PERSON = N_("Choose a person from the list.")


@dataclass
class Filters:
    action: str | None = None
    user_id: int | None = None
    start: date | None = None
    end: date | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def query_args(self) -> dict[str, str]:
        args = {
            "action": self.action,
            "person": str(self.user_id) if self.user_id else None,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }
        return {name: value for name, value in args.items() if value}

    def conditions(self, bar: Bar) -> list:
        """SQL conditions, always including the bar."""
        where = [AuditEvent.bar_id == bar.id]
        if self.action:
            where.append(AuditEvent.action == self.action)
        if self.user_id:
            where.append(AuditEvent.user_id == self.user_id)
        lower, upper = utc_bounds(self.start, self.end, bar.timezone)
        if lower is not None:
            where.append(AuditEvent.created_at >= lower)
        if upper is not None:
            where.append(AuditEvent.created_at < upper)
        return where


def actions_present(bar: Bar) -> list[str]:
    """The actions this bar's log holds, for the filter's list."""
    return list(
        db.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.bar_id == bar.id)
            .distinct()
            .order_by(AuditEvent.action)
        )
    )


def people(bar: Bar) -> list[tuple[int, str]]:
    """Everyone in the bar, deactivated people too: their past actions stay in the log."""
    found = db.session.execute(
        select(User.id, User.name).where(User.bar_id == bar.id).order_by(User.name, User.id)
    )
    return [(user_id, name) for user_id, name in found]


def parse_filters(args: Mapping[str, str], actions: list[str], person_ids: set[int]) -> Filters:
    """Read the filters; a value that is not one of the choices becomes an error sentence."""
    filters = Filters()
    action = args.get("action", "").strip()
    if action in actions:
        filters.action = action
    elif action:
        filters.errors["action"] = BAD_ACTION
    person = small_int(args.get("person", "").strip())
    if person in person_ids:
        filters.user_id = person
    elif args.get("person", "").strip():
        filters.errors["person"] = BAD_PERSON
    filters.start = parse_date(args.get("from", ""), "from", filters.errors)
    filters.end = parse_date(args.get("to", ""), "to", filters.errors)
    if filters.start and filters.end and filters.start > filters.end:
        filters.errors["to"] = DATES_REVERSED
    return filters


def parse_cursor(args: Mapping[str, str]) -> tuple[int | None, list[str]]:
    raw = args.get("before", "").strip()
    if not raw:
        return None, []
    before = small_int(raw)
    return (before, []) if before else (None, [BAD_CURSOR])


def fetch_page(
    bar: Bar, filters: Filters, before: int | None, limit: int = PAGE_SIZE
) -> pager.Page[int]:
    """One page of the bar's audit entries (AuditEvent, the person's name or None), newest
    first, below id `before`."""
    query = (
        select(AuditEvent, User.name)
        .outerjoin(User, and_(User.id == AuditEvent.user_id, User.bar_id == bar.id))
        .where(*filters.conditions(bar))
        .order_by(AuditEvent.id.desc())
    )
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return pager.fetch(query, limit, lambda row: row.AuditEvent.id)

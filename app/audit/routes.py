"""The audit log page: read-only. There is no route that changes an audit entry."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from app.audit import labels, listing
from app.enums import Role
from app.i18n import _
from app.web import pager
from app.web.security import current_bar, role_required

bp = Blueprint("audit", __name__, url_prefix="/settings/audit")


@bp.get("/")
@role_required(Role.OWNER)
def index():
    """Every audited action in the owner's bar, newest first, filterable."""
    bar = current_bar()
    actions = listing.actions_present(bar)
    people = listing.people(bar)
    filters = listing.parse_filters(request.args, actions, {pid for pid, _name in people})
    before, notices = listing.parse_cursor(request.args)
    page = None if filters.errors else listing.fetch_page(bar, filters, before)
    names = dict(people)
    entries = [
        (event, name, _(labels.action_label(event.action)), labels.describe(event.details, names))
        for event, name in (page.rows if page else [])
    ]
    args = filters.query_args()
    context = {
        "filters": filters,
        "form": request.args,
        "actions": [(action, _(labels.action_label(action))) for action in actions],
        "people": people,
        "entries": entries,
        "notices": notices,
        "timezone": bar.timezone,
        **pager.links("audit.index", args, paged=bool(before), older=page.older if page else None),
    }
    return render_template("audit/index.html", **context), 400 if filters.errors else 200

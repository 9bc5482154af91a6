from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app import audit
from app.balance import service as balance
from app.enums import BAR_ROLES, MONEY_ROLES, Role
from app.extensions import db
from app.i18n import LANGUAGES, _
from app.models import utcnow
from app.ops import alerts, notify, system
from app.reconciliation import periods, shifts
from app.settings import vault
from app.web.security import role_required

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def home():
    response = redirect(
        url_for("dashboard.index" if current_user.is_authenticated else "auth.login")
    )
    response.set_data(b"")  # no "Redirecting..." page in English: browsers never show it
    return response


@bp.get("/dashboard")
@login_required
def index():
    if current_user.is_operator:  # operators have no bar: theirs is the page of every bar
        return redirect(url_for("ops.index"))
    bar = current_user.bar
    cred = vault.credential_for(bar)
    senior = current_user.role in MONEY_ROLES
    return render_template(
        "dashboard/index.html",
        bar=bar,
        credentials_unreadable=cred is not None and not vault.can_open(cred),
        pushes_disabled=system.pushes_disabled(),
        alerts=alerts.bar_alerts(bar.id) if senior else [],
        yesterday=notify.yesterday(bar) if current_user.role == Role.OWNER else None,
        tonight=_tonight(bar) if senior else None,
        balance=balance.card(bar) if current_user.role == Role.OWNER else None,
    )


def _tonight(bar) -> dict:
    """Today so far (the bar's calendar day): per person and for everyone."""
    now = utcnow()
    today = periods.local_today(bar.timezone, now)
    rows = shifts.shifts(bar, periods.window(today, today, bar.timezone))
    return {"day": today, "rows": rows, "total": shifts.add_up(rows)}


@bp.post("/dashboard/language")
@role_required(*BAR_ROLES)
def language():
    """A person's own language; the owner also sets the bar's (everyone's who has not chosen)."""
    mine = request.form.get("locale", "")
    if mine not in ("", *LANGUAGES):
        abort(400)
    current_user.locale = mine or None
    bar_choice = request.form.get("bar_locale", "")
    if bar_choice and current_user.role == Role.OWNER:
        if bar_choice not in LANGUAGES:
            abort(400)
        current_user.bar.locale = bar_choice
        audit.record("bar.language", bar_id=current_user.bar_id, language=bar_choice)
    db.session.commit()
    flash(_("Language saved."), "success")
    return redirect(url_for("dashboard.index"))

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from app import jobs
from app.enums import MONEY_ROLES, Role
from app.extensions import db
from app.models import JobStatus
from app.ops import alerts, notify, system
from app.settings import vault

JOB_LABELS = {
    "recover": "Checking payments whose callback has not come",
    "replay": "Re-applying callbacks that failed on our side",
    "expire": "Settling requests that never left PesaTab",
    "reconcile": "Nightly reconciliation summary",
    "summaries": "Morning summary email to owners",
}

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("auth.login"))


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
        job_health=_job_health() if senior else None,
    )


def _job_health() -> list[tuple[str, str, JobStatus | None]]:
    rows = {s.name: s for s in db.session.scalars(select(JobStatus))}
    return [(name, JOB_LABELS.get(name, name), rows.get(name)) for name in jobs.JOBS]

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from app.i18n import _
from app.models import utcnow
from app.models.accounts import OPERATOR
from app.ops import system
from app.ops.forms import DisableForm, EnableForm
from app.ops.overview import OPERATOR_TIMEZONE, SETUP_LABELS, job_health, overview
from app.web.security import role_required

bp = Blueprint("ops", __name__, url_prefix="/ops")


def _page(
    disable_form: DisableForm | None = None,
    enable_form: EnableForm | None = None,
    status: int = 200,
):
    now = utcnow()
    return render_template(
        "ops/index.html",
        overview=overview(now),
        now=now,
        timezone=OPERATOR_TIMEZONE,
        setup_labels=SETUP_LABELS,
        pushes_disabled=system.pushes_disabled(),
        forced_by_environment=current_app.config.get("MPESA_PUSHES_DISABLED", False),
        disable_form=disable_form or DisableForm(formdata=None),
        enable_form=enable_form or EnableForm(formdata=None),
        job_health=job_health(),
    ), status


@bp.get("/")
@role_required(OPERATOR)
def index():
    """Every bar: set-up state, M-Pesa switch, today's volume, alerts; and the global switch."""
    return _page()


@bp.post("/mpesa/disable")
@role_required(OPERATOR)
def disable_pushes():
    form = DisableForm()
    if not form.validate():
        return _page(disable_form=form, status=400)
    system.set_pushes_disabled(True, by=current_user.email)
    flash(
        _("New M-Pesa requests are stopped for every bar. Callbacks are still applied."), "warning"
    )
    return redirect(url_for("ops.index"))


@bp.post("/mpesa/enable")
@role_required(OPERATOR)
def enable_pushes():
    form = EnableForm()
    if not form.validate():
        return _page(enable_form=form, status=400)
    system.set_pushes_disabled(False, by=current_user.email)
    if current_app.config.get("MPESA_PUSHES_DISABLED"):
        flash(
            _(
                "Switched on here, but MPESA_PUSHES_DISABLED is set in the environment, so "
                "requests stay stopped until it is removed and the app restarted."
            ),
            "warning",
        )
    else:
        flash(
            _("M-Pesa requests are allowed again (each bar's own switch still applies)."),
            "success",
        )
    return redirect(url_for("ops.index"))

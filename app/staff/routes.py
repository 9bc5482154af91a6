from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from app.auth import accounts
from app.enums import Role
from app.extensions import db
from app.models import User
from app.staff.forms import AddStaffForm, ConfirmForm
from app.web.security import bar_object_or_404, role_required

bp = Blueprint("staff", __name__, url_prefix="/settings/staff")


def _link_url(token: str) -> str:
    return url_for("auth.set_password", token=token, _external=True)


@bp.get("/")
@role_required(Role.OWNER)
def index():
    people = db.session.scalars(
        select(User)
        .where(User.bar_id == current_user.bar_id)
        .order_by(User.active.desc(), User.name)
    ).all()
    return render_template(
        "staff/index.html", people=people, form=AddStaffForm(), confirm=ConfirmForm()
    )


@bp.post("/")
@role_required(Role.OWNER)
def add():
    form = AddStaffForm()
    if form.validate_on_submit():
        try:
            user, token = accounts.add_staff(
                current_user.bar, current_user, form.name.data, form.email.data, form.role.data
            )
        except accounts.AccountError as err:
            getattr(form, err.field or "email").errors.append(str(err))
        else:
            return render_template("staff/link.html", person=user, link=_link_url(token))
    people = db.session.scalars(select(User).where(User.bar_id == current_user.bar_id)).all()
    return render_template("staff/index.html", people=people, form=form, confirm=ConfirmForm()), 400


@bp.post("/<int:user_id>/deactivate")
@role_required(Role.OWNER)
def deactivate(user_id: int):
    return _set_active(user_id, False)


@bp.post("/<int:user_id>/reactivate")
@role_required(Role.OWNER)
def reactivate(user_id: int):
    return _set_active(user_id, True)


def _set_active(user_id: int, active: bool):
    # CSRFProtect has already checked the token on every POST.
    person = bar_object_or_404(User, user_id)
    try:
        accounts.set_active(person, active)
    except accounts.AccountError as err:
        flash(str(err), "error")
    else:
        state = "can sign in again" if active else "is signed out and can no longer sign in"
        flash(f"{person.name} {state}.", "success")
    return redirect(url_for("staff.index"))


@bp.post("/<int:user_id>/link")
@role_required(Role.OWNER)
def new_link(user_id: int):
    person = bar_object_or_404(User, user_id)
    if person.role == Role.OWNER or not person.active:
        flash("Links are for active managers and cashiers.", "error")
        return redirect(url_for("staff.index"))
    token = accounts.reissue_link(person, current_user)
    return render_template("staff/link.html", person=person, link=_link_url(token))

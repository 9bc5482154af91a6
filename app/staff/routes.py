from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import force_locale
from flask_login import current_user

from app.auth import accounts
from app.enums import Role
from app.i18n import _
from app.models import User
from app.staff import people
from app.staff.forms import AddStaffForm, ConfirmForm
from app.web.security import bar_object_or_404, role_required

bp = Blueprint("staff", __name__, url_prefix="/settings/staff")


def _link_page(person: User, token: str):
    link = url_for("auth.set_password", token=token, _external=True)
    with force_locale(accounts.reader_locale(person)):  # the message is for them to read
        sentence = people.share_sentence(
            person, link, current_app.config["SET_PASSWORD_LINK_HOURS"]
        )
    return render_template(
        "staff/link.html",
        person=person,
        link=link,
        whatsapp=people.whatsapp_url(sentence),
        sign_in_name=accounts.sign_in_name(person),
    )


def _index(form: AddStaffForm, status: int = 200):
    return render_template(
        "staff/index.html",
        people=people.of_bar(current_user.bar_id),
        form=form,
        confirm=ConfirmForm(),
        may_issue_link=people.may_issue_link,
        display_phone=accounts.display_phone,
    ), status


@bp.get("/")
@role_required(Role.OWNER, Role.MANAGER)
def index():
    return _index(AddStaffForm())


@bp.post("/")
@role_required(Role.OWNER)
def add():
    form = AddStaffForm()
    if form.validate_on_submit():
        try:
            user, token = accounts.add_staff(
                current_user.bar,
                current_user,
                form.name.data,
                form.email.data,
                form.role.data,
                phone=form.phone.data,
            )
        except accounts.AccountError as err:
            getattr(form, err.field or "email").errors.append(str(err))
        else:
            return _link_page(user, token)
    return _index(form, 400)


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
        flash(
            _("%(name)s can sign in again.", name=person.name)
            if active
            else _("%(name)s is signed out and can no longer sign in.", name=person.name),
            "success",
        )
    return redirect(url_for("staff.index"))


@bp.post("/<int:user_id>/link")
@role_required(Role.OWNER, Role.MANAGER)
def new_link(user_id: int):
    person = bar_object_or_404(User, user_id)
    if not people.may_issue_link(current_user, person):
        flash(people.link_refusal(current_user, person), "error")
        return redirect(url_for("staff.index"))
    token = accounts.reissue_link(person, current_user)
    return _link_page(person, token)

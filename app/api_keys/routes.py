from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from app.api import keys
from app.api_keys import bp
from app.api_keys.forms import CreateKeyForm
from app.models import ApiKey
from app.security import bar_object_or_404, current_bar, role_required


def _index(form: CreateKeyForm, status: int = 200):
    return render_template("api_keys/index.html", keys=keys.bar_keys(current_user.bar_id), form=form), status


@bp.get("/")
@role_required("owner")
def index():
    return _index(CreateKeyForm(formdata=None))


@bp.post("/")
@role_required("owner")
def create():
    form = CreateKeyForm()
    if form.validate_on_submit():
        try:
            new = keys.create_key(current_bar(), form.label.data, created_by_id=current_user.id)
        except keys.ApiKeyError as err:
            form.label.errors.append(str(err))
        else:
            return render_template("api_keys/created.html", key=new.api_key, secret=new.secret)
    return _index(form, 400)


@bp.post("/<int:key_id>/revoke")
@role_required("owner")
def revoke(key_id: int):
    # CSRFProtect has already checked the token on every POST.
    key = bar_object_or_404(ApiKey, key_id)
    if keys.revoke_key(key, user_id=current_user.id):
        flash(f"The key “{key.label}” ({key.prefix}…) is revoked; requests with it now get 401.", "success")
    return redirect(url_for("api_keys.index"))

"""The owner's settings: the bar's Daraja credentials and go-live (/settings/mpesa/), and the
point-of-sale API keys (/settings/api-keys/)."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.api import keys
from app.enums import Purpose, Role
from app.extensions import db
from app.i18n import _
from app.models import ApiKey, MpesaCredential, Payment
from app.mpesa import InvalidPhone, normalize_phone
from app.payments import c2b
from app.payments.live import status_context
from app.payments.push import PushRefused
from app.settings import golive, onboarding, sandbox, vault
from app.settings.forms import ActionForm, CreateKeyForm, CredentialForm, TestPushForm
from app.web.security import bar_object_or_404, current_bar, role_required

bp = Blueprint("settings", __name__, url_prefix="/settings")
# "Sandbox: no real money" on every page of a sandbox bar (base.html asks sandbox_bar()).
bp.app_context_processor(sandbox.marker_context)


def _latest_test_push(bar_id: int) -> Payment | None:
    return db.session.scalar(
        select(Payment)
        .where(Payment.bar_id == bar_id, Payment.purpose == Purpose.TEST)
        .order_by(Payment.id.desc())
        .limit(1)
    )


def _page(
    form: CredentialForm | None = None, push_form: TestPushForm | None = None, status: int = 200
):
    bar = current_bar()
    cred = vault.credential_for(bar)
    go_live = golive.section(bar, cred) if cred is not None else None
    if form is None:
        # New credentials waiting fill the boxes: saving again edits them, not the ones in use.
        shown = go_live.pending if go_live and go_live.pending else cred
        form = CredentialForm(first_time=cred is None, obj=shown, formdata=None)
    return render_template(
        "settings/mpesa.html",
        bar=bar,
        cred=cred,
        readable=cred is None or vault.can_open(cred),
        unreadable_message=vault.CredentialsUnavailable().args[0],
        form=form,
        push_form=push_form or TestPushForm(formdata=None),
        action=ActionForm(),
        test_push=_test_push_status(bar.id),
        go_live=go_live,
        setup_state=golive.state_label(bar.setup_state),
        c2b=c2b.registration_of(bar) if cred is not None else None,
    ), status


def _test_push_status(bar_id: int) -> dict | None:
    payment = _latest_test_push(bar_id)
    return status_context(payment) if payment else None


@bp.get("/mpesa/")
@role_required(Role.OWNER)
def index():
    return _page()


@bp.post("/mpesa/")
@role_required(Role.OWNER)
def save():
    bar = current_bar()
    cred = vault.credential_for(bar)
    form = CredentialForm(first_time=cred is None)
    if not form.validate():
        return _page(form=form, status=400)
    had_pending = cred is not None and cred.has_pending
    changed = vault.save(
        bar,
        vault.CredentialInput(
            environment=form.environment.data,
            kind=form.kind.data,
            shortcode=form.shortcode.data,
            till_number=form.till_number.data or None,
            consumer_key=form.consumer_key.data or None,
            consumer_secret=form.consumer_secret.data or None,
            passkey=form.passkey.data or None,
        ),
    )
    if changed and cred is not None and cred.has_pending:
        flash(
            _(
                "Saved as new credentials, waiting. The bar stays live on the current ones: check "
                "the new ones, send a KES 1 test push with them, then switch to them in step 3."
            ),
            "success",
        )
    elif changed:
        flash(
            _("Saved. The credentials changed, so check them and send a test push again."),
            "success",
        )
    elif had_pending and not cred.has_pending:
        flash(
            _(
                "Those are the credentials in use, so nothing is waiting any more: the new ones "
                "were discarded."
            ),
            "info",
        )
    else:
        flash(_("Nothing changed."), "info")
    return redirect(url_for("settings.index"))


@bp.post("/mpesa/check")
@role_required(Role.OWNER)
def check():
    try:
        result = onboarding.check_credentials(current_bar())
    except (onboarding.OnboardingError, vault.CredentialsUnavailable) as err:
        flash(str(err), "error")
    else:
        flash(result.message, "success" if result.ok else "error")
    return redirect(url_for("settings.index"))


@bp.post("/mpesa/test-push")
@role_required(Role.OWNER)
def test_push():
    form = TestPushForm()
    if not form.validate():
        return _page(push_form=form, status=400)
    try:
        phone = normalize_phone(form.phone.data)
        onboarding.send_test_push(current_bar(), current_user.id, phone, form.amount.data)
    except InvalidPhone as err:
        form.phone.errors.append(str(err))
        return _page(push_form=form, status=400)
    except (onboarding.OnboardingError, PushRefused, vault.CredentialsUnavailable) as err:
        flash(str(err), "error")
    return redirect(url_for("settings.index") + "#test-push")


@bp.post("/mpesa/go-live")
@role_required(Role.OWNER)
def go_live():
    try:
        onboarding.go_live(current_bar())
    except onboarding.OnboardingError as err:
        flash(str(err), "error")
    else:
        flash(_("Live! Cashiers can now send M-Pesa requests."), "success")
    return redirect(url_for("settings.index"))


@bp.post("/mpesa/<int:credential_id>/pending/<int:revision>/use")
@role_required(Role.OWNER)
def use_pending(credential_id: int, revision: int):
    bar_object_or_404(MpesaCredential, credential_id)
    try:
        onboarding.use_pending(current_bar(), revision)
    except onboarding.OnboardingError as err:
        flash(str(err), "error")
    else:
        flash(_("Switched: cashiers now send M-Pesa requests with the new credentials."), "success")
    return redirect(url_for("settings.index"))


@bp.post("/mpesa/<int:credential_id>/pending/<int:revision>/discard")
@role_required(Role.OWNER)
def discard_pending(credential_id: int, revision: int):
    bar_object_or_404(MpesaCredential, credential_id)
    try:
        onboarding.discard_pending(current_bar(), revision)
    except onboarding.OnboardingError as err:
        flash(str(err), "error")
    else:
        flash(_("Discarded the new credentials. Nothing changed for cashiers."), "success")
    return redirect(url_for("settings.index"))


@bp.post("/mpesa/switch/<any(on, off):state>")
@role_required(Role.OWNER)
def switch(state: str):
    onboarding.set_enabled(current_bar(), state == "on")
    flash(
        _("M-Pesa requests are on.")
        if state == "on"
        else _("M-Pesa requests are off: cashiers cannot send any until you switch them on."),
        "success",
    )
    return redirect(url_for("settings.index"))


# The point-of-sale API keys: a bar's owner makes and revokes them; the secret is shown once.


def _keys_page(form: CreateKeyForm, status: int = 200):
    return render_template(
        "settings/api_keys.html", keys=keys.bar_keys(current_user.bar_id), form=form
    ), status


@bp.get("/api-keys/")
@role_required(Role.OWNER)
def api_keys():
    return _keys_page(CreateKeyForm(formdata=None))


@bp.post("/api-keys/")
@role_required(Role.OWNER)
def create_api_key():
    form = CreateKeyForm()
    if form.validate_on_submit():
        try:
            new = keys.create_key(current_bar(), form.label.data, created_by_id=current_user.id)
        except keys.ApiKeyError as err:
            form.label.errors.append(str(err))
        else:
            return render_template(
                "settings/api_key_created.html", key=new.api_key, secret=new.secret
            )
    return _keys_page(form, 400)


@bp.post("/api-keys/<int:key_id>/revoke")
@role_required(Role.OWNER)
def revoke_api_key(key_id: int):
    # CSRFProtect has already checked the token on every POST.
    key = bar_object_or_404(ApiKey, key_id)
    if keys.revoke_key(key, user_id=current_user.id):
        flash(
            _(
                "The key “%(label)s” (%(prefix)s…) is revoked; requests with it now get 401.",
                label=key.label,
                prefix=key.prefix,
            ),
            "success",
        )
    return redirect(url_for("settings.api_keys"))


@bp.post("/mpesa/c2b/register")
@role_required(Role.OWNER)
def register_c2b():
    """Tell Daraja where the bar's menu payments go (C2B confirmation and validation URLs)."""
    try:
        c2b.register(current_bar(), version="v1" if request.form.get("v1") else "v2")
    except c2b.RegisterError as err:
        flash(str(err), "error")
    else:
        flash(_("Registered: money paid from the M-Pesa menu now reaches PesaTab."), "success")
    return redirect(url_for("settings.index"))

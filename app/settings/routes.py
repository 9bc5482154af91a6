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
from app.payments import c2b, c2b_pull, c2b_refusals, c2b_validation
from app.payments.live import status_context
from app.payments.push import PushRefused
from app.settings import golive, onboarding, sandbox, vault
from app.settings import initiator as initiator_creds
from app.settings.forms import (
    ActionForm,
    CreateKeyForm,
    CredentialForm,
    InitiatorForm,
    TestPushForm,
)
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
        initiator=initiator_creds.initiator_for(bar.id),
        initiator_form=InitiatorForm(formdata=None, obj=initiator_creds.initiator_for(bar.id)),
        **_c2b_context(bar, cred),
    ), status


def _c2b_context(bar, cred) -> dict:
    """The C2B section's state: registered when (EAT) and with which version, the last
    confirmation seen (EAT), and whether the bar is on production (register once)."""
    registration = c2b.registration_of(bar) if cred is not None else None
    view = {
        "registered": c2b_refusals.in_eat(registration.registered_at) if registration else "",
        "last_seen": c2b_refusals.in_eat(registration.last_confirmation_at) if registration else "",
        "version": c2b.registered_version(bar) if registration else None,
        "production": cred is not None and cred.environment == "production",
    }
    return {"c2b": registration, "c2b_view": view}


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


@bp.get("/mpesa/c2b")
@role_required(Role.OWNER, Role.MANAGER)
def c2b_urls():
    """The C2B section alone, for managers (the M-Pesa page is the owner's)."""
    bar = current_bar()
    cred = vault.credential_for(bar)
    context = _c2b_context(bar, cred)
    return render_template("settings/c2b.html", bar=bar, cred=cred, action=ActionForm(), **context)


@bp.post("/mpesa/c2b/register")
@role_required(Role.OWNER, Role.MANAGER)
def register_c2b():
    """Tell Daraja where the bar's menu payments go (C2B confirmation and validation URLs).
    Managers and owners may; a production bar registered already needs "again" ticked."""
    try:
        c2b.register(
            current_bar(),
            version="v1" if request.form.get("v1") else "v2",
            again=bool(request.form.get("again")),
        )
    except c2b.RegisterError as err:
        flash(str(err), "error")
    else:
        flash(_("Registered: money paid from the M-Pesa menu now reaches PesaTab."), "success")
    if current_user.role == Role.OWNER:
        return redirect(url_for("settings.index") + "#c2b")
    return redirect(url_for("settings.c2b_urls"))


@bp.context_processor
def _c2b_validation_context() -> dict:
    return {"validation_rule_of": c2b_validation.rule_of, "validation_rules": c2b_validation}


@bp.post("/mpesa/c2b/validation")
@role_required(Role.OWNER, Role.MANAGER)
def c2b_validation_rule():
    """Choose what the validation URL answers: accept every payment, or refuse a PayBill
    payment whose account is not an open tab's code (audited)."""
    if c2b_validation.set_rule(current_bar(), request.form.get("rule", ""), current_user.id):
        flash(_("Saved: the validation answer is changed."), "success")
    else:
        flash(_("Choose one of the two answers."), "error")
    if current_user.role == Role.OWNER:
        return redirect(url_for("settings.index") + "#c2b-validation")
    return redirect(url_for("settings.c2b_urls") + "#c2b-validation")


@bp.post("/mpesa/initiator")
@role_required(Role.OWNER)
def save_initiator():
    """The initiator credentials cashiers' "Verify an M-Pesa code" asks M-Pesa with."""
    form = InitiatorForm()
    if not form.validate():
        flash(" ".join(str(e) for errors in form.errors.values() for e in errors), "error")
        return redirect(url_for("settings.index") + "#initiator")
    typed = initiator_creds.InitiatorInput(
        form.initiator_name.data, form.initiator_password.data or None, form.certificate.data
    )
    try:
        changed = initiator_creds.save(current_bar(), typed)
    except initiator_creds.InitiatorError as err:
        flash(str(err), "error")
    else:
        if changed:
            flash(_("Saved: cashiers can now ask M-Pesa whether a code is real."), "success")
        else:
            flash(_("Nothing changed."), "info")
    return redirect(url_for("settings.index") + "#initiator")


@bp.context_processor
def _c2b_pull_context() -> dict:
    return {"pull_registration_of": c2b_pull.registration_of}


@bp.post("/mpesa/c2b/pull")
@role_required(Role.OWNER, Role.MANAGER)
def register_pull():
    """Register the bar for Pull Transactions, so the pull job finds menu money whose
    confirmation never came."""
    try:
        c2b_pull.register(current_bar(), request.form.get("nominated_number", "")[:20])
    except c2b_pull.PullError as err:
        flash(str(err), "error")
    else:
        flash(
            _("Registered: PesaTab now asks M-Pesa for menu payments whose message was lost."),
            "success",
        )
    if current_user.role == Role.OWNER:
        return redirect(url_for("settings.index") + "#c2b-pull")
    return redirect(url_for("settings.c2b_urls") + "#c2b-pull")

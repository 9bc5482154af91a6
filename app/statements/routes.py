"""Owners upload the M-Pesa statement; owners and managers read it and attach orphans to tabs."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.enums import MONEY_ROLES, Role
from app.extensions import csrf
from app.i18n import _
from app.models import Payment, StatementImport, Tab
from app.statements import adoption, importer, matching
from app.statements.forms import AttachForm, ReceiptForm, UploadForm
from app.statements.reader import StatementError
from app.web.security import bar_object_or_404, current_bar, role_required

bp = Blueprint("statements", __name__, url_prefix="/reconciliation/statements")

# A 100,000-line statement is about 15 MB of CSV, past the app-wide 5 MB limit for forms.
UPLOAD_LIMIT = 50 * 1024 * 1024


@bp.app_template_filter("cents")
def cents(amount: int | None) -> str:
    """Statement amounts in cents: 125000 -> 'KES 1,250.00'."""
    if amount is None:
        return "KES —"
    sign = "-" if amount < 0 else ""
    shillings, rest = divmod(abs(int(amount)), 100)
    return f"{sign}KES {shillings:,}.{rest:02d}"


def _said(err: StatementError) -> str:
    """The refusal in the reader's language."""
    return _(err.message, **err.values)


def _index_page(form: UploadForm, status: int = 200):
    imports = importer.recent_imports(current_user.bar_id)
    return render_template("statements/index.html", imports=imports, form=form), status


@bp.get("/")
@role_required(*MONEY_ROLES)
def index():
    return _index_page(UploadForm(formdata=None))


@bp.post("/")
@csrf.exempt  # checked below, once the larger upload limit is in place
@role_required(Role.OWNER)
def upload():
    # CSRFProtect would read the body under the app-wide limit before this view ran.
    request.max_content_length = current_app.config.get("STATEMENT_UPLOAD_MAX_BYTES", UPLOAD_LIMIT)
    csrf.protect()
    form = UploadForm()
    if not form.validate():
        return _index_page(form, 400)
    file = form.statement.data
    try:
        result = importer.import_statement(
            current_bar(), current_user.id, file.filename or "", file.stream
        )
    except StatementError as err:
        form.statement.errors.append(_said(err))
        return _index_page(form, 422)
    flash(result.message, "info" if result.already else "success")
    return redirect(url_for("statements.detail", import_id=result.statement.id))


@bp.get("/<int:import_id>")
@role_required(*MONEY_ROLES)
def detail(import_id: int):
    record = bar_object_or_404(StatementImport, import_id)
    return render_template(
        "statements/detail.html",
        report=matching.report(record),
        tabs=matching.open_tabs(current_user.bar_id),
        form=AttachForm(formdata=None),
    )


@bp.post("/<int:import_id>/lines/<int:line_id>/attach")
@role_required(*MONEY_ROLES)
def attach(import_id: int, line_id: int):
    line, back = _line(import_id, line_id)
    form = AttachForm()
    if not form.validate():
        flash(_("Choose the tab to attach the payment to."), "error")
        return back
    tab = bar_object_or_404(Tab, form.tab_id.data)
    try:
        payment = matching.attach(line, tab, current_user.id)
    except StatementError as err:
        flash(_said(err), "error")
    else:
        flash(
            _(
                "KES %(amount)s (receipt %(receipt)s) is now paid on %(tab)s.",
                amount=format(payment.amount, ","),
                receipt=payment.receipt,
                tab=tab.label,
            ),
            "success",
        )
    return back


@bp.post("/<int:import_id>/lines/<int:line_id>/receipt")
@role_required(*MONEY_ROLES)
def claim_receipt(import_id: int, line_id: int):
    """ "This line is payment N": a payment paid in PesaTab whose receipt never came."""
    line, back = _line(import_id, line_id)
    form = ReceiptForm()
    if not form.validate():
        flash(_("Choose the payment this receipt belongs to."), "error")
        return back
    payment = bar_object_or_404(Payment, form.payment_id.data)
    try:
        adoption.claim_receipt(line, payment, current_user.id)
    except StatementError as err:
        flash(_said(err), "error")
    else:
        flash(
            _(
                "Payment %(id)s now has receipt %(receipt)s; the line counts once.",
                id=payment.id,
                receipt=line.receipt,
            ),
            "success",
        )
    return back


def _line(import_id: int, line_id: int):
    """The bar's statement line, and the redirect back to it on its statement's page."""
    record = bar_object_or_404(StatementImport, import_id)
    line = matching.line_of(record, line_id)
    if line is None:
        abort(404)
    return line, redirect(
        url_for("statements.detail", import_id=record.id, _anchor=f"line-{line.id}")
    )

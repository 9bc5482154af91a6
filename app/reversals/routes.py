"""Giving a payment's money back: ask (POST) and watch M-Pesa's answer arrive (GET, polled
every 2 s while it is awaited); settle from the statement one M-Pesa never answered (POST).
Owners and managers only; another bar's payment or reversal is a 404."""

from __future__ import annotations

from flask import Blueprint, request
from flask_login import current_user

from app.enums import MONEY_ROLES
from app.i18n import _
from app.models import Payment, Reversal
from app.reversals import manual, present, service
from app.web import htmx
from app.web.security import bar_object_or_404, current_bar, role_required

bp = Blueprint("reversals", __name__, url_prefix="/reversals")


def _render(payment: Payment, *, error: str | None = None, field: str | None = None,
            status: int = 200):  # fmt: skip
    return htmx.render(
        "reversals/_card.html",
        "reversals/page.html",
        status,
        card=present.card(payment, current_bar().timezone),
        error=error,
        error_field=field,
        form=request.form,
        timezone=current_bar().timezone,
    )


@bp.get("/payments/<int:payment_id>")
@role_required(*MONEY_ROLES)
def show(payment_id: int):
    return _render(bar_object_or_404(Payment, payment_id))


@bp.post("/payments/<int:payment_id>")
@role_required(*MONEY_ROLES)
def ask(payment_id: int):
    payment = bar_object_or_404(Payment, payment_id)
    typed = (request.form.get("amount") or "").strip().replace(",", "")
    amount = None
    if typed:
        if not typed.isdigit() or len(typed) > 7:
            error = _("Type the amount in whole shillings, like 500.")
            return _render(payment, error=error, field="amount", status=422)
        amount = int(typed)
    try:
        service.ask(
            current_bar(),
            payment,
            amount=amount,
            reason=request.form.get("reason"),
            user_id=current_user.id,
        )
    except service.ReversalError as err:
        status = 409 if err.held else 422
        return _render(payment, error=err.message, field=err.field, status=status)
    return _render(bar_object_or_404(Payment, payment_id))


@bp.post("/<int:reversal_id>/settle")
@role_required(*MONEY_ROLES)
def settle(reversal_id: int):
    """What the M-Pesa statement shows for a reversal M-Pesa never answered."""
    reversal = bar_object_or_404(Reversal, reversal_id)
    payment = bar_object_or_404(Payment, reversal.payment_id)
    answer = request.form.get("answer")
    if answer not in (manual.GIVEN_BACK, manual.NOT_GIVEN_BACK):
        error = _("Say what the M-Pesa statement shows: the money went back, or it did not.")
        return _render(payment, error=error, status=422)
    try:
        manual.settle(
            reversal,
            given_back=answer == manual.GIVEN_BACK,
            note=request.form.get("note"),
            user_id=current_user.id,
            timezone=current_bar().timezone,
        )
    except manual.SettleError as err:
        status = 409 if err.conflict else 422
        return _render(payment, error=err.message, field=err.field, status=status)
    return _render(bar_object_or_404(Payment, reversal.payment_id))

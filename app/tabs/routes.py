"""Cashier pages: the tab list, a tab, and asking a customer's phone for payment."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from app.enums import BAR_ROLES, MONEY_ROLES
from app.extensions import db, limiter
from app.i18n import N_, _
from app.models import Payment, Tab, TabLine, Tender
from app.mpesa import InvalidPhone, normalize_phone
from app.payments import c2b
from app.payments.live import status_context, version_of
from app.payments.push import PushRefused
from app.tabs import actions as tab_domain
from app.tabs import bill_qr, tenders
from app.tabs import incoming as incoming_list
from app.tabs import panel as tab_panel
from app.tabs import totals as tab_totals
from app.tabs.forms import ActionForm, LineForm, OpenTabForm, PayForm, TenderForm, VoidForm
from app.tabs.queries import tab_list, tab_payments, tab_tenders
from app.web import htmx
from app.web.security import bar_object_or_404, current_bar, role_required

bp = Blueprint("tabs", __name__, url_prefix="/tabs")

STAFF = BAR_ROLES
PUSH_LIMIT_MESSAGE = N_(
    "Too many M-Pesa requests in the last few minutes. Wait a moment, then send again."
)


def _push_key_bar() -> str:
    return f"push-bar:{getattr(current_user, 'bar_id', 'anon')}"


def _push_key_user() -> str:
    return f"push-user:{getattr(current_user, 'id', 'anon')}"


def _pushed(response) -> bool:
    """Only a request that reached M-Pesa (or found one already waiting) counts against the push
    limit: a mistyped phone or amount, answered with its sentence, does not."""
    return response.status_code in (200, 302)


def _push_limited(_limit):
    """The push limit, said on the pay panel where the cashier is looking (429), with what they
    typed kept."""
    tab = bar_object_or_404(Tab, request.view_args["tab_id"])
    form = PayForm()
    form.form_errors.append(_(PUSH_LIMIT_MESSAGE))
    if not htmx.is_htmx():
        return make_response(_tab_page(tab, pay_form=form, status=429))
    return make_response(_pay_panel(tab, form, None, False, status=429))


@bp.get("/")
@role_required(*STAFF)
def index():
    rows = tab_list(current_user.bar_id, request.args.get("q", ""))
    return htmx.render(
        "tabs/_list.html",
        "tabs/index.html",
        rows=rows,
        form=OpenTabForm(formdata=None),
        q=request.args.get("q", ""),
        **({} if htmx.wants_fragment() else incoming_list.context(current_user.bar_id, None)),
        action=ActionForm(),
        timezone=current_bar().timezone,
    )


@bp.post("/")
@role_required(*STAFF)
def open_tab():
    form = OpenTabForm()
    if not form.validate():
        rows = tab_list(current_user.bar_id)
        return render_template("tabs/index.html", rows=rows, form=form, q=""), 400
    tab = tab_domain.open_tab(current_bar(), current_user.id, form.label.data)
    return redirect(url_for("tabs.detail", tab_id=tab.id))


def _tab_page(
    tab: Tab, *, line_form=None, pay_form=None, void_form=None, tender_form=None, status=200
):
    totals = tab_totals.totals(tab)
    if pay_form is None:
        pay_form = PayForm(formdata=None, data={"amount": totals.requestable or None})
    payments = [status_context(p, version_of(p, totals)) for p in tab_payments(tab.id)]
    return render_template(
        "tabs/detail.html",
        tab=tab,
        totals=totals,
        payments=payments,
        line_form=line_form or LineForm(formdata=None),
        pay_form=pay_form,
        void_form=void_form or VoidForm(formdata=None),
        tender_form=tender_form or TenderForm(formdata=None),
        tenders=tab_tenders(tab.id),
        **(incoming_list.context(tab.bar_id, tab) if tab.status == "open" else {"incoming": []}),
        timezone=current_bar().timezone,
        action=ActionForm(),
        push_blocker=_push_blocker(),
    ), status


def _push_blocker() -> str | None:
    return tab_panel.push_blocker(current_bar())


@bp.get("/<int:tab_id>")
@role_required(*STAFF)
def detail(tab_id: int):
    return _tab_page(bar_object_or_404(Tab, tab_id))


@bp.post("/<int:tab_id>/lines")
@role_required(*STAFF)
def add_line(tab_id: int):
    tab = bar_object_or_404(Tab, tab_id)
    form = LineForm()
    if not form.validate():
        return _tab_page(tab, line_form=form, status=400)
    try:
        tab_domain.add_line(
            tab, current_user.id, form.description.data, form.quantity.data, form.unit_price.data
        )
    except tab_domain.TabError as err:
        flash(str(err), "error")
    return redirect(url_for("tabs.detail", tab_id=tab.id))


@bp.post("/<int:tab_id>/pay")
@role_required(*STAFF)
@limiter.limit(
    lambda: current_app.config["PUSH_LIMIT_PER_BAR"],
    key_func=_push_key_bar,
    error_message=PUSH_LIMIT_MESSAGE,
    deduct_when=_pushed,
    on_breach=_push_limited,
)
@limiter.limit(
    lambda: current_app.config["PUSH_LIMIT_PER_USER"],
    key_func=_push_key_user,
    error_message=PUSH_LIMIT_MESSAGE,
    deduct_when=_pushed,
    on_breach=_push_limited,
)
def pay(tab_id: int):
    tab = bar_object_or_404(Tab, tab_id)
    form = PayForm()
    payment, already = None, False
    if form.validate():
        try:
            phone = normalize_phone(form.phone.data)
            result = tab_domain.request_payment(tab, current_user.id, phone, form.amount.data)
            payment, already = result.payment, not result.created
        except InvalidPhone as err:
            form.phone.errors.append(str(err))
        except tab_domain.TabError as err:
            getattr(form, err.field or "amount").errors.append(str(err))
        except PushRefused as err:
            form.form_errors.append(err.message)
    if not htmx.is_htmx():
        if payment is not None:
            return redirect(url_for("tabs.detail", tab_id=tab.id) + f"#payment-{payment.id}")
        return _tab_page(tab, pay_form=form, status=400)
    return _pay_panel(tab, form, payment, already)


def _pay_panel(
    tab: Tab, form: PayForm, payment: Payment | None, already: bool, status: int | None = None
):
    """htmx answer: the pay panel again, plus the payment (new or the one already waiting)
    and the refreshed summary, out of band."""
    totals = tab_totals.totals(tab)
    if payment is not None:
        form = PayForm(formdata=None, data={"amount": totals.requestable or None})
    status = status or (200 if payment is not None or not form.errors else 422)
    return render_template(
        "tabs/_pay_result.html",
        tab=tab,
        totals=totals,
        pay_form=form,
        payment=status_context(payment, version_of(payment, totals)) if payment else None,
        already=already,
        push_blocker=_push_blocker(),
    ), status


@bp.post("/<int:tab_id>/close")
@role_required(*STAFF)
def close(tab_id: int):
    tab = bar_object_or_404(Tab, tab_id)
    try:
        tab_domain.close_tab(tab, current_user.id)
    except tab_domain.TabError as err:
        flash(str(err), "error")
    else:
        flash(_("%(tab)s is settled and closed.", tab=tab.label), "success")
    return redirect(url_for("tabs.detail", tab_id=tab.id))


@bp.post("/<int:tab_id>/void")
@role_required(*MONEY_ROLES)
def void(tab_id: int):
    tab = bar_object_or_404(Tab, tab_id)
    form = VoidForm()
    if not form.validate():
        return _tab_page(tab, void_form=form, status=400)
    try:
        tab_domain.void_tab(tab, current_user.id, form.reason.data)
    except tab_domain.TabError as err:
        flash(str(err), "error")
    else:
        flash(_("%(tab)s is void. Any payments already made stay on it.", tab=tab.label), "success")
    return redirect(url_for("tabs.detail", tab_id=tab.id))


@bp.post("/<int:tab_id>/tenders")
@role_required(*STAFF)
def add_tender(tab_id: int):
    """ "Paid KES 500 in cash" / "by card": counted against the balance, never as M-Pesa."""
    tab = bar_object_or_404(Tab, tab_id)
    form = TenderForm()
    if form.validate():
        try:
            tender = tenders.record(
                tab, current_user.id, form.kind.data, form.amount.data, form.note.data or ""
            )
        except tab_domain.TabError as err:
            getattr(form, err.field or "amount").errors.append(str(err))
        else:
            flash(_(tenders.RECORDED[tender.kind], amount=f"{tender.amount:,}"), "success")
            return redirect(url_for("tabs.detail", tab_id=tab.id))
    return _tab_page(tab, tender_form=form, status=422)


@bp.post("/<int:tab_id>/tenders/<int:tender_id>/remove")
@role_required(*STAFF)
def remove_tender(tab_id: int, tender_id: int):
    tab = bar_object_or_404(Tab, tab_id)
    tender = bar_object_or_404(Tender, tender_id)
    try:
        tenders.remove(tab, tender, current_user.id, senior=current_user.role in MONEY_ROLES)
    except tab_domain.TabError as err:
        flash(str(err), "error")
    else:
        flash(_(tenders.TAKEN_BACK[tender.kind], amount=f"{tender.amount:,}"), "success")
    return redirect(url_for("tabs.detail", tab_id=tab.id))


@bp.post("/<int:tab_id>/lines/<int:line_id>")
@role_required(*STAFF)
def change_line(tab_id: int, line_id: int):
    """Correct a line (words, quantity, price) or, with `remove`, take it off the tab."""
    tab = bar_object_or_404(Tab, tab_id)
    line = db.session.get(TabLine, line_id)
    if line is None or line.tab_id != tab.id:
        abort(404)
    senior = current_user.role in MONEY_ROLES
    form = LineForm()
    try:
        if request.form.get("remove"):
            tenders.take_off(tab, line, current_user.id, senior=senior)
            flash(_("“%(item)s” is off the tab.", item=line.description), "success")
        elif form.validate():
            tenders.correct(
                tab,
                line,
                current_user.id,
                description=form.description.data or "",
                quantity=form.quantity.data,
                unit_price=form.unit_price.data,
                senior=senior,
            )
            flash(_("“%(item)s” corrected.", item=line.description), "success")
        else:
            flash(" ".join(str(e) for errors in form.errors.values() for e in errors), "error")
    except tab_domain.TabError as err:
        db.session.rollback()
        flash(str(err), "error")
    return redirect(url_for("tabs.detail", tab_id=tab.id))


@bp.get("/incoming")
@role_required(*STAFF)
def incoming():
    """Money from the M-Pesa menu on no tab yet (polled by the tab list and each tab page)."""
    tab = None
    if request.args.get("tab", "").isdecimal():
        tab = bar_object_or_404(Tab, int(request.args["tab"]))
    answer = incoming_list.poll(current_user.bar_id, tab, request.args)
    if answer.unchanged:
        return "", 204
    return render_template(
        "tabs/_incoming.html",
        **answer.context,
        tab=tab,
        action=ActionForm(),
        timezone=current_bar().timezone,
    )


@bp.post("/<int:tab_id>/claim")
@role_required(*STAFF)
def claim(tab_id: int):
    """One tap: this money is this tab's (once, audited); a manager may move it from another."""
    tab = bar_object_or_404(Tab, tab_id)
    raw = request.form.get("payment_id", "")
    if not raw.isdecimal():
        flash(_("Choose the money to claim from the list."), "error")
        return redirect(url_for("tabs.detail", tab_id=tab.id))
    payment = bar_object_or_404(Payment, int(raw))
    move = request.form.get("move") == "1" and current_user.role in MONEY_ROLES
    try:
        c2b.claim(payment, tab, current_user.id, move=move)
    except c2b.ClaimError as err:
        flash(str(err), "error")
    else:
        flash(
            _(
                "KES %(amount)s from the M-Pesa menu is on %(tab)s.",
                amount=f"{payment.amount:,}",
                tab=tab.label,
            ),
            "success",
        )
    return redirect(url_for("tabs.detail", tab_id=tab.id))


@bp.get("/<int:tab_id>/bill")
@role_required(*STAFF)
def bill(tab_id: int):
    """The printable bill: the lines, what is paid, the balance and its pay-by-scan QR."""
    tab = bar_object_or_404(Tab, tab_id)
    totals = tab_totals.totals(tab)
    qr = bill_qr.qr_for(current_bar(), tab, totals.balance)
    return render_template(
        "tabs/bill.html", tab=tab, totals=totals, qr=qr, code=bill_qr.tab_code(tab),
        bar=current_bar(), timezone=current_bar().timezone,
    )  # fmt: skip


@bp.get("/<int:tab_id>/qr")
@role_required(*STAFF)
def bill_qr_card(tab_id: int):
    """The tab page's QR card, fetched after the page (Daraja may take a moment)."""
    tab = bar_object_or_404(Tab, tab_id)
    totals = tab_totals.totals(tab)
    qr = bill_qr.qr_for(current_bar(), tab, totals.balance)
    return render_template("tabs/_bill_qr.html", tab=tab, qr=qr, code=bill_qr.tab_code(tab))

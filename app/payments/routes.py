import functools
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    make_response,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from app import audit, logging_setup
from app.enums import BAR_ROLES, MONEY_ROLES, Role
from app.extensions import db, limiter
from app.i18n import N_, _
from app.models import CallbackEvent, Payment
from app.mpesa import mask_phone
from app.payments import csv_export, listing, live, recovery
from app.reversals import present as reversals
from app.web import htmx, pager, security
from app.web.security import bar_object_or_404, current_bar, role_required

bp = Blueprint("payments", __name__, url_prefix="/payments")
# Payment.message is an English sentence stored when it was written: the status fragment (on the
# tab pages too) and the list show it in the reader's language. A filter, not Jinja's `_()`,
# which would mark the stored text safe and read a "%" in it as a format.


def _is_waiting_poll() -> bool:
    """A waiting screen's poll: htmx asking for a status fragment it holds a version of."""
    return (
        request.endpoint == "payments.status"
        and request.method == "GET"
        and "v" in request.args
        and htmx.is_htmx()
    )


# The status poll has no limit of its own, and no default limits are configured: skip the
# limiter's per-request work for it (~6% of a 204). A default limit added later must decide
# whether polls (500 screens, one every 2 s) count.
limiter.request_filter(_is_waiting_poll)


def _unchanged_poll(view):
    """In front of the status view: a waiting screen's poll whose fragment is still right is
    answered 204 from one query that checks the session too (live.unchanged_for_session: the
    user loader's rules, the payment's bar, the view's roles), before Flask-Login loads anyone
    through the ORM. Anything else (signed out, another bar, a changed version, a remember-me
    cookie) goes through the view as before, with the row already read handed on."""

    @functools.wraps(view)
    def wrapped(payment_id: int):
        if _is_waiting_poll():
            ident = security.session_ident_as_loaded()
            if ident is not None:
                same, row = live.unchanged_for_session(
                    payment_id, ident, view.allowed_roles, request.args["v"]
                )
                if same:
                    logging_setup.bind(bar_id=None, user_id=ident[0])
                    return "", 204
                g.status_row = (f"{ident[0]}:{ident[1]}", row)
        return view(payment_id)

    return wrapped


def _status_fragment(payment_id: int):
    """A poll: 204 No Content (htmx swaps nothing, the poll goes on) when the fragment the
    screen shows (`?v=`) is still right, else the fragment, with the tab's panel out of band."""
    # The payment's own page has no tab panel or go-live section to refresh out of band.
    own_page = htmx.page_path() == url_for("payments.status", payment_id=payment_id)
    # The row _unchanged_poll read, if it was read for the person Flask-Login signed in.
    read_for, row = g.pop("status_row", (None, None))
    answer = live.poll(
        payment_id,
        current_user.bar_id,
        request.args.get("v"),
        panels=not own_page,
        row=row if read_for == current_user.get_id() else None,
    )
    if answer is None:
        abort(404)
    if answer.unchanged:
        return "", 204
    return render_template("payments/_status.html", **answer.context)


@bp.get("/<int:payment_id>/status")
@_unchanged_poll
@role_required(*BAR_ROLES)
def status(payment_id: int):
    if htmx.is_htmx():
        return _status_fragment(payment_id)
    payment = bar_object_or_404(Payment, payment_id)
    events, reversal_card = [], None
    if current_user.role in MONEY_ROLES:
        reversal_card = reversals.card(payment, current_bar().timezone)
        events = db.session.scalars(
            select(CallbackEvent)
            .where(CallbackEvent.payment_id == payment.id)
            .order_by(CallbackEvent.id)
        ).all()
    return render_template(
        "payments/detail.html",
        callback_events=events,
        reversal_card=reversal_card,
        **live.status_context(payment),
    )


@bp.get("/")
@role_required(*MONEY_ROLES)
def index():
    """The bar's payments, newest first. htmx gets the results fragment, a browser the page."""
    filters = listing.parse_filters(request.args)
    limit, before, notices = listing.parse_paging(request.args)
    page = None if filters.errors else listing.fetch_page(current_bar(), filters, before, limit)
    fragment = htmx.wants_fragment()
    template = "payments/_rows.html" if fragment else "payments/index.html"
    context = _listing_context(filters, page, before, limit, notices)
    # htmx swaps only 2xx answers, so the fragment explains a bad filter with a 200.
    code = 400 if filters.errors and not fragment else 200
    response = make_response(render_template(template, **context), code)
    htmx.vary(response)
    if fragment and not filters.errors:
        # The address bar gets the tidy URL: no empty fields, the phone as stored.
        response.headers["HX-Push-Url"] = context["this_url"]
    return response


def _listing_context(filters, page, before, limit: int, notices: list[str]) -> dict:
    args = filters.query_args()
    if limit != listing.PAGE_SIZE:
        args["limit"] = str(limit)
    older = page.older if page else None
    owner = current_user.role == Role.OWNER
    here = {"before": before.encode()} if before else {}
    return {
        "filters": filters,
        "form": request.args,
        "this_url": url_for("payments.index", **args, **here),
        "rows": page.rows if page else [],
        "notices": notices,
        "statuses": listing.STATUSES,
        "timezone": current_bar().timezone,
        **pager.links(
            "payments.index", args, paged=bool(before), older=older.encode() if older else None
        ),
        "export_url": url_for("payments.export", **filters.query_args()),
        "full_export_url": url_for("payments.export", **filters.query_args(), phones="full")
        if owner
        else None,
    }


@bp.get("/export.csv")
@role_required(*MONEY_ROLES)
def export():
    """The whole filtered set as CSV, streamed in batches. Full phone numbers are for owners."""
    full_phones = request.args.get("phones") == "full"
    if full_phones and current_user.role != Role.OWNER:
        abort(403)
    filters = listing.parse_filters(request.args)
    if filters.errors:
        context = _listing_context(filters, None, None, listing.PAGE_SIZE, [])
        return render_template("payments/index.html", **context), 400
    bar = current_bar()
    _audit_export(filters, full_phones)
    chunks = csv_export.csv_chunks(bar, filters, full_phones=full_phones)
    response = Response(stream_with_context(chunks), content_type="text/csv; charset=utf-8")
    today = datetime.now(ZoneInfo(bar.timezone)).date()
    name = csv_export.filename(bar, filters, today)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _audit_export(filters, full_phones: bool) -> None:
    details = filters.query_args()
    if "phone" in details:
        details["phone"] = mask_phone(details["phone"])
    audit.record("payments.exported", phones="full" if full_phones else "masked", filters=details)
    db.session.commit()


CHECK_MESSAGES = {
    "settled": None,  # the fragment itself shows the outcome
    "waiting": N_("M-Pesa says it is still waiting for the customer."),
    "busy": N_("M-Pesa is busy or was just asked; PesaTab will check again shortly."),
    "error": N_("M-Pesa did not answer; PesaTab will check again shortly."),
    "no_credentials": N_("The bar's M-Pesa credentials cannot be used right now."),
    "not_checkable": N_("There is nothing to check: M-Pesa never gave this request an id."),
}


@bp.post("/<int:payment_id>/check")
@role_required(*MONEY_ROLES)
def check(payment_id: int):
    """'Check now': the recovery job's query, for this one payment, at once."""
    payment = bar_object_or_404(Payment, payment_id)
    outcome = recovery.check_payment(payment)
    db.session.expire_all()
    payment = bar_object_or_404(Payment, payment_id)
    message = CHECK_MESSAGES.get(outcome)
    message = _(message) if message else None
    if htmx.is_htmx():
        own_page = htmx.page_path() == url_for("payments.status", payment_id=payment.id)
        context = live.fragment_context(payment, panels=not own_page)
        return render_template("payments/_status.html", check_message=message, **context)
    context = live.status_context(payment)
    return render_template("payments/detail.html", check_message=message, **context)

import functools
import hashlib
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    make_response,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import bindparam, select

from app import audit
from app.extensions import db
from app.models import CallbackEvent, Payment, Tab, utcnow
from app.mpesa import mask_phone
from app.payments import csv_export, listing, recovery
from app.payments.states import IN_FLIGHT
from app.settings import onboarding, vault
from app.tabs import totals as tab_totals
from app.web import htmx
from app.web.security import bar_object_or_404, current_bar, role_required

bp = Blueprint("payments", __name__, url_prefix="/payments")


def status_context(payment: Payment, version: str | None = None) -> dict:
    """What the status fragment shows: in flight (with elapsed time) or the final sentence.
    `version` (see `status_version`) goes into an in-flight fragment's poll URL, so the next
    poll can be answered 204 when nothing it shows has changed."""
    lifetime = current_app.config["PROMPT_LIFETIME_SECONDS"]
    started = payment.sent_at or payment.created_at
    elapsed = max(0, int((utcnow() - started).total_seconds()))
    hint = None
    if payment.purpose == "test" and payment.status in ("failed", "rejected"):
        hint = onboarding.setup_hint(payment, vault.credential_for(current_bar()))
    return {
        "payment": payment,
        "in_flight": payment.status in IN_FLIGHT,
        "elapsed": elapsed,
        "lifetime": lifetime,
        "setup_hint": hint,
        "version": version,
    }


def status_version(status: str, updated_at, message: str | None, checkout_request_id: str | None,
                   tab_total: int | None, tab_paid: int | None) -> str:
    """A short fingerprint of everything a status fragment shows that can change while it
    polls: the payment's status, message and "Check now" button (updated_at moves with each
    change) and its tab's totals (the out-of-band summary). The elapsed time is not in it:
    app.js counts it on the screen."""
    shown = repr((status, updated_at.isoformat() if updated_at else None, message, bool(checkout_request_id),
                  tab_total, tab_paid))
    return hashlib.blake2s(shown.encode(), digest_size=8).hexdigest()


def version_of(payment: Payment, totals: tab_totals.Totals | None) -> str:
    """`status_version` of a loaded payment (and its tab's totals, when it is on a tab): a page
    that renders the fragment gives its first poll the version too, so that poll can be a 204."""
    return status_version(payment.status, payment.updated_at, payment.message, payment.checkout_request_id,
                          totals.total if totals else None, totals.paid if totals else None)


@functools.cache
def _status_row_query():
    """Built once: composing the tab totals' subqueries costs more than running them."""
    line_total, paid, in_flight = tab_totals.totals_columns(Payment.tab_id)
    return select(
        Payment.status, Payment.updated_at, Payment.message, Payment.checkout_request_id,
        Payment.tab_id, line_total, paid, in_flight,
    ).where(Payment.id == bindparam("payment_id"), Payment.bar_id == bindparam("bar_id"))


def _status_row(payment_id: int):
    """The columns `status_version` needs and the tab's totals, in one query, within the
    signed-in person's bar (another bar's payment is a 404, as everywhere)."""
    # Core, on the session's connection: plain columns need none of the ORM's result handling.
    row = db.session.connection().execute(
        _status_row_query(), {"payment_id": payment_id, "bar_id": current_user.bar_id}
    ).one_or_none()
    if row is None:
        abort(404)
    return row


def _status_fragment(payment_id: int):
    """A poll: 204 No Content (htmx swaps nothing, the poll goes on) when the fragment the
    screen shows (`?v=`) is still right, else the fragment, with the tab's totals out of band
    (and, once final, the pay panel and close section)."""
    status, updated_at, message, checkout_id, tab_id, line_total, paid, in_flight = _status_row(payment_id)
    totals = tab_totals.Totals(int(line_total), int(paid), int(in_flight)) if tab_id is not None else None
    version = status_version(status, updated_at, message, checkout_id,
                             totals.total if totals else None, totals.paid if totals else None)
    if request.args.get("v") == version and status in IN_FLIGHT:
        return "", 204
    payment, tab = db.session.execute(
        select(Payment, Tab).outerjoin(Tab, Tab.id == Payment.tab_id)
        .where(Payment.id == payment_id, Payment.bar_id == current_user.bar_id)
    ).one_or_none() or abort(404)
    context = status_context(payment, version)
    if tab is not None and context["in_flight"]:
        # The summary needs only these; the final answer builds its forms in tab_refresh.
        context["tab_state"] = {"tab": tab, "totals": totals}
    return render_template("payments/_status.html", **context)


@bp.get("/<int:payment_id>/status")
@role_required("owner", "manager", "cashier")
def status(payment_id: int):
    if htmx.is_htmx():
        return _status_fragment(payment_id)
    payment = bar_object_or_404(Payment, payment_id)
    events = []
    if current_user.role in ("owner", "manager"):
        events = db.session.scalars(
            select(CallbackEvent).where(CallbackEvent.payment_id == payment.id).order_by(CallbackEvent.id)
        ).all()
    return render_template("payments/detail.html", callback_events=events, **status_context(payment))


@bp.get("/")
@role_required("owner", "manager")
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
    owner = current_user.role == "owner"
    here = {"before": before.encode()} if before else {}
    return {
        "filters": filters,
        "form": request.args,
        "this_url": url_for("payments.index", **args, **here),
        "rows": page.rows if page else [],
        "notices": notices,
        "statuses": listing.STATUSES,
        "timezone": current_bar().timezone,
        "newest_url": url_for("payments.index", **args) if before else None,
        "older_url": url_for("payments.index", **args, before=older.encode()) if older else None,
        "export_url": url_for("payments.export", **filters.query_args()),
        "full_export_url": url_for("payments.export", **filters.query_args(), phones="full")
        if owner else None,
    }


@bp.get("/export.csv")
@role_required("owner", "manager")
def export():
    """The whole filtered set as CSV, streamed in batches. Full phone numbers are for owners."""
    full_phones = request.args.get("phones") == "full"
    if full_phones and current_user.role != "owner":
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
    "waiting": "M-Pesa says it is still waiting for the customer.",
    "busy": "M-Pesa is busy or was just asked; PesaTab will check again shortly.",
    "error": "M-Pesa did not answer; PesaTab will check again shortly.",
    "no_credentials": "The bar's M-Pesa credentials cannot be used right now.",
    "not_checkable": "There is nothing to check: M-Pesa never gave this request an id.",
}


@bp.post("/<int:payment_id>/check")
@role_required("owner", "manager")
def check(payment_id: int):
    """'Check now': the recovery job's query, for this one payment, at once."""
    payment = bar_object_or_404(Payment, payment_id)
    outcome = recovery.check_payment(payment)
    db.session.expire_all()
    payment = bar_object_or_404(Payment, payment_id)
    context = status_context(payment)
    context["check_message"] = CHECK_MESSAGES.get(outcome)
    if htmx.is_htmx():
        return render_template("payments/_status.html", **context)
    return render_template("payments/detail.html", **context)

from datetime import timedelta
from functools import partial

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.enums import BAR_ROLES, MONEY_ROLES
from app.i18n import _
from app.models import C2BConfirmation, CallbackEvent, Payment, Tab, utcnow
from app.payments import review
from app.reconciliation import breaks, counter, periods, report, shifts, svg
from app.reconciliation import export as csv_export
from app.reconciliation.forms import CheckedForm
from app.web.security import bar_object_or_404, current_bar, role_required

bp = Blueprint("reconciliation", __name__, url_prefix="/reconciliation")


@bp.get("/")
@role_required(*MONEY_ROLES)
def index():
    """A day (default today, in the bar's timezone) or a range, and every open break."""
    bar, now = current_bar(), utcnow()
    today = periods.local_today(bar.timezone, now)
    period = periods.parse(request.args, today)
    context = {"bar": bar, "today": today, "period": period, "max_days": periods.MAX_DAYS}
    if period.error:
        return render_template("reconciliation/index.html", **context), 400
    if period.is_day:
        live = request.args.get("live") == "1"
        figures = report.day_figures(bar, period.start, today, live=live)
        context.update(figures=figures, days=None, chart=svg.hourly(figures.paid_by_hour))
    else:
        found = report.range_figures(bar, period.start, period.end, today)
        chart = svg.daily([(f.day, f.mpesa_in_kes) for f in found.days])
        context.update(figures=found.total, days=found.days, chart=chart)
    window = periods.window(period.start, period.end, bar.timezone)
    context.update(
        _links(period, today),
        money=counter.money(bar, window),
        breaks=breaks.open_breaks(bar, window, now),
        checked_form=CheckedForm(formdata=None, back=request.full_path),
    )
    return render_template("reconciliation/index.html", **context)


def _links(period: periods.Period, today) -> dict:
    day = period.start
    return {
        "previous_url": url_for("reconciliation.index", day=(day - timedelta(days=1)).isoformat()),
        "next_url": url_for("reconciliation.index", day=(day + timedelta(days=1)).isoformat())
        if period.is_day and day < today
        else None,
        "live_url": url_for("reconciliation.index", day=day.isoformat(), live="1"),
        "export_url": url_for(
            "reconciliation.export",
            **{"from": period.start.isoformat(), "to": period.end.isoformat()},
        ),
    }


@bp.get("/shifts")
@role_required(*BAR_ROLES)
def shift_summary():
    """The cash-up sheet: per person, what they asked and took in a period (printable). A
    cashier sees their own; managers and the owner anyone's, or everyone's."""
    bar = current_bar()
    span = shifts.parse_span(request.args, bar.timezone, utcnow())
    people = [(u.id, u.name) for u in bar.users if u.role in BAR_ROLES]
    senior = current_user.role in MONEY_ROLES
    chosen = request.args.get("person", "").strip()
    person_id = current_user.id
    if senior:
        person_id = int(chosen) if chosen.isdecimal() and int(chosen) in dict(people) else None
    rows = [] if span.error else shifts.shifts(bar, (span.start, span.end), person_id)
    context = {
        "bar": bar,
        "span": span,
        "rows": rows,
        "total": shifts.add_up(rows),
        "people": people if senior else [],
        "person_id": person_id,
    }
    return render_template("reconciliation/shifts.html", **context), 400 if span.error else 200


@bp.get("/export.csv")
@role_required(*MONEY_ROLES)
def export():
    """One row per day of `?from=&to=` (or `?day=`, default today)."""
    bar = current_bar()
    today = periods.local_today(bar.timezone, utcnow())
    period = periods.parse(request.args, today)
    if period.error:
        return Response(period.error + "\n", status=400, content_type="text/plain; charset=utf-8")
    found = report.range_figures(bar, period.start, period.end, today)
    response = Response(csv_export.csv_text(found), content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{csv_export.filename(bar, period)}"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<any(payment, tab, callback, c2b):what>/<int:target>/checked")
@role_required(*MONEY_ROLES)
def checked(what: str, target: int):
    """Close a break after checking it against the statement, saying what was found: a flagged
    payment (its flag is cleared), a closed tab that still owes money, a callback kept for
    review, a C2B confirmation kept without being applied."""
    if what == "payment":
        payment = bar_object_or_404(Payment, target)
        name = _("Payment %(id)s", id=payment.id)
        anchor = f"break-payment-{payment.id}-{payment.flag_reason}"
        mark = partial(review.clear_flag, payment)
    elif what == "tab":
        tab = bar_object_or_404(Tab, target)
        name, anchor = tab.label, f"break-tab-{tab.id}"
        mark = partial(review.check_tab, tab)
    elif what == "c2b":
        record = bar_object_or_404(C2BConfirmation, target)
        name = _("M-Pesa menu confirmation %(id)s", id=record.id)
        anchor = f"break-c2b-{record.id}"
        mark = partial(review.check_c2b, record)
    else:
        event = bar_object_or_404(CallbackEvent, target)
        name, anchor = _("Callback %(id)s", id=event.id), f"break-callback-{event.id}"
        mark = partial(review.check_callback, event)
    form = CheckedForm()
    back = (
        form.back.data
        if (form.back.data or "").startswith("/reconciliation/")
        else url_for("reconciliation.index")
    )
    if not form.validate():
        flash(" ".join(str(e) for e in form.note.errors) or _("Say what you found."), "error")
        return redirect(f"{back}#{anchor}")
    try:
        mark(current_user.id, form.note.data)
    except review.ReviewError as err:
        flash(str(err), "error")
        return redirect(f"{back}#{anchor}")
    note = " ".join(form.note.data.split())
    flash(_("%(name)s is marked as checked: %(note)s", name=name, note=note), "success")
    return redirect(f"{back}#recon-breaks")

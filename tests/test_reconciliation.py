"""Reconciliation: the day and range views, breaks, the CSV and the nightly summaries."""

from __future__ import annotations

import csv
import html
import io
import itertools
import re
import secrets
import time
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import event, insert, select

from app.extensions import db
from app.models import CallbackEvent, Payment, ReconciliationSummary, utcnow
from app.reconciliation import breaks, export, periods, report
from tests.conftest import login_as

DAY = date(2024, 5, 10)  # a Friday; in Nairobi (UTC+3) it runs 9 May 21:00 to 10 May 21:00 UTC
NOON = datetime(2024, 5, 10, 9, 0)  # 12:00 in Nairobi, as stored (naive UTC)
_receipts = itertools.count(1)
_bulk = itertools.count(1)


@pytest.fixture
def desk(app, owner):
    return login_as(app, owner)


def pay(factory, bar, status="paid", amount=450, at=NOON, *, took=20, **fields):
    """A payment requested at `at` (naive UTC) that settled `took` seconds after its push."""
    if status == "paid":
        fields.setdefault("receipt", f"QK{next(_receipts):08d}")
        fields.setdefault("result_code", "0")
    if status not in ("created", "rejected"):
        fields.setdefault("sent_at", at + timedelta(seconds=1))
    if status not in ("created", "sent", "unknown"):
        fields.setdefault("settled_at", (fields.get("sent_at") or at) + timedelta(seconds=took))
    return factory.payment(bar, status=status, amount=amount, created_at=at, **fields)


def text_of(page: str, element_id: str) -> str | None:
    """The text of the element with `element_id`, tags dropped and spaces squeezed."""
    found = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', page, re.S)
    if found is None:
        return None
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(2))).split())


def bar_height(page: str, key: str) -> float:
    found = re.search(rf'<rect[^>]*id="bar-{key}"[^>]*height="([\d.]+)"', page)
    return float(found.group(1))


def day_page(client, day: date = DAY, **args) -> str:
    response = client.get("/reconciliation/", query_string={"day": day.isoformat(), **args})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def seed_day(factory, bar):
    """Every outcome once or more, with known amounts and codes."""
    pay(factory, bar, "paid", 450)
    pay(factory, bar, "paid", 1000)
    pay(factory, bar, "paid", 200)
    pay(factory, bar, "failed", 300, result_code="1")
    pay(factory, bar, "failed", 100, result_code="2001")
    pay(factory, bar, "cancelled", 500, result_code="1032")
    pay(factory, bar, "expired", 250, result_code="1037")
    pay(factory, bar, "rejected", 400, error_kind="wrong_credentials")
    pay(factory, bar, "sent", 600)
    pay(factory, bar, "created", 70)
    pay(factory, bar, "unknown", 30)
    pay(factory, bar, "paid", 1, purpose="test")


# The day's figures


def test_it_counts_and_totals_a_day_so_that_everything_adds_up(desk, factory, bar):
    seed_day(factory, bar)
    page = day_page(desk)
    assert text_of(page, "outcome-paid") == "Paid 3 KES 1,650"
    assert text_of(page, "outcome-failed") == "Failed 2 KES 400"
    assert text_of(page, "outcome-cancelled") == "Cancelled by the customer 1 KES 500"
    assert text_of(page, "outcome-expired") == "Expired (no answer) 1 KES 250"
    assert text_of(page, "outcome-rejected") == "Not sent (M-Pesa refused the request) 1 KES 400"
    assert text_of(page, "outcome-in_flight") == "Still waiting for M-Pesa 3 KES 700"
    assert text_of(page, "outcome-requested") == "Requested 11 KES 3,900"
    assert text_of(page, "test-pushes") == "1 test push (KES 1) is not counted."


def test_the_success_rate_leaves_out_requests_still_in_flight(desk, factory, bar):
    seed_day(factory, bar)
    assert text_of(day_page(desk), "success-rate") == "37.5%"  # 3 paid of 8 finished


def test_the_success_rate_has_one_decimal_or_a_dash(desk, factory, bar):
    assert text_of(day_page(desk), "success-rate") == "—"
    pay(factory, bar, "sent")
    assert text_of(day_page(desk), "success-rate") == "—"  # nothing has finished yet
    pay(factory, bar, "paid")
    pay(factory, bar, "paid")
    pay(factory, bar, "cancelled", result_code="1032")
    assert text_of(day_page(desk), "success-rate") == "66.7%"


def test_days_begin_at_midnight_in_nairobi(desk, factory, bar):
    pay(factory, bar, "paid", 700, at=datetime(2024, 5, 9, 21, 30))  # 00:30 on the 10th
    pay(factory, bar, "paid", 300, at=datetime(2024, 5, 9, 20, 59))  # 23:59 on the 9th
    assert text_of(day_page(desk, DAY), "outcome-paid") == "Paid 1 KES 700"
    assert text_of(day_page(desk, DAY - timedelta(days=1)), "outcome-paid") == "Paid 1 KES 300"


def test_today_is_the_default(desk, factory, bar):
    pay(factory, bar, "paid", 820, at=utcnow())
    page = desk.get("/reconciliation/").get_data(as_text=True)
    assert "(today)" in page
    assert text_of(page, "paid-kes") == "KES 820"
    assert text_of(page, "figures-source") == "Counted from the payments just now."


def test_the_top_failure_codes_come_with_their_sentences(desk, factory, bar):
    for code, times in (("1032", 4), ("1", 3), ("2001", 2), ("1037", 2), ("17", 1), ("26", 1)):
        status = {"1032": "cancelled", "1037": "expired"}.get(code, "failed")
        for _ in range(times):
            pay(factory, bar, status, 100, result_code=code)
    page = day_page(desk)
    shown = re.findall(r'<tr class="failure" id="failure-([^"]+)"', page)
    assert shown == ["1032", "1", "1037", "2001", "17"]  # ties: more KES first, then by code
    assert text_of(page, "failure-1032") == "1032 The customer cancelled. 4 KES 400"
    assert text_of(page, "failure-1") == "1 The customer's M-Pesa balance is too low. 3 KES 300"


def test_it_gives_the_median_and_95th_percentile_from_push_to_paid(desk, factory, bar):
    for seconds in range(1, 22):  # 1..21 seconds
        pay(factory, bar, "paid", took=seconds)
    page = day_page(desk)
    assert text_of(page, "median") == "0:11"
    assert text_of(page, "p95") == "0:20"  # nearest rank: the 20th of 21


def test_a_callback_that_beat_the_push_response_is_timed_from_the_request(app, factory, bar):
    pay(factory, bar, "paid", at=NOON, sent_at=None, settled_at=NOON + timedelta(seconds=95))
    figures = report.day_figures(bar, DAY, DAY + timedelta(days=1))
    assert (figures.median_seconds, figures.p95_seconds, figures.timed_count) == (95, 95, 1)


def test_the_chart_has_a_bar_per_hour_sized_by_paid_kes(desk, factory, bar):
    eight_pm = datetime(2024, 5, 10, 17, 10)  # 20:10 in Nairobi
    pay(factory, bar, "paid", 600, at=eight_pm)
    pay(factory, bar, "paid", 400, at=eight_pm + timedelta(minutes=20))
    pay(factory, bar, "paid", 500, at=eight_pm + timedelta(hours=1))
    pay(factory, bar, "failed", 9000, at=eight_pm, result_code="1")
    page = day_page(desk)
    assert len(re.findall(r'<rect class="chart-bar"', page)) == 24
    assert bar_height(page, "hour-20") == 120.0
    assert bar_height(page, "hour-21") == 60.0
    assert bar_height(page, "hour-05") == 0.0
    assert "<title>20:00–21:00: KES 1,000</title>" in page
    assert 'role="img"' in page and 'aria-labelledby="chart-title chart-desc"' in page
    assert "KES 1,500 in all; the most, KES 1,000, in 20:00–21:00." in page


def test_the_chart_counts_money_by_when_it_arrived(app, factory, bar):
    just_before_midnight = datetime(2024, 5, 10, 20, 59)  # 23:59 in Nairobi
    pay(factory, bar, "paid", 300, at=just_before_midnight, took=120)  # lands at 00:01 next day
    today = DAY + timedelta(days=5)
    assert sum(report.day_figures(bar, DAY, today).paid_by_hour) == 0
    next_day = report.day_figures(bar, DAY + timedelta(days=1), today)
    assert next_day.paid_by_hour[0] == 300
    assert report.day_figures(bar, DAY, today).kes["paid"] == 300  # requested on the 10th


def test_days_counted_together_with_a_gap_leave_the_gap_out(app, factory, bar):
    pay(factory, bar, "paid", 100, at=NOON - timedelta(days=2))
    pay(factory, bar, "paid", 200, at=NOON - timedelta(days=1))  # the day left out
    pay(factory, bar, "paid", 400, at=NOON)
    counted = report.count_days(bar, [DAY, DAY - timedelta(days=2)], hourly=False)
    assert {day: f.kes["paid"] for day, f in counted.items()} == {
        DAY - timedelta(days=2): 100,
        DAY: 400,
    }


# Breaks


def break_ids(page: str) -> list[str]:
    return re.findall(r'<li class="recon-break[^"]*" id="([^"]+)"', page)


@pytest.mark.parametrize("reason", sorted(breaks.FLAG_SENTENCES))
def test_each_flagged_payment_is_a_break_until_its_flag_is_cleared(desk, factory, bar, reason):
    payment = pay(factory, bar, "paid", 450, flagged=True, flag_reason=reason)
    page = day_page(desk)
    what, action = breaks.FLAG_SENTENCES[reason]
    key = f"break-payment-{payment.id}-{reason}"
    assert key in break_ids(page)
    assert what in text_of(page, key) and action in text_of(page, key)
    assert f'href="/payments/{payment.id}/status"' in page
    payment.flagged = False  # reviewed
    db.session.commit()
    assert key not in break_ids(day_page(desk))


def test_a_late_success_tells_the_owner_to_check_for_a_double_charge(desk, factory, bar):
    payment = pay(factory, bar, "paid", 450, flagged=True, flag_reason="late_success")
    text = text_of(day_page(desk), f"break-payment-{payment.id}-late_success")
    assert (
        "Money arrived after the request had failed: check the customer was not asked twice; "
        "refund if so." in text
    )


def test_an_amount_mismatch_shows_what_mpesa_reported(desk, factory, bar):
    payment = pay(
        factory, bar, "sent", 450, flagged=True, flag_reason="amount_mismatch", paid_amount=45
    )
    assert "M-Pesa reported KES 45" in text_of(
        day_page(desk), f"break-payment-{payment.id}-amount_mismatch"
    )


def test_paid_with_no_receipt_is_a_break_until_the_receipt_arrives(desk, factory, bar):
    payment = pay(
        factory, bar, "paid", 450, receipt=None, flagged=True, flag_reason="receipt_pending"
    )
    key = f"break-payment-{payment.id}-receipt_pending"
    text = text_of(day_page(desk), key)
    assert "Paid, no M-Pesa receipt yet" in text
    assert "Wait for the M-Pesa callback or import the statement; the receipt fills in." in text
    payment.receipt, payment.flag_reason = "QK99ZZ11AA", None  # what the ledger does
    db.session.commit()
    assert key not in break_ids(day_page(desk))


def test_a_payment_unanswered_for_30_minutes_is_a_break_until_it_settles(desk, factory, bar):
    now = utcnow()
    silent = pay(
        factory,
        bar,
        "sent",
        450,
        at=now - timedelta(minutes=32),
        sent_at=now - timedelta(minutes=31),
    )
    waiting = pay(
        factory,
        bar,
        "sent",
        450,
        at=now - timedelta(minutes=29),
        sent_at=now - timedelta(minutes=29),
    )
    unknown = pay(factory, bar, "unknown", 450, at=now - timedelta(hours=2), sent_at=None)
    page = day_page(desk, periods.local_today(bar.timezone, now))
    ids = break_ids(page)
    assert (
        f"break-payment-{silent.id}-silent" in ids and f"break-payment-{unknown.id}-silent" in ids
    )
    assert f"break-payment-{waiting.id}-silent" not in ids
    assert "M-Pesa has not answered for 30 minutes" in text_of(
        page, f"break-payment-{silent.id}-silent"
    )
    silent.status, silent.settled_at = "expired", now
    db.session.commit()
    assert f"break-payment-{silent.id}-silent" not in break_ids(day_page(desk))


@pytest.mark.parametrize("disposition", ["mismatch", "malformed"])
def test_a_callback_kept_for_review_is_a_break(desk, factory, bar, outsider, disposition):
    payment = pay(factory, bar, "sent", 450)
    ours = callback_event(
        bar.id, payment.id, disposition, detail="CheckoutRequestID does not match this payment"
    )
    callback_event(outsider.bar_id, None, disposition)
    callback_event(None, None, "unknown_token")  # no bar: operators see those
    callback_event(bar.id, payment.id, "applied")
    page = day_page(desk)
    callback_breaks = [i for i in break_ids(page) if i.startswith("break-callback-")]
    assert callback_breaks == [f"break-callback-{ours.id}"]
    what, action = breaks.CALLBACK_SENTENCES[disposition]
    text = text_of(page, f"break-callback-{ours.id}")
    assert what in text and action in text and "KES 450" in text
    ours.disposition = "applied"  # say a corrected replay applied it
    db.session.commit()
    assert f"break-callback-{ours.id}" not in break_ids(day_page(desk))


def callback_event(bar_id, payment_id, disposition, detail=None) -> CallbackEvent:
    found = CallbackEvent(
        token=secrets.token_hex(8),
        bar_id=bar_id,
        payment_id=payment_id,
        raw_body="{}",
        body_size=2,
        disposition=disposition,
        detail=detail,
        received_at=NOON,
    )
    db.session.add(found)
    db.session.commit()
    return found


def test_a_tab_closed_with_money_owed_is_a_break_until_it_is_paid(desk, factory, bar):
    tab = factory.tab(bar, "Otieno", lines=(("Tusker", 3, 300),), status="void")
    tab.void_reason = "walked out"
    db.session.commit()
    pay(factory, bar, "paid", 500, tab=tab)
    factory.tab(bar, "Table 2", lines=(("Soda", 1, 100),), status="open")  # open tabs owe as usual
    paid_up = factory.tab(bar, "Table 9", lines=(("Soda", 1, 100),), status="settled")
    pay(factory, bar, "paid", 100, tab=paid_up)
    page = day_page(desk)
    assert [i for i in break_ids(page) if i.startswith("break-tab-")] == [f"break-tab-{tab.id}"]
    text = text_of(page, f"break-tab-{tab.id}")
    assert (
        "Tab closed with money outstanding" in text and "KES 400 on this tab was never paid" in text
    )
    assert "Void: walked out" in text
    assert f'href="/tabs/{tab.id}"' in page
    pay(factory, bar, "paid", 400, tab=tab)  # a late payment lands
    assert f"break-tab-{tab.id}" not in break_ids(day_page(desk))


def test_open_breaks_from_other_days_stay_listed_and_this_days_are_marked(desk, factory, bar):
    old = pay(
        factory, bar, "paid", at=NOON - timedelta(days=3), flagged=True, flag_reason="late_success"
    )
    new = pay(factory, bar, "paid", at=NOON, flagged=True, flag_reason="late_success")
    page = day_page(desk)
    assert break_ids(page) == [
        f"break-payment-{new.id}-late_success",
        f"break-payment-{old.id}-late_success",
    ]
    assert re.search(rf'class="recon-break in-period" id="break-payment-{new.id}-', page)
    assert re.search(rf'class="recon-break" id="break-payment-{old.id}-', page)


def test_when_there_are_too_many_breaks_it_says_so(desk, factory, bar, monkeypatch):
    monkeypatch.setattr(breaks, "LIMIT", 2)
    for minutes in range(3):
        pay(
            factory,
            bar,
            "paid",
            at=NOON + timedelta(minutes=minutes),
            flagged=True,
            flag_reason="late_success",
        )
    page = day_page(desk)
    assert len(break_ids(page)) == 2
    assert "There are more than shown here; deal with these first." in page


def test_with_nothing_to_look_at_it_says_so(desk):
    assert text_of(day_page(desk), "no-breaks") == "Nothing to look at: every payment adds up."


# Ranges and the CSV


def test_a_range_shows_each_day_and_their_total(desk, factory, bar):
    pay(factory, bar, "paid", 100, at=NOON - timedelta(days=2))
    pay(factory, bar, "paid", 200, at=NOON)
    pay(factory, bar, "failed", 50, at=NOON, result_code="1")
    response = desk.get("/reconciliation/?from=2024-05-08&to=2024-05-10")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "08 May 2024 to 10 May 2024 (3 days)" in page
    assert text_of(page, "day-2024-05-08") == "Wed 08 May 1 1 KES 100 0 100.0% 0:20"
    assert text_of(page, "day-2024-05-09") == "Thu 09 May 0 0 KES 0 0 — —"
    assert text_of(page, "day-2024-05-10") == "Fri 10 May 2 1 KES 200 1 50.0% 0:20"
    assert text_of(page, "outcome-requested") == "Requested 3 KES 350"
    assert text_of(page, "success-rate") == "66.7%"
    assert (
        bar_height(page, "day-2024-05-10") == 120.0 and bar_height(page, "day-2024-05-08") == 60.0
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "from=2024-01-01&to=2024-05-10",
            "Choose at most 92 days at a time; 01 Jan 2024 to 10 May 2024 is 131 days.",
        ),
        ("from=2024-05-10&to=2024-05-01", "The start date is after the end date."),
        ("day=10/05/2024", "“10/05/2024” is not a date; use the calendar, or the form 2024-05-31."),
    ],
)
def test_a_bad_period_is_explained(desk, query, message):
    response = desk.get(f"/reconciliation/?{query}")
    assert response.status_code == 400
    assert text_of(response.get_data(as_text=True), "period-error") == message


def test_the_csv_has_a_row_per_day(desk, factory, bar):
    for seconds in (10, 30, 50):
        pay(factory, bar, "paid", 100, took=seconds)
    pay(factory, bar, "cancelled", 70, result_code="1032")
    pay(factory, bar, "paid", 1, purpose="test")
    response = desk.get("/reconciliation/export.csv?from=2024-05-09&to=2024-05-10")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="kwa-mama-pub-reconciliation-2024-05-09-to-2024-05-10.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["day"] for r in rows] == ["2024-05-09", "2024-05-10"]
    assert rows[0]["requested"] == "0" and rows[0]["success_rate_percent"] == ""
    day = rows[1]
    assert (
        day["requested"],
        day["paid"],
        day["cancelled"],
        day["paid_kes"],
        day["requested_kes"],
    ) == (
        "4",
        "3",
        "1",
        "300",
        "370",
    )
    assert (
        day["success_rate_percent"],
        day["median_push_to_paid_seconds"],
        day["p95_push_to_paid_seconds"],
    ) == (
        "75.0",
        "30",
        "50",
    )
    assert (day["test_pushes"], day["source"]) == ("1", "live")


def test_the_csv_refuses_a_range_too_long(desk):
    response = desk.get("/reconciliation/export.csv?from=2024-01-01&to=2024-12-31")
    assert response.status_code == 400
    assert "Choose at most 92 days" in response.get_data(as_text=True)


def test_csv_text_cannot_become_a_formula():
    assert export._defuse("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert export._defuse("-5") == "'-5"
    assert export._defuse(-5) == -5
    assert export._defuse("2024-05-10") == "2024-05-10"


# The nightly job


def test_the_nightly_job_writes_yesterday_for_each_bar_in_its_own_timezone(app, factory, bar):
    utc_bar = factory.bar("Greenwich Arms", timezone="UTC")
    pay(factory, bar, "paid", 450, at=datetime(2024, 5, 10, 20, 0))  # 23:00 on the 10th in Nairobi
    pay(factory, utc_bar, "paid", 300, at=datetime(2024, 5, 9, 22, 0))  # the 9th in UTC
    now = datetime(2024, 5, 10, 22, 0)  # 01:00 on the 11th in Nairobi, 22:00 on the 10th in UTC
    assert report.write_daily_summaries(now=now) == 2
    rows = {r.bar_id: r for r in db.session.scalars(select(ReconciliationSummary))}
    assert rows[bar.id].day == date(2024, 5, 10) and rows[bar.id].data["kes"]["paid"] == 450
    assert rows[utc_bar.id].day == date(2024, 5, 9) and rows[utc_bar.id].data["kes"]["paid"] == 300
    assert rows[bar.id].data["paid_by_hour"][23] == 450


def test_the_nightly_job_is_idempotent(app, factory, bar):
    pay(factory, bar, "paid", 450)
    report.write_daily_summaries(day=DAY, now=NOON + timedelta(days=1))
    first = db.session.scalar(select(ReconciliationSummary))
    first_id, first_data, first_written = first.id, dict(first.data), first.created_at
    report.write_daily_summaries(day=DAY, now=NOON + timedelta(days=2))
    db.session.expire_all()
    rows = db.session.scalars(select(ReconciliationSummary)).all()
    assert [(r.id, r.data, r.created_at) for r in rows] == [(first_id, first_data, first_written)]
    pay(factory, bar, "paid", 50)  # a late success changes the day: the rerun updates the row
    report.write_daily_summaries(day=DAY, now=NOON + timedelta(days=3))
    db.session.expire_all()
    rows = db.session.scalars(select(ReconciliationSummary)).all()
    assert len(rows) == 1 and rows[0].id == first_id and rows[0].data["kes"]["paid"] == 500


def test_a_past_day_opens_from_its_summary_and_can_be_counted_again(desk, factory, bar):
    pay(factory, bar, "paid", 450)
    report.write_daily_summaries(day=DAY, now=NOON + timedelta(days=1))
    pay(factory, bar, "paid", 50)  # arrives after the summary was written
    page = day_page(desk)
    assert text_of(page, "paid-kes") == "KES 450"
    assert text_of(page, "figures-source").startswith(
        "From the nightly summary written 11 May 2024, 12:00."
    )
    live = day_page(desk, live="1")
    assert text_of(live, "paid-kes") == "KES 500"
    assert text_of(live, "figures-source") == "Counted from the payments just now."


def test_today_is_always_counted_live(desk, factory, bar):
    today = periods.local_today(bar.timezone, utcnow())
    pay(factory, bar, "paid", 450, at=utcnow())
    report.write_daily_summaries(day=today)
    pay(factory, bar, "paid", 50, at=utcnow())
    assert text_of(day_page(desk, today), "paid-kes") == "KES 500"


def test_a_range_uses_summaries_where_written(desk, factory, bar):
    pay(factory, bar, "paid", 450)
    report.write_daily_summaries(day=DAY, now=NOON + timedelta(days=1))
    pay(factory, bar, "paid", 50)
    pay(factory, bar, "paid", 70, at=NOON - timedelta(days=1))
    rows = list(
        csv.DictReader(
            io.StringIO(
                desk.get("/reconciliation/export.csv?from=2024-05-09&to=2024-05-10").get_data(
                    as_text=True
                )
            )
        )
    )
    assert [(r["paid_kes"], r["source"]) for r in rows] == [
        ("70", "live"),
        ("450", "nightly summary"),
    ]


def test_a_summary_of_another_version_is_ignored(desk, factory, bar):
    pay(factory, bar, "paid", 450)
    db.session.add(ReconciliationSummary(bar_id=bar.id, day=DAY, data={"version": 0, "paid": 1}))
    db.session.commit()
    assert text_of(day_page(desk), "paid-kes") == "KES 450"


# Who sees what


@pytest.mark.parametrize("path", ["/reconciliation/", "/reconciliation/export.csv"])
def test_a_cashier_is_refused(app, cashier, path):
    assert login_as(app, cashier).get(path).status_code == 403


def test_a_manager_may_look(app, manager):
    assert login_as(app, manager).get("/reconciliation/").status_code == 200


def test_another_bars_payments_are_never_counted(desk, factory, bar, outsider):
    theirs = outsider.bar
    pay(factory, bar, "paid", 450)
    pay(factory, theirs, "paid", 9000)
    pay(factory, theirs, "failed", 9000, result_code="1")
    pay(factory, theirs, "paid", 9000, flagged=True, flag_reason="late_success")
    pay(factory, theirs, "paid", 9000, receipt=None)
    void = factory.tab(theirs, "Theirs", lines=(("Whisky", 1, 9000),), status="void")
    report.write_daily_summaries(day=DAY - timedelta(days=1), now=NOON)
    page = day_page(desk)
    assert text_of(page, "outcome-requested") == "Requested 1 KES 450"
    assert "failure-1" not in page and "9,000" not in page
    assert break_ids(page) == [] and f"/tabs/{void.id}" not in page
    other_day = day_page(desk, DAY - timedelta(days=1))
    assert text_of(other_day, "outcome-requested") == "Requested 0 KES 0"


# Speed: bounded queries, whatever the number of payments


def seed_bulk(bar, count: int, day_start: datetime) -> None:
    """`count` payments spread over a day, in one executemany (the factory is too slow here)."""
    statuses = ["paid"] * 7 + ["failed", "cancelled", "expired"]
    codes = {"paid": "0", "failed": "1", "cancelled": "1032", "expired": "1037"}
    rows = []
    batch = next(_bulk)
    for n in range(count):
        at = day_start + timedelta(seconds=n * 86000 // count)
        status = statuses[n % len(statuses)]
        rows.append(
            {
                "bar_id": bar.id,
                "purpose": "tab",
                "phone": "254708374149",
                "amount": 100 + n % 900,
                "account_reference": f"TAB{n}",
                "description": "Bar tab",
                "status": status,
                "callback_token": secrets.token_hex(16),
                "checkout_request_id": f"ws_CO_BULK{batch}_{n}",
                "receipt": f"QB{batch}{n:08d}" if status == "paid" else None,
                "result_code": codes[status],
                "flagged": n % 500 == 0,
                "flag_reason": "late_success" if n % 500 == 0 else None,
                "query_attempts": 0,
                "created_at": at,
                "sent_at": at + timedelta(seconds=1),
                "settled_at": at + timedelta(seconds=5 + n % 40),
                "updated_at": at,
            }
        )
    db.session.execute(insert(Payment), rows)
    db.session.commit()


@pytest.fixture
def count_queries(app):
    counted = []

    def count(*_args):
        counted.append(1)

    event.listen(db.engine, "before_cursor_execute", count)
    yield counted
    event.remove(db.engine, "before_cursor_execute", count)


def render_counting(client, counted: list, day: date) -> tuple[int, float]:
    counted.clear()
    started = time.perf_counter()
    day_page(client, day)
    return len(counted), time.perf_counter() - started


def test_the_day_page_uses_a_few_queries_whatever_the_number_of_payments(
    desk, factory, bar, count_queries
):
    today = periods.local_today(bar.timezone, utcnow())
    start = periods.day_start(today, bar.timezone)
    seed_bulk(bar, 30, start)
    few, _ = render_counting(desk, count_queries, today)
    seed_bulk(bar, 2970, start)
    many, seconds = render_counting(desk, count_queries, today)
    print(
        f"\nreconciliation day page, 3,000 payments, {db.engine.dialect.name}: "
        f"{seconds * 1000:.0f} ms"
    )
    assert many == few
    assert many < 20
    page = day_page(desk, today)
    kes = sum(100 + n % 900 for n in range(30)) + sum(100 + n % 900 for n in range(2970))
    assert text_of(page, "outcome-requested") == f"Requested 3000 KES {kes:,}"
    assert len(break_ids(page)) == 7  # one in the first 30, six in the next 2,970

"""Money paid from the M-Pesa menu (C2B) in reconciliation: counted apart from the STK tries (on
a tab, or waiting to be claimed), in the totals, the CSV and the nightly summary; and statement
lines matched to it by receipt, so menu money is never "not in PesaTab"."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import C2BConfirmation, Payment, ReconciliationSummary, StatementLine, utcnow
from app.payments import c2b
from app.reconciliation import periods, report
from tests.conftest import login_as
from tests.test_c2b_confirmations import SAMPLE, confirm
from tests.test_reconciliation import pay, text_of
from tests.test_statements import csv_statement, import_file, line, page, upload


@pytest.fixture
def paybill(factory, bar):
    factory.live_credentials(bar)
    return c2b.registration_for(bar).url_secret


@pytest.fixture
def desk(app, owner):
    return login_as(app, owner)


def menu(client, secret, receipt: str, amount: int, account: str = "walk in") -> Payment:
    body = {**SAMPLE, "TransID": receipt, "TransAmount": f"{amount}.00", "BillRefNumber": account}
    record = confirm(client, secret, body)
    assert record.disposition == "applied"
    return db.session.get(Payment, record.payment_id)


def seed(client, factory, bar, secret):
    """Today: one STK push paid (KES 450), one push cancelled (KES 70), menu money on a tab
    (KES 300) and two menu payments nobody claimed yet (KES 200 + 100)."""
    now = utcnow() - timedelta(minutes=5)
    pay(factory, bar, "paid", 450, at=now)
    pay(factory, bar, "cancelled", 70, at=now, result_code="1032")
    tab = factory.tab(bar, "Table 7", lines=(("Nyama", 1, 300),))
    menu(client, secret, "UKM4AAA001", 300, account=f"TAB{tab.id}")
    menu(client, secret, "UKM4AAA002", 200)
    menu(client, secret, "UKM4AAA003", 100)
    return tab


def test_the_day_counts_menu_money_apart_from_the_tries(desk, client, factory, bar, paybill):
    seed(client, factory, bar, paybill)
    html = desk.get("/reconciliation/").get_data(as_text=True)
    assert text_of(html, "outcome-paid") == "Paid 1 KES 450"
    assert text_of(html, "outcome-requested") == "Requested 2 KES 520"
    assert text_of(html, "success-rate") == "50.0%"  # menu money is not a try that paid
    assert text_of(html, "menu-c2b_claimed") == "On a tab (claimed) 1 KES 300"
    assert text_of(html, "menu-c2b_unclaimed") == "Waiting for a cashier to claim it 2 KES 300"
    assert text_of(html, "menu-total") == "Paid from the menu 3 KES 600"
    assert text_of(html, "mpesa-in") == "All M-Pesa money in (requests paid and menu) 4 KES 1,050"
    # The counter's money: bills asked by M-Pesa stay the pushes; the menu is taken too.
    assert text_of(html, "money-asked").endswith("2 KES 520")
    assert text_of(html, "money-mpesa") == "Paid by M-Pesa 1 KES 450"
    assert text_of(html, "money-menu-claimed") == "Paid from the M-Pesa menu, on a tab 1 KES 300"
    assert text_of(html, "money-menu-unclaimed").endswith("waiting to be claimed 2 KES 300")
    assert text_of(html, "money-taken") == "Taken KES 1,050"


def test_a_claim_moves_money_from_waiting_to_on_a_tab(client, factory, bar, paybill, cashier):
    seed(client, factory, bar, paybill)
    waiting = db.session.scalar(select(Payment).where(Payment.receipt == "UKM4AAA002"))
    c2b.claim(waiting, factory.tab(bar, "Table 9"), cashier.id)
    today = periods.local_today(bar.timezone, utcnow())
    figures = report.day_figures(bar, today, today)
    assert figures.menu_counts == {"c2b_claimed": 2, "c2b_unclaimed": 1}
    assert figures.menu_kes == {"c2b_claimed": 500, "c2b_unclaimed": 100}
    assert figures.mpesa_in_kes == 450 + 600 and figures.requested == 2


def test_push_to_paid_times_leave_menu_money_out(client, factory, bar, paybill):
    seed(client, factory, bar, paybill)  # menu money "settled" at TransTime, before it was made
    today = periods.local_today(bar.timezone, utcnow())
    figures = report.day_figures(bar, today, today)
    assert (figures.timed_count, figures.median_seconds) == (1, 20)


def test_the_csv_carries_the_menu_money(desk, client, factory, bar, paybill):
    seed(client, factory, bar, paybill)
    today = periods.local_today(bar.timezone, utcnow()).isoformat()
    response = desk.get(f"/reconciliation/export.csv?from={today}&to={today}")
    (row,) = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert (row["requested"], row["paid"], row["paid_kes"]) == ("2", "1", "450")
    assert (row["c2b_claimed"], row["c2b_claimed_kes"]) == ("1", "300")
    assert (row["c2b_unclaimed"], row["c2b_unclaimed_kes"]) == ("2", "300")
    assert row["mpesa_in_kes"] == "1050"


def test_the_nightly_summary_keeps_the_menu_money(client, factory, bar, paybill):
    seed(client, factory, bar, paybill)
    day = periods.local_today(bar.timezone, utcnow())
    report.write_daily_summaries(day=day)
    stored = db.session.scalar(select(ReconciliationSummary))
    assert stored.data["version"] == report.SUMMARY_VERSION == 2
    figures = report.day_figures(bar, day, day + timedelta(days=1))
    assert figures.written_at is not None  # read back from the summary, not counted again
    assert figures.menu_kes == {"c2b_claimed": 300, "c2b_unclaimed": 300}
    assert figures.counts["paid"] == 1


# Statements ------------------------------------------------------------------------------


def test_statement_lines_of_menu_money_are_matched_never_orphans(
    desk, client, factory, bar, paybill
):
    tab = seed(client, factory, bar, paybill)
    content = csv_statement(
        [line("UKM4AAA001", paid_in="300.00"), line("UKM4AAA002", paid_in="200.00")]
    )
    response = upload(desk, content)
    lines = {x.receipt: x for x in db.session.scalars(select(StatementLine))}
    assert {r: x.match_state for r, x in lines.items()} == {
        "UKM4AAA001": "matched",
        "UKM4AAA002": "matched",
    }
    shown = page(desk.get(response.headers["Location"]))
    on_tab, waiting = (
        text_of(shown, f"menu-note-{lines[r].id}") for r in ("UKM4AAA001", "UKM4AAA002")
    )
    assert on_tab == f"Paid from the M-Pesa menu, on {tab.label}"
    assert waiting == "Paid from the M-Pesa menu; waiting for a cashier to claim it to a tab"
    assert "1</strong> of the matched paid from the M-Pesa menu, waiting" in shown
    # Not in the statement: KES 100 of menu money nobody claimed, said as such.
    missing = shown.split('id="missing"')[1].split('id="matched"')[0]
    assert "UKM4AAA003" in missing and "M-Pesa menu, not on a tab yet" in missing
    assert "UKM4AAA001" not in missing and "UKM4AAA002" not in missing


def test_a_confirmation_after_the_statement_matches_its_orphan_line(client, factory, bar, paybill):
    import_file(bar, csv_statement([line("UKM4LATE01", paid_in="300.00")]))
    assert db.session.scalar(select(StatementLine.match_state)) == "orphan"
    money = menu(client, paybill, "UKM4LATE01", 300)
    db.session.expire_all()
    found = db.session.scalar(select(StatementLine))
    assert (found.match_state, found.payment_id) == ("matched", money.id)


def test_a_late_confirmation_of_another_amount_is_shown_as_differing(client, factory, bar, paybill):
    import_file(bar, csv_statement([line("UKM4LATE02", paid_in="350.00")]))
    menu(client, paybill, "UKM4LATE02", 300)
    db.session.expire_all()
    assert db.session.scalar(select(StatementLine.match_state)) == "amount_differs"


def test_an_orphan_kept_as_a_confirmation_says_why_it_did_not_count(
    desk, client, factory, bar, paybill
):
    record = confirm(client, paybill, {**SAMPLE, "TransID": "UKM4FOR001", "BusinessShortCode": "9"})
    assert record.disposition == "foreign_shortcode"
    response = upload(desk, csv_statement([line("UKM4FOR001")]))
    orphans = page(desk.get(response.headers["Location"])).split('id="orphans"')[1]
    assert (
        "PesaTab received a confirmation for this receipt but did not count it: it named another "
        "short code." in orphans.split('id="amount-differs"')[0]
    )
    assert db.session.scalar(select(C2BConfirmation.payment_id)) is None


def test_another_bars_menu_money_never_matches_our_statement(client, factory, bar):
    other = factory.bar("Across the Road")
    factory.live_credentials(other)
    menu(client, c2b.registration_for(other).url_secret, "UKM4THEIRS", 450)
    import_file(bar, csv_statement([line("UKM4THEIRS")]))
    assert db.session.scalar(select(StatementLine.match_state)) == "orphan"

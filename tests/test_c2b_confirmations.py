"""Money paid from the M-Pesa menu: C2B confirmations stored first, applied exactly once by
TransID, on the bar their URL secret names and only for that bar's shortcode; a PayBill account
that is an open tab's code lands on the tab; anything malformed, forged or huge is kept, never
applied, and still answered without a 5xx."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import C2BConfirmation, Payment, utcnow
from app.payments import c2b
from app.reconciliation import periods, report
from app.simulator import SANDBOX_SHORTCODE, TILL_NUMBER, TILL_STORE_NUMBER
from tests.conftest import login_as

# The shape Daraja documents for a v2 confirmation (masked MSISDN), written here for the tests.
SAMPLE = {
    "TransactionType": "Pay Bill",
    "TransID": "UKM4ABC13E",
    "TransTime": "20261122150233",
    "TransAmount": "300.00",
    "BusinessShortCode": SANDBOX_SHORTCODE,
    "BillRefNumber": "TAB0042",
    "InvoiceNumber": "",
    "OrgAccountBalance": "15300.00",
    "ThirdPartyTransID": "",
    "MSISDN": "2547 ***** 149",
    "FirstName": "JANE",
    "MiddleName": "",
    "LastName": "",
}


@pytest.fixture
def paybill(factory, bar):
    factory.live_credentials(bar)
    return c2b.registration_for(bar).url_secret


def confirm(client, secret, body, **kwargs):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    response = client.post(
        f"/hooks/c2b/{secret}/confirmation", data=data, content_type="application/json", **kwargs
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"ResultCode": 0, "ResultDesc": "Success"}
    db.session.expire_all()
    return db.session.scalars(select(C2BConfirmation).order_by(C2BConfirmation.id.desc())).first()


def payments() -> list[Payment]:
    return db.session.scalars(select(Payment).order_by(Payment.id)).all()


def test_a_paybill_payment_to_a_tabs_code_lands_on_that_tab(client, factory, bar, paybill):
    tab = factory.tab(bar, "Table 4", lines=(("Tusker", 2, 250),))
    record = confirm(client, paybill, {**SAMPLE, "BillRefNumber": f" tab {tab.id:04d} "})
    assert record.disposition == "applied"
    (money,) = payments()
    assert (money.status, money.amount, money.receipt, money.tab_id) == (
        "paid",
        300,
        "UKM4ABC13E",
        tab.id,
    )
    assert money.purpose == "c2b" and money.phone == "2547*****149"
    assert record.payer_name == "JANE" and record.payment_id == money.id


def test_the_same_confirmation_twice_counts_once(client, factory, bar, paybill):
    first = confirm(client, paybill, SAMPLE)
    again = confirm(client, paybill, SAMPLE)
    assert (first.disposition, again.disposition) == ("applied", "duplicate")
    assert len(payments()) == 1 and again.payment_id == first.payment_id


def test_money_for_no_open_tab_waits_to_be_claimed(client, factory, bar, paybill):
    closed = factory.tab(bar, "Gone", status="settled")
    for n, account in enumerate(("WALKIN", "", f"TAB{closed.id}", "TAB99999")):
        confirm(client, paybill, {**SAMPLE, "TransID": f"UKM4ABC1{n}X", "BillRefNumber": account})
    assert [p.tab_id for p in payments()] == [None, None, None, None]


def test_an_stk_payments_receipt_links_and_never_counts_twice(client, factory, bar, paybill):
    pushed = factory.payment(bar, status="paid", amount=300, receipt="UKM4ABC13E")
    record = confirm(client, paybill, SAMPLE)
    assert record.disposition == "linked" and record.payment_id == pushed.id
    assert len(payments()) == 1


@pytest.mark.parametrize(
    ("secret", "change", "kept_as"),
    [
        ("not-a-bars-secret", {}, "unknown_url"),
        (None, {"BusinessShortCode": "600999"}, "foreign_shortcode"),
        (None, {"TransAmount": "300.50"}, "malformed"),
        (None, {"TransAmount": "-300"}, "malformed"),
        (None, {"TransID": "x'; drop table payment; --"}, "malformed"),
        (None, {"TransTime": "yesterday"}, "malformed"),
        (None, {"TransID": None}, "malformed"),
    ],
)
def test_forged_or_malformed_is_kept_never_applied(client, paybill, secret, change, kept_as):
    record = confirm(client, secret or paybill, {**SAMPLE, **change})
    assert record.disposition == kept_as and payments() == []


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b"\xff\xfe", "null", "{}"])
def test_bodies_that_are_not_a_confirmation_are_kept(client, paybill, body):
    record = confirm(client, paybill, body)
    assert record.disposition == "malformed" and payments() == []


def test_a_huge_body_is_kept_cut_and_never_applied(app, client, paybill):
    huge = json.dumps({**SAMPLE, "FirstName": "J" * (app.config["CALLBACK_MAX_BYTES"] * 2)})
    record = confirm(client, paybill, huge)
    assert record.disposition == "too_large" and payments() == []
    assert len(record.raw_body) <= app.config["CALLBACK_MAX_BYTES"]


def test_an_error_on_our_side_keeps_it_pending_and_still_answers(client, paybill, monkeypatch):
    def broken(record):
        raise RuntimeError("database went away")

    monkeypatch.setattr(c2b, "apply", broken)
    record = confirm(client, paybill, SAMPLE)
    assert record.disposition == "pending"
    assert db.session.scalar(select(func.count(C2BConfirmation.id))) == 1


def test_validation_accepts(client, paybill):
    response = client.post(f"/hooks/c2b/{paybill}/validation", json=SAMPLE)
    assert response.get_json() == {"ResultCode": "0", "ResultDesc": "Accepted"}


def test_another_real_bars_shortcode_on_our_url_is_kept_for_neither_bar(app, client, factory, bar):
    factory.live_credentials(bar)  # bar A: the sandbox PayBill
    other = factory.bar("Across the Road")
    factory.live_credentials(other, kind="till")  # bar B: its own till and store number
    ours, theirs = c2b.registration_for(bar), c2b.registration_for(other)
    assert ours.url_secret != theirs.url_secret
    tab = factory.tab(other, "Their table")
    for n, shortcode in enumerate((TILL_STORE_NUMBER, TILL_NUMBER)):  # both of B's numbers
        body = {**SAMPLE, "TransID": f"UKM4FRGN0{n}", "BusinessShortCode": shortcode}
        record = confirm(client, ours.url_secret, {**body, "BillRefNumber": f"TAB{tab.id}"})
        assert (record.bar_id, record.disposition) == (bar.id, "foreign_shortcode")
        assert record.payment_id is None and record.shortcode == shortcode
    assert payments() == []  # no money anywhere: not on B's tab, not waiting on either list
    assert c2b.unclaimed(bar.id) == [] and c2b.unclaimed(other.id) == []
    for_them = select(func.count(C2BConfirmation.id)).where(C2BConfirmation.bar_id == other.id)
    assert db.session.scalar(for_them) == 0  # stored for bar A only, never counted for B
    for place in (bar, other):
        today = periods.local_today(place.timezone, utcnow())
        figures = report.day_figures(place, today, today)
        assert sum(figures.menu_counts.values()) == sum(figures.menu_kes.values()) == 0
        cashier = factory.user(place, "cashier")
        incoming = login_as(app, cashier).get("/tabs/incoming").get_data(as_text=True)
        assert "UKM4FRGN0" not in incoming and 'id="incoming-' not in incoming

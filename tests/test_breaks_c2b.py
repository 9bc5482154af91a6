"""Money paid from the M-Pesa menu in the reconciliation breaks: money on no tab for longer than
the grace period is a break (amount, the payer's name as given, masked phone, time, the account
typed, a link to the list where it is claimed) until a cashier claims it to a tab; only the
bar's own, and in Kiswahili for a Kiswahili reader."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.extensions import db
from app.models import Payment, utcnow
from app.payments import c2b
from app.reconciliation import breaks, c2b_breaks
from tests.conftest import login_as
from tests.test_c2b_confirmations import SAMPLE, confirm
from tests.test_kiswahili import english_left
from tests.test_reconciliation import break_ids, text_of

UNCLAIMED_TEXT = "Paid from the M-Pesa menu, on no tab for 30 minutes"


@pytest.fixture
def paybill(factory, bar):
    factory.live_credentials(bar)
    return c2b.registration_for(bar).url_secret


@pytest.fixture
def desk(app, owner):
    return login_as(app, owner)


def menu_money(client, secret, receipt: str, *, minutes_ago: int, account: str = "walk in"):
    """Menu money on no tab that reached PesaTab `minutes_ago` minutes ago."""
    record = confirm(client, secret, {**SAMPLE, "TransID": receipt, "BillRefNumber": account})
    assert record.disposition == "applied"
    payment = db.session.get(Payment, record.payment_id)
    assert payment.tab_id is None
    payment.created_at = utcnow() - timedelta(minutes=minutes_ago)
    db.session.commit()
    return payment


def key(payment: Payment) -> str:
    return f"break-payment-{payment.id}-{c2b_breaks.UNCLAIMED}"


def break_html(page: str, element_id: str) -> str:
    found = re.search(rf'<li [^>]*id="{re.escape(element_id)}".*?</li>', page, re.S)
    assert found is not None, element_id
    return found.group(0)


def test_menu_money_on_no_tab_past_the_grace_period_is_a_break(desk, client, bar, paybill):
    old = menu_money(client, paybill, "UKM4OLD001", minutes_ago=31)
    new = menu_money(client, paybill, "UKM4NEW001", minutes_ago=29)
    page = desk.get("/reconciliation/").get_data(as_text=True)
    assert key(old) in break_ids(page) and key(new) not in break_ids(page)
    text = text_of(page, key(old))
    assert text.startswith(UNCLAIMED_TEXT)
    assert "Receipt UKM4OLD001" in text and "KES 300" in text
    assert "JANE · 2547*****149 · Account typed: walk in" in text  # as the payer gave them
    assert "22 Nov 2026, 15:02" in text  # when it was paid (Nairobi time)
    assert "Nobody has claimed this money" in text
    item = break_html(page, key(old))
    assert f'href="/tabs/#incoming-{old.id}"' in item  # the list where a cashier claims it
    assert "checked-form" not in item  # it ends when claimed, nobody marks it as checked


def test_once_claimed_to_a_tab_it_is_no_longer_a_break(desk, client, factory, bar, paybill):
    money = menu_money(client, paybill, "UKM4CLM001", minutes_ago=45)
    assert key(money) in break_ids(desk.get("/reconciliation/").get_data(as_text=True))
    cashier = factory.user(bar, "cashier")
    tab = factory.tab(bar, "Table 9")
    response = login_as(factory.app, cashier).post(
        f"/tabs/{tab.id}/claim", data={"payment_id": money.id}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Payment, money.id).tab_id == tab.id
    assert key(money) not in break_ids(desk.get("/reconciliation/").get_data(as_text=True))


def test_another_bars_unclaimed_money_never_shows(app, desk, client, factory, bar, paybill):
    other = factory.bar("Across the Road")
    factory.live_credentials(other)
    theirs = menu_money(
        client, c2b.registration_for(other).url_secret, "UKM4THEIRS", minutes_ago=90
    )
    ours = desk.get("/reconciliation/").get_data(as_text=True)
    assert key(theirs) not in break_ids(ours) and "UKM4THEIRS" not in ours
    period = (utcnow() - timedelta(days=1), utcnow())
    assert [b.kind for b in breaks.open_breaks(bar, period).items] == []
    # Their owner sees it; their link to a cashier's list is their own.
    owner = factory.user(other, "owner")
    page = login_as(app, owner).get("/reconciliation/").get_data(as_text=True)
    assert key(theirs) in break_ids(page)
    assert desk.post(f"/reconciliation/payment/{theirs.id}/checked").status_code == 404


def test_the_break_is_in_kiswahili(app, client, owner, bar, paybill):
    money = menu_money(client, paybill, "UKM4SWA001", minutes_ago=40, account="meza nne")
    pages = {}
    for locale in ("en", "sw"):
        owner.locale = locale
        db.session.commit()
        page = login_as(app, owner).get("/reconciliation/").get_data(as_text=True)
        pages[locale] = break_html(page, key(money))
    assert "Imelipwa kupitia menyu ya M-Pesa" in pages["sw"]
    assert "Akaunti iliyoandikwa: meza nne" in pages["sw"]
    data = {"JANE", "meza nne", "UKM4SWA001", "2547*****149"}
    assert english_left(pages["en"], pages["sw"], data) == []

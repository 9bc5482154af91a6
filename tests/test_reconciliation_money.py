"""Reconciliation in tabs and money: bills, not tries; cash and card apart from M-Pesa; money
only the statement knows of stays among the breaks until someone attaches it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import StatementLine, Tender
from tests.conftest import login_as
from tests.test_reconciliation import DAY, NOON, day_page, pay, text_of
from tests.test_statements import csv_statement, import_file, line


@pytest.fixture
def desk(app, owner):
    return login_as(app, owner)


def tender(bar, tab, kind, amount, at=NOON, **fields):
    found = Tender(bar_id=bar.id, tab_id=tab.id, kind=kind, amount=amount, created_at=at, **fields)
    db.session.add(found)
    db.session.commit()
    return found


def test_a_bill_paid_on_the_third_try_is_asked_once_and_paid_once(desk, factory, bar):
    tab = factory.tab(bar, lines=(("Dinner", 1, 2500),))
    pay(factory, bar, "failed", 2500, tab=tab)
    pay(factory, bar, "cancelled", 2500, at=NOON + timedelta(minutes=2), tab=tab)
    pay(factory, bar, "paid", 2500, at=NOON + timedelta(minutes=4), tab=tab)
    page = day_page(desk)
    assert text_of(page, "money-asked").endswith("1 KES 2,500")
    assert text_of(page, "money-mpesa") == "Paid by M-Pesa 1 KES 2,500"
    assert text_of(page, "money-tries").startswith("3 M-Pesa tries for 1 bill; 100.0% of the KES")
    # The tries keep their own figure.
    assert text_of(page, "outcome-requested") == "Requested 3 KES 7,500"


def test_a_bill_split_across_two_phones_is_two_bills(desk, factory, bar):
    tab = factory.tab(bar, lines=(("Dinner", 1, 1000),))
    pay(factory, bar, "paid", 500, tab=tab, phone="254708374149")
    pay(factory, bar, "paid", 500, tab=tab, phone="254711000000")
    page = day_page(desk)
    assert text_of(page, "money-asked").endswith("2 KES 1,000")
    assert text_of(page, "money-mpesa") == "Paid by M-Pesa 2 KES 1,000"


def test_cash_and_card_are_their_own_rows_never_mpesa(desk, factory, bar):
    tab = factory.tab(bar, lines=(("Dinner", 1, 1500),))
    pay(factory, bar, "paid", 700, tab=tab)
    tender(bar, tab, "cash", 500)
    tender(bar, tab, "card", 300)
    tender(bar, tab, "cash", 999, removed_at=NOON)  # taken back: not money
    pay(factory, bar, "paid", 1, purpose="test")  # the owner's KES 1 proof: never takings
    page = day_page(desk)
    assert text_of(page, "money-mpesa") == "Paid by M-Pesa 1 KES 700"
    assert text_of(page, "money-cash") == "Cash 1 KES 500"
    assert text_of(page, "money-card") == "Card 1 KES 300"
    assert text_of(page, "money-taken") == "Taken KES 1,500"
    other_day = day_page(desk, DAY - timedelta(days=1))
    assert text_of(other_day, "money-cash") == "Cash 0 KES 0"


def test_money_only_the_statement_knows_is_a_break_until_attached(desk, factory, bar):
    import_file(bar, csv_statement([line("QKA1B2C3D4", paid_in="650.00", account="WALKIN")]))
    page = day_page(desk)
    found = db.session.scalars(select(StatementLine)).one()
    key = f"break-statement-{found.id}"
    assert key in page
    assert "Money in the M-Pesa statement that PesaTab did not ask for" in text_of(page, key)
    assert "KES 650" in text_of(page, key)
    tab = factory.tab(bar, lines=(("Beer", 1, 650),))
    attached = desk.post(
        f"/reconciliation/statements/{found.import_id}/lines/{found.id}/attach",
        data={"tab_id": tab.id},
    )
    assert attached.status_code in (200, 302), attached.get_data(as_text=True)
    assert key not in day_page(desk)

"""Marking a flagged payment as checked: the break goes, the reason and the note stay on record."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Payment
from tests.conftest import login_as
from tests.test_reconciliation import DAY, break_ids, day_page, pay

DAY_URL = f"/reconciliation/?day={DAY.isoformat()}"


@pytest.fixture
def manager_desk(app, manager):
    return login_as(app, manager)


def check(client, payment: Payment, note: str, back: str = DAY_URL):
    return client.post(f"/reconciliation/payments/{payment.id}/checked", data={"note": note, "back": back})


def flashed(client, response) -> str:
    return html.unescape(client.get(response.headers["Location"]).get_data(as_text=True))


def test_a_manager_marks_a_late_success_as_checked_and_the_break_goes(manager_desk, factory, bar, manager):
    payment = pay(factory, bar, "paid", 450, flagged=True, flag_reason="late_success")
    key = f"break-payment-{payment.id}-late_success"
    page = day_page(manager_desk)
    assert key in break_ids(page) and f'/reconciliation/payments/{payment.id}/checked' in page

    response = check(manager_desk, payment, "  Customer  refunded KES 450 by phone ")

    assert response.status_code == 302
    assert response.headers["Location"].startswith(DAY_URL)
    assert "is marked as checked: Customer  refunded" in flashed(manager_desk, response)
    assert key not in break_ids(day_page(manager_desk))
    db.session.refresh(payment)
    assert (payment.status, payment.flagged, payment.flag_reason) == ("paid", False, "late_success")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "payment.flag_cleared"))
    assert event.user_id == manager.id and event.bar_id == bar.id
    assert event.details["payment_id"] == payment.id and event.details["reason"] == "late_success"
    assert event.details["note"] == "Customer refunded KES 450 by phone"


@pytest.mark.parametrize("note", ["", "  ", "ok"])
def test_it_needs_a_few_words_of_what_was_found(manager_desk, factory, bar, note):
    payment = pay(factory, bar, "paid", 450, flagged=True, flag_reason="amount_mismatch")
    response = check(manager_desk, payment, note)
    assert "Say what you found" in flashed(manager_desk, response)
    db.session.refresh(payment)
    assert payment.flagged is True


def test_a_flag_that_describes_a_state_clears_itself_not_by_hand(manager_desk, factory, bar):
    payment = pay(factory, bar, "paid", 450, receipt=None, flagged=True, flag_reason="receipt_pending")
    page = day_page(manager_desk)
    assert f"break-payment-{payment.id}-receipt_pending" in break_ids(page)
    assert f"/reconciliation/payments/{payment.id}/checked" not in page

    response = check(manager_desk, payment, "looked at it")

    assert "clears itself" in flashed(manager_desk, response)
    db.session.refresh(payment)
    assert payment.flagged is True


def test_checking_twice_changes_nothing_the_second_time(manager_desk, factory, bar):
    payment = pay(factory, bar, "paid", 450, flagged=True, flag_reason="second_receipt")
    check(manager_desk, payment, "refunded the second payment")
    again = check(manager_desk, payment, "refunded it again?")
    assert "has no flag to clear" in flashed(manager_desk, again)
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "payment.flag_cleared")).all()
    assert len(events) == 1


def test_another_bars_payment_is_not_found(manager_desk, factory):
    elsewhere = factory.bar("Elsewhere")
    payment = pay(factory, elsewhere, "paid", 450, flagged=True, flag_reason="late_success")
    assert check(manager_desk, payment, "not ours").status_code == 404
    db.session.refresh(payment)
    assert payment.flagged is True


def test_the_way_back_stays_on_the_reconciliation_pages(manager_desk, factory, bar):
    payment = pay(factory, bar, "paid", 450, flagged=True, flag_reason="late_success")
    response = check(manager_desk, payment, "refunded by phone", back="https://evil.example/")
    assert response.headers["Location"].startswith("/reconciliation/")

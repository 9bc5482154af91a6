"""Marking a flagged payment as checked: the break goes, the reason and the note stay on record."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, CallbackEvent, Payment, Tab
from tests.conftest import login_as
from tests.test_reconciliation import DAY, break_ids, callback_event, day_page, pay

DAY_URL = f"/reconciliation/?day={DAY.isoformat()}"


@pytest.fixture
def manager_desk(app, manager):
    return login_as(app, manager)


def check(client, payment: Payment, note: str, back: str = DAY_URL):
    return client.post(
        f"/reconciliation/payment/{payment.id}/checked", data={"note": note, "back": back}
    )


def flashed(client, response) -> str:
    return html.unescape(client.get(response.headers["Location"]).get_data(as_text=True))


def test_a_manager_marks_a_late_success_as_checked_and_the_break_goes(
    manager_desk, factory, bar, manager
):
    payment = pay(factory, bar, "paid", 450, flagged=True, flag_reason="late_success")
    key = f"break-payment-{payment.id}-late_success"
    page = day_page(manager_desk)
    assert key in break_ids(page) and f"/reconciliation/payment/{payment.id}/checked" in page

    response = check(manager_desk, payment, "  Customer  refunded KES 450 by phone ")

    assert response.status_code == 302
    assert response.headers["Location"].startswith(DAY_URL)
    assert (
        f"Payment {payment.id} is marked as checked: Customer refunded KES 450 by phone"
        in flashed(manager_desk, response)
    )
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
    payment = pay(
        factory, bar, "paid", 450, receipt=None, flagged=True, flag_reason="receipt_pending"
    )
    page = day_page(manager_desk)
    assert f"break-payment-{payment.id}-receipt_pending" in break_ids(page)
    assert f"/reconciliation/payment/{payment.id}/checked" not in page

    response = check(manager_desk, payment, "looked at it")

    assert "clears itself" in flashed(manager_desk, response)
    db.session.refresh(payment)
    assert payment.flagged is True


def test_checking_twice_changes_nothing_the_second_time(manager_desk, factory, bar):
    payment = pay(factory, bar, "paid", 450, flagged=True, flag_reason="second_receipt")
    flashed(manager_desk, check(manager_desk, payment, "refunded the second payment"))
    again = check(manager_desk, payment, "refunded it again?")
    assert "has no flag to clear" in flashed(manager_desk, again)
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "payment.flag_cleared")
    ).all()
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


def audit_notes(action: str) -> list[str]:
    return [
        e.details["note"]
        for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action == action))
    ]


def mark(client, what: str, target: int, note: str):
    return client.post(
        f"/reconciliation/{what}/{target}/checked", data={"note": note, "back": DAY_URL}
    )


def test_a_void_tab_that_still_owes_is_checked_once_and_its_break_goes(manager_desk, factory, bar):
    tab = factory.tab(bar, "Otieno", lines=(("Tusker", 3, 300),), status="void")
    key = f"break-tab-{tab.id}"
    page = day_page(manager_desk)
    assert key in break_ids(page) and f"/reconciliation/tab/{tab.id}/checked" in page

    done = flashed(
        manager_desk, mark(manager_desk, "tab", tab.id, "written off: customer walked out")
    )
    again = flashed(manager_desk, mark(manager_desk, "tab", tab.id, "again"))

    assert "Otieno is marked as checked" in done and "already marked as checked" in again
    assert key not in break_ids(day_page(manager_desk))
    assert audit_notes("tab.checked") == ["written off: customer walked out"]
    db.session.refresh(tab)
    assert tab.checked_at is not None and tab.status == "void"


def test_an_open_tab_is_not_checked_away(manager_desk, factory, bar):
    tab = factory.tab(bar, "Table 2", lines=(("Soda", 1, 100),))
    assert "still open" in flashed(manager_desk, mark(manager_desk, "tab", tab.id, "looks fine"))
    assert db.session.get(Tab, tab.id).checked_at is None


def test_a_kept_callback_is_checked_and_stays_unapplied(manager_desk, factory, bar):
    payment = pay(factory, bar, "sent", 450)
    kept = callback_event(
        bar.id, payment.id, "mismatch", detail="CheckoutRequestID does not match this payment"
    )
    applied = callback_event(bar.id, payment.id, "applied")
    assert f"/reconciliation/callback/{kept.id}/checked" in day_page(manager_desk)

    flashed(
        manager_desk,
        mark(manager_desk, "callback", kept.id, "not in the statement: a test from Safaricom"),
    )
    refused = flashed(manager_desk, mark(manager_desk, "callback", applied.id, "fine"))

    assert f"break-callback-{kept.id}" not in break_ids(day_page(manager_desk))
    assert "not kept for review" in refused
    db.session.refresh(kept)
    db.session.refresh(payment)
    assert (
        kept.disposition == "mismatch" and kept.checked_at is not None and payment.status == "sent"
    )
    assert db.session.get(CallbackEvent, applied.id).checked_at is None
    assert audit_notes("callback.checked") == ["not in the statement: a test from Safaricom"]


def test_another_bars_tab_and_callback_are_not_found(manager_desk, factory):
    elsewhere = factory.bar("Elsewhere")
    tab = factory.tab(elsewhere, "Theirs", lines=(("Soda", 1, 100),), status="void")
    event = callback_event(elsewhere.id, None, "malformed")
    assert mark(manager_desk, "tab", tab.id, "not ours").status_code == 404
    assert mark(manager_desk, "callback", event.id, "not ours").status_code == 404
    assert mark(manager_desk, "something", 1, "not a thing").status_code == 404

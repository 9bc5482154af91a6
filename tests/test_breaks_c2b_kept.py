"""C2B confirmations PesaTab kept without counting them (another business number, unreadable) in
the reconciliation breaks: each is a break saying what happened and what to do, with its
receipt and amount when they could be read, until an owner or manager marks it as checked
with a note (audited, still never applied); only the bar's own, and in Kiswahili for a
Kiswahili reader."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, C2BConfirmation, Payment
from app.payments import c2b
from tests.conftest import login_as
from tests.test_breaks_c2b import break_html
from tests.test_c2b_confirmations import SAMPLE, confirm
from tests.test_kiswahili import english_left
from tests.test_reconciliation import break_ids, text_of

FOREIGN_TEXT = (
    "M-Pesa sent this payment for another business number (600999) to this bar's address: "
    "it was not counted"
)
MALFORMED_TEXT = "M-Pesa sent a payment PesaTab could not read: it was not counted"
TO_DO = "Check the M-Pesa statement for this payment. If the money is the bar's, add it from"


@pytest.fixture
def paybill(factory, bar):
    factory.live_credentials(bar)
    return c2b.registration_for(bar).url_secret


@pytest.fixture
def desk(app, owner):
    return login_as(app, owner)


def foreign(client, secret, receipt: str = "UKM5FOR001") -> C2BConfirmation:
    record = confirm(client, secret, {**SAMPLE, "TransID": receipt, "BusinessShortCode": "600999"})
    assert record.disposition == "foreign_shortcode"
    return record


def unreadable(client, secret, body=b"{not json at all") -> C2BConfirmation:
    record = confirm(client, secret, body)
    assert record.disposition == "malformed"
    return record


def key(record: C2BConfirmation) -> str:
    return f"break-c2b-{record.id}"


def page_of(client) -> str:
    response = client.get("/reconciliation/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def mark(client, record: C2BConfirmation, note: str, **kwargs):
    return client.post(
        f"/reconciliation/c2b/{record.id}/checked",
        data={"note": note, "back": "/reconciliation/"},
        **kwargs,
    )


def test_a_foreign_shortcode_confirmation_is_a_break_with_its_receipt_and_amount(
    desk, client, paybill
):
    record = foreign(client, paybill)
    page = page_of(desk)
    assert key(record) in break_ids(page)
    text = text_of(page, key(record))
    assert text.startswith(FOREIGN_TEXT)
    assert "Receipt UKM5FOR001" in text and "KES 300" in text
    assert "JANE · 2547*****149 · Account typed: TAB0042" in text
    assert TO_DO in text
    item = break_html(page, key(record))
    assert f'action="/reconciliation/c2b/{record.id}/checked"' in item  # checkable


def test_an_unreadable_confirmation_is_a_break(desk, client, paybill):
    junk = unreadable(client, paybill)
    bad_time = unreadable(client, paybill, {**SAMPLE, "TransID": "UKM5BAD001", "TransTime": "x"})
    bad_amount = unreadable(
        client, paybill, {**SAMPLE, "TransID": "UKM5BAD002", "TransAmount": "-3"}
    )
    page = page_of(desk)
    for record in (junk, bad_time, bad_amount):
        text = text_of(page, key(record))
        assert text is not None and text.startswith(MALFORMED_TEXT), record.id
        assert TO_DO in text
        assert f"/reconciliation/c2b/{record.id}/checked" in break_html(page, key(record))
    assert f"M-Pesa menu confirmation {junk.id}" in text_of(page, key(junk))  # no receipt to show
    assert "KES" not in text_of(page, key(junk))
    assert "Receipt UKM5BAD001" in text_of(page, key(bad_time))
    assert "KES 300" in text_of(page, key(bad_time))
    bad = text_of(page, key(bad_amount))  # the receipt can be read, the amount cannot
    assert "Receipt UKM5BAD002" in bad and "KES" not in bad
    assert db.session.scalars(select(Payment)).all() == []  # still never counted


def test_marking_it_checked_hides_it_and_writes_an_audit_entry(app, client, manager, bar, paybill):
    record = foreign(client, paybill)
    desk = login_as(app, manager)
    response = mark(desk, record, "  Not ours: paid to the hotel next door ")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("#recon-breaks")
    flashed = desk.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        f"M-Pesa menu confirmation {record.id} is marked as checked: "
        "Not ours: paid to the hotel next door" in flashed
    )
    assert key(record) not in break_ids(page_of(desk))
    db.session.expire_all()
    checked = db.session.get(C2BConfirmation, record.id)
    assert checked.checked_at is not None
    assert (checked.disposition, checked.payment_id) == ("foreign_shortcode", None)  # unapplied
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "c2b.checked"))
    assert (event.bar_id, event.user_id) == (bar.id, manager.id)
    assert event.details == {
        "confirmation_id": record.id,
        "disposition": "foreign_shortcode",
        "receipt": "UKM5FOR001",
        "amount": 300,
        "note": "Not ours: paid to the hotel next door",
    }
    # Once is enough: a second click changes nothing and says so.
    again = desk.get(mark(desk, record, "checked again").headers["Location"])
    assert "already marked as checked" in again.get_data(as_text=True)
    assert (
        len(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "c2b.checked")).all())
        == 1
    )


def test_it_needs_a_note_and_the_apps_csrf_token(desk, client, paybill):
    record = unreadable(client, paybill)
    assert mark(desk, record, "looked at the statement", csrf=False).status_code == 400
    short = desk.get(mark(desk, record, "ok").headers["Location"]).get_data(as_text=True)
    assert "Say what you found" in short
    db.session.expire_all()
    assert db.session.get(C2BConfirmation, record.id).checked_at is None
    assert key(record) in break_ids(page_of(desk))


def test_an_applied_confirmation_is_not_checked_by_hand(desk, client, paybill):
    applied = confirm(client, paybill, {**SAMPLE, "TransID": "UKM5APP001"})
    assert applied.disposition == "applied"
    flashed = desk.get(mark(desk, applied, "looked at it").headers["Location"])
    assert "there is nothing to check" in flashed.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(C2BConfirmation, applied.id).checked_at is None


def test_another_bars_owner_gets_404_and_never_sees_it(app, client, factory, paybill):
    record = foreign(client, paybill)
    other = factory.bar("Across the Road")
    theirs = login_as(app, factory.user(other, "owner"))
    assert mark(theirs, record, "not ours at all").status_code == 404
    assert key(record) not in break_ids(page_of(theirs)) and "UKM5FOR001" not in page_of(theirs)
    db.session.expire_all()
    assert db.session.get(C2BConfirmation, record.id).checked_at is None
    assert (
        db.session.scalars(select(AuditEvent).where(AuditEvent.action == "c2b.checked")).all() == []
    )


def test_a_cashier_may_not_check_it(app, client, cashier, paybill):
    record = foreign(client, paybill)
    assert mark(login_as(app, cashier), record, "looked at the statement").status_code == 403
    db.session.expire_all()
    assert db.session.get(C2BConfirmation, record.id).checked_at is None


def test_the_breaks_are_in_kiswahili(app, client, owner, paybill):
    records = (foreign(client, paybill, "UKM5SWA001"), unreadable(client, paybill))
    pages = {}
    for locale in ("en", "sw"):
        owner.locale = locale
        db.session.commit()
        page = page_of(login_as(app, owner))
        pages[locale] = "".join(break_html(page, key(r)) for r in records)
    assert "namba nyingine ya biashara (600999)" in pages["sw"]
    assert "PesaTab haikuweza kusoma" in pages["sw"]
    data = {"JANE", "TAB0042", "UKM5SWA001", "2547*****149", "600999"}
    assert english_left(pages["en"], pages["sw"], data) == []

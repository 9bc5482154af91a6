"""Money from the M-Pesa menu on the counter screen: waiting money is listed with the payer's
name, a cashier claims it to a tab in one tap (once, audited), a second claim is refused with a
sentence, and a manager can move it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Payment
from app.payments import c2b
from tests.conftest import login_as
from tests.test_c2b_confirmations import SAMPLE


@pytest.fixture
def walk_in(client, factory, bar):
    """KES 300 from JANE, paid to the PayBill with an account that is no tab's."""
    factory.live_credentials(bar)
    secret = c2b.registration_for(bar).url_secret
    body = json.dumps({**SAMPLE, "BillRefNumber": "WALKIN"})
    client.post(f"/hooks/c2b/{secret}/confirmation", data=body, content_type="application/json")
    return db.session.scalar(select(Payment).where(Payment.purpose == "c2b"))


def test_waiting_money_is_listed_and_claimed_once(app, factory, bar, cashier, walk_in):
    tab = factory.tab(bar, "Table 7", lines=(("Nyama", 1, 800),))
    counter = login_as(app, cashier)
    listed = counter.get("/tabs/incoming").get_data(as_text=True)
    assert f'id="incoming-{walk_in.id}"' in listed and "JANE" in listed and "KES 300" in listed
    page = counter.post(
        f"/tabs/{tab.id}/claim", data={"payment_id": walk_in.id}, follow_redirects=True
    ).get_data(as_text=True)
    assert "KES 300 from the M-Pesa menu is on Table 7." in page
    assert f'id="tab-balance-{tab.id}">KES 500<' in page
    assert f'id="incoming-{walk_in.id}"' not in counter.get("/tabs/incoming").get_data(as_text=True)
    other = factory.tab(bar, "Table 8", lines=(("Soda", 1, 300),))
    again = counter.post(
        f"/tabs/{other.id}/claim", data={"payment_id": walk_in.id}, follow_redirects=True
    )
    assert "already on a tab; a manager can move it" in again.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Payment, walk_in.id).tab_id == tab.id
    claimed = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "payment.claimed")
    ).all()
    assert len(claimed) == 1 and claimed[0].user_id == cashier.id


def test_a_manager_moves_claimed_money_to_the_right_tab(
    app, factory, bar, cashier, manager, walk_in
):
    wrong = factory.tab(bar, "Table 7", lines=(("Nyama", 1, 800),))
    right = factory.tab(bar, "Table 8", lines=(("Soda", 1, 300),))
    login_as(app, cashier).post(f"/tabs/{wrong.id}/claim", data={"payment_id": walk_in.id})
    cheeky = login_as(app, cashier).post(
        f"/tabs/{right.id}/claim", data={"payment_id": walk_in.id, "move": "1"}
    )
    assert cheeky.status_code == 302
    db.session.expire_all()
    assert db.session.get(Payment, walk_in.id).tab_id == wrong.id  # a cashier cannot move it
    login_as(app, manager).post(
        f"/tabs/{right.id}/claim", data={"payment_id": walk_in.id, "move": "1"}
    )
    db.session.expire_all()
    assert db.session.get(Payment, walk_in.id).tab_id == right.id
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "payment.moved"))


def test_a_closed_tab_or_an_stk_payment_cannot_be_claimed(app, factory, bar, cashier, walk_in):
    closed = factory.tab(bar, "Gone", status="settled")
    counter = login_as(app, cashier)
    page = counter.post(
        f"/tabs/{closed.id}/claim", data={"payment_id": walk_in.id}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Gone is closed; choose an open tab." in page
    pushed = factory.payment(bar, status="paid", receipt="QKA0000001")
    tab = factory.tab(bar, "Table 9")
    page = counter.post(
        f"/tabs/{tab.id}/claim", data={"payment_id": pushed.id}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Only money paid from the M-Pesa menu can be claimed" in page


def test_another_bars_money_or_tab_answers_404(app, factory, bar, outsider, walk_in):
    theirs = factory.tab(outsider.bar, "Their table")
    stranger = login_as(app, outsider)
    assert (
        stranger.post(f"/tabs/{theirs.id}/claim", data={"payment_id": walk_in.id}).status_code
        == 404
    )
    assert f"incoming-{walk_in.id}" not in stranger.get("/tabs/incoming").get_data(as_text=True)

"""A lost callback of a pending set's test push is recovered with that set: Daraja knows the
request only under the app and PayBill that sent it."""

from __future__ import annotations

import time

from sqlalchemy import select

from app.extensions import db
from app.models import Payment
from app.payments import recovery
from tests import test_settings_live as settings
from tests.test_settings_live import NEW, NEW_SHORTCODE, PAYS, fresh_credential

boss, live_bar, simulator = settings.boss, settings.live_bar, settings.simulator  # fixtures


def test_a_pending_sets_lost_test_push_is_checked_with_that_set(boss, live_bar, simulator):
    boss.post("/settings/mpesa/", data=NEW)
    boss.post("/settings/mpesa/check")
    simulator.set_faults(callback_lost=True)
    response = boss.post("/settings/mpesa/test-push", data={"phone": PAYS, "amount": 1})
    assert response.status_code == 302
    db.session.expire_all()
    payment = db.session.scalar(select(Payment).order_by(Payment.id.desc()))
    assert payment.credential_revision == fresh_credential(live_bar).pending_revision
    for _ in range(50):  # the customer decides (the callback itself is lost)
        outcome = recovery.check_payment(payment)
        db.session.expire_all()
        payment = db.session.get(Payment, payment.id)
        if payment.status == "paid":
            break
        time.sleep(0.2)
    assert payment.status == "paid", outcome
    queried = [
        e["body"]["BusinessShortCode"]
        for e in simulator.events("request")
        if e["path"].endswith("stkpushquery/v1/query")
    ]
    assert queried and set(queried) == {NEW_SHORTCODE}

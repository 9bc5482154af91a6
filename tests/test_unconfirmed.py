"""News from M-Pesa that is not yet money or not yet final, until an STK query confirms it.

A success callback without its Amount is not credited: the recover job's query decides. A 1037
("DS timeout") can still turn into money, so it is not final until a query a few minutes later
says so. Both run end to end: the app served over real HTTP on 127.0.0.1, the mounted Daraja
simulator pushing, answering queries and calling back, the recover job called with the clock in
the test's hands.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Bar, CallbackEvent, Payment, utcnow
from app.payments import recovery
from app.payments.push import PushRequest, start_push
from app.payments.tabs import totals
from tests.conftest import login_as

pytestmark = pytest.mark.usefixtures("app")

ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}
PAYS = "254708374149"  # the simulator's sandbox test number: the customer pays


@pytest.fixture
def live_bar(factory, bar, live):
    factory.live_credentials(bar)
    return bar


@pytest.fixture
def tab(factory, live_bar):
    return factory.tab(live_bar, lines=(("Tusker", 2, 225),))  # KES 450


def push(tab, phone: str = PAYS, amount: int = 450) -> Payment:
    return start_push(db.session.get(Bar, tab.bar_id), PushRequest(phone=phone, amount=amount, purpose="tab", tab=tab,
                                           account_reference="TAB1", description="Bar tab"))


def later(seconds: float):
    return utcnow() + timedelta(seconds=seconds)


def fresh(payment: Payment) -> Payment:
    db.session.expire_all()
    return db.session.get(Payment, payment.id)


def snapshot(payment: Payment) -> dict:
    row = fresh(payment)
    return {c.name: getattr(row, c.name) for c in Payment.__table__.columns}


def paid_audits(payment: Payment) -> list[dict]:
    db.session.expire_all()
    details = db.session.scalars(select(AuditEvent.details).where(AuditEvent.action == "payment.paid"))
    return [d for d in details if d["payment_id"] == payment.id]


def events() -> list[CallbackEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(CallbackEvent).order_by(CallbackEvent.id)))


def post_over_http(live, payment: Payment, body: dict) -> dict:
    """A callback POSTed to the live app as anyone on the internet could (the hook has no auth)."""
    response = requests.post(
        f"{live.url}/hooks/stk/{payment.callback_token}", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json;charset=UTF-8", "Businessshortcode": "174379"},
        timeout=5,
    )
    assert response.status_code == 200
    return response.json()


def success_without_amount(payment: Payment, receipt: str = "UKM4FORGE1") -> dict:
    items = [{"Name": "MpesaReceiptNumber", "Value": receipt}, {"Name": "Balance"},
             {"Name": "TransactionDate", "Value": 20261122143112}, {"Name": "PhoneNumber", "Value": int(PAYS)}]
    return {"Body": {"stkCallback": {
        "MerchantRequestID": payment.merchant_request_id, "CheckoutRequestID": payment.checkout_request_id,
        "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "CallbackMetadata": {"Item": items},
    }}}


def break_text(page: str, key: str) -> str:
    found = re.search(rf'<li[^>]*\bid="{re.escape(key)}"[^>]*>(.*?)</li>', page, re.S)
    assert found is not None, f"no break {key} on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


# A success without its Amount ----------------------------------------------------------------


def test_a_forged_success_without_an_amount_is_credited_only_once_a_query_confirms_it(live, tab, sim_state, owner, app):
    sim_state.set_faults(callback_lost=True)  # only the forged callback reaches PesaTab
    payment = push(tab)
    assert payment.status == "sent"

    assert post_over_http(live, payment, success_without_amount(payment)) == ACK
    held = fresh(payment)
    assert (held.status, held.receipt, held.paid_amount) == ("sent", None, None)
    assert (held.flagged, held.flag_reason) == (True, "amount_missing")
    assert totals(tab).paid == 0 and paid_audits(payment) == []
    assert [(e.disposition, e.payment_id) for e in events()] == [("mismatch", payment.id)]

    page = login_as(app, owner).get("/reconciliation/").get_data(as_text=True)
    text = break_text(page, f"break-payment-{payment.id}-amount_missing")
    assert "M-Pesa said paid but not how much" in text
    assert "PesaTab has not counted this money: it counts it once M-Pesa confirms the payment" in text

    # The recover job asks M-Pesa (the simulator's truth: paid) and credits it, once.
    result = recovery.recover_due(now=later(61))
    assert (result.queried, result.settled) == (1, 1)
    paid = fresh(payment)
    assert (paid.status, paid.paid_amount, paid.receipt, paid.flag_reason) == ("paid", 450, None, "receipt_pending")
    assert totals(tab).paid == 450
    assert [a["source"] for a in paid_audits(payment)] == ["query"]
    before = snapshot(payment)

    # The same forged callback again changes nothing.
    assert post_over_http(live, payment, success_without_amount(payment)) == ACK
    assert snapshot(payment) == before
    assert [e.disposition for e in events()] == ["mismatch", "mismatch"]
    assert totals(tab).paid == 450 and len(paid_audits(payment)) == 1
    assert recovery.recover_due(now=later(600)).queried == 0


def test_the_ledger_itself_refuses_a_callback_success_without_an_amount(factory, bar):
    from app.payments import ledger

    payment = factory.payment(bar, status="sent", amount=450)
    outcome = ledger.Outcome(code="0", receipt="UKM4FORGE2", source="callback")
    assert ledger.record(payment, outcome) == "mismatch"
    db.session.commit()
    held = fresh(payment)
    assert (held.status, held.receipt, held.flag_reason) == ("sent", None, "amount_missing")

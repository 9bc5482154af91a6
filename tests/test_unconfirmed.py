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
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Bar, CallbackEvent, Payment, utcnow
from app.payments import recovery
from app.payments.push import PushRequest, start_push
from app.tabs.totals import totals
from tests.conftest import login_as

pytestmark = pytest.mark.usefixtures("app")

ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}
PAYS = "254708374149"  # the simulator's sandbox test number: the customer pays
CONFIRM_AFTER = timedelta(minutes=3)  # app.payments.ledger.CONFIRM_AFTER ("a few minutes")
LATE_PAYER_PHONE = "254711201037"  # the simulator's "1037, then pays; success callback lost"
CONFIRMING = "M-Pesa is still confirming this payment"  # how the cashier's sentence begins


@pytest.fixture
def live_bar(factory, bar, live):
    factory.live_credentials(bar)
    return bar


@pytest.fixture
def tab(factory, live_bar):
    return factory.tab(live_bar, lines=(("Tusker", 2, 225),))  # KES 450


def push(tab, phone: str = PAYS, amount: int = 450) -> Payment:
    return start_push(
        db.session.get(Bar, tab.bar_id),
        PushRequest(
            phone=phone,
            amount=amount,
            purpose="tab",
            tab=tab,
            account_reference="TAB1",
            description="Bar tab",
        ),
    )


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
    details = db.session.scalars(
        select(AuditEvent.details).where(AuditEvent.action == "payment.paid")
    )
    return [d for d in details if d["payment_id"] == payment.id]


def events() -> list[CallbackEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(CallbackEvent).order_by(CallbackEvent.id)))


def post_over_http(live, payment: Payment, body: dict) -> dict:
    """A callback POSTed to the live app as anyone on the internet could (the hook has no auth)."""
    response = requests.post(
        f"{live.url}/hooks/stk/{payment.callback_token}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json;charset=UTF-8", "Businessshortcode": "174379"},
        timeout=5,
    )
    assert response.status_code == 200
    return response.json()


def success_without_amount(payment: Payment, receipt: str = "UKM4FORGE1") -> dict:
    items = [
        {"Name": "MpesaReceiptNumber", "Value": receipt},
        {"Name": "Balance"},
        {"Name": "TransactionDate", "Value": 20261122143112},
        {"Name": "PhoneNumber", "Value": int(PAYS)},
    ]
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": payment.merchant_request_id,
                "CheckoutRequestID": payment.checkout_request_id,
                "ResultCode": 0,
                "ResultDesc": "The service request is processed successfully.",
                "CallbackMetadata": {"Item": items},
            }
        }
    }


def break_text(page: str, key: str) -> str:
    found = re.search(rf'<li[^>]*\bid="{re.escape(key)}"[^>]*>(.*?)</li>', page, re.S)
    assert found is not None, f"no break {key} on the page"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


# A success without its Amount ----------------------------------------------------------------


def test_a_forged_success_without_an_amount_is_credited_only_once_a_query_confirms_it(
    live, tab, sim_state, owner, app
):
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
    assert (
        "PesaTab has not counted this money: it counts it once M-Pesa confirms the payment" in text
    )

    # The recover job asks M-Pesa (the simulator's truth: paid) and credits it, once.
    result = recovery.recover_due(now=later(61))
    assert (result.queried, result.settled) == (1, 1)
    paid = fresh(payment)
    assert (paid.status, paid.paid_amount, paid.receipt, paid.flag_reason) == (
        "paid",
        450,
        None,
        "receipt_pending",
    )
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


# A 1037 ("DS timeout") is not final until a query a few minutes later says so ------------------


def hx(app, user, payment: Payment) -> str:
    return (
        login_as(app, user)
        .get(f"/payments/{payment.id}/status", headers={"HX-Request": "true"})
        .get_data(as_text=True)
    )


def wait_for(condition, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)
    return result


def unreachable_callback(payment: Payment) -> dict:
    return {
        "Body": {
            "stkCallback": {
                "MerchantRequestID": payment.merchant_request_id or "m",
                "CheckoutRequestID": payment.checkout_request_id,
                "ResultCode": 1037,
                "ResultDesc": "[STK_CB - ]DS timeout user cannot be reached",
            }
        }
    }


def test_a_customer_paying_after_a_1037_whose_callback_is_lost_is_credited_by_the_confirming_query(
    live, tab, sim_state, app, cashier
):
    payment = push(tab, phone=LATE_PAYER_PHONE)
    assert sim_state.wait_for_callbacks(
        1, timeout=5
    )  # the 1037, over HTTP, applied before its answer
    (call,) = sim_state.events("callback")
    assert (call["status"], call["body"]["Body"]["stkCallback"]["ResultCode"]) == (200, 1037)
    (lost,) = wait_for(
        lambda: sim_state.events("callback_dropped")
    )  # the success callback never comes
    assert lost["result_code"] == 0

    held = fresh(payment)
    assert (held.status, held.result_code) == ("unknown", "1037") and held.message.startswith(
        CONFIRMING
    )
    assert (
        held.inflight_key is not None and held.settled_at is None
    )  # not final: no second push to this phone
    assert totals(tab).paid == 0 and totals(tab).in_flight == 450
    fragment = hx(app, cashier, payment)
    assert CONFIRMING in fragment and "do not send it again yet" in fragment
    assert 'hx-trigger="every 2s' in fragment  # still polling

    assert (
        recovery.recover_due(now=later(61)).queried == 0
    )  # the confirming query is a few minutes away
    result = recovery.recover_due(now=later(CONFIRM_AFTER.total_seconds() + 5))
    assert (result.queried, result.settled) == (1, 1)
    paid = fresh(payment)
    assert (paid.status, paid.paid_amount, paid.receipt) == ("paid", 450, None)
    assert (paid.flagged, paid.flag_reason, paid.inflight_key) == (True, "late_success", None)
    assert totals(tab).paid == 450
    assert paid_audits(payment) == [{"payment_id": payment.id, "source": "query", "late": True}]
    fragment = hx(app, cashier, payment)
    assert (
        "Receipt to follow from M-Pesa." in fragment
        and "hx-trigger" not in fragment.split("</div>")[0]
    )

    # Safaricom delivers the lost success after all: the money is not counted again.
    (truth,) = sim_state.transactions()
    resent = success_without_amount(payment, receipt=truth.receipt)
    resent["Body"]["stkCallback"]["CallbackMetadata"]["Item"].insert(
        0, {"Name": "Amount", "Value": 450}
    )
    assert post_over_http(live, payment, resent) == ACK
    assert post_over_http(live, payment, resent) == ACK
    assert [e.disposition for e in events()] == [
        "applied",
        "applied",
        "duplicate",
    ]  # the receipt filled in
    late = fresh(payment)
    assert (late.status, late.receipt, late.flag_reason) == ("paid", truth.receipt, "late_success")
    assert totals(tab).paid == 450 and len(paid_audits(payment)) == 1
    assert recovery.recover_due(now=later(3600)).queried == 0


def test_a_1037_nobody_pays_is_final_only_after_the_confirming_query(
    live, tab, sim_state, app, cashier
):
    payment = push(tab, phone="254711001037")
    assert sim_state.wait_for_callbacks(1, timeout=5)
    assert fresh(payment).status == "unknown"
    assert recovery.recover_due(now=later(CONFIRM_AFTER.total_seconds() - 5)).queried == 0
    result = recovery.recover_due(now=later(CONFIRM_AFTER.total_seconds() + 5))
    assert (result.queried, result.settled) == (1, 1)
    expired = fresh(payment)
    assert (expired.status, expired.result_code, expired.inflight_key) == ("expired", "1037", None)
    assert expired.message == "No response from the phone; check it is on and send again."
    assert not expired.flagged and totals(tab).paid == 0
    fragment = hx(app, cashier, payment)
    assert (
        "No response from the phone" in fragment and "hx-trigger" not in fragment.split("</div>")[0]
    )


def test_a_1037_first_seen_by_a_query_is_asked_again_before_it_is_final(live, tab, sim_state):
    sim_state.set_faults(callback_lost=True)
    payment = push(tab, phone="254711001037")
    first = recovery.recover_due(now=later(61))
    assert (first.queried, first.settled, first.still_waiting) == (1, 0, 1)
    held = fresh(payment)
    assert (held.status, held.result_code) == ("unknown", "1037")
    assert abs((held.next_query_at - later(61) - CONFIRM_AFTER).total_seconds()) < 2
    assert recovery.recover_due(now=held.next_query_at - timedelta(seconds=1)).queried == 0
    second = recovery.recover_due(now=held.next_query_at)
    assert (second.queried, second.settled) == (1, 1)
    assert fresh(payment).status == "expired"


# The same at unit level: forged callbacks and query answers on a factory payment -------------


def test_the_tests_wait_as_long_as_the_ledger():
    from app.payments import ledger

    assert ledger.CONFIRM_AFTER == CONFIRM_AFTER


@pytest.fixture
def sent(factory, bar) -> Payment:
    payment = factory.payment(bar, status="sent", amount=450, inflight_key="tab:1:254708374149")
    payment.sent_at = utcnow() - timedelta(seconds=30)
    db.session.commit()
    return payment


def hook(client, payment: Payment, body: dict):
    response = client.post(
        f"/hooks/stk/{payment.callback_token}",
        data=json.dumps(body),
        content_type="application/json",
        csrf=False,
    )
    assert response.get_json() == ACK


def query(payment: Payment, code: str, now) -> str:
    from app.payments import ledger

    disposition = ledger.record(
        fresh(payment), ledger.Outcome(code=code, desc="x", source="query"), now=now
    )
    db.session.commit()
    return disposition


def test_a_1037_callback_is_not_final(client, sent):
    hook(client, sent, unreachable_callback(sent))
    held = fresh(sent)
    assert (held.status, held.result_code, held.settled_at) == ("unknown", "1037", None)
    assert held.message.startswith(CONFIRMING)
    assert held.inflight_key == "tab:1:254708374149"
    assert abs((held.next_query_at - utcnow() - CONFIRM_AFTER).total_seconds()) < 5
    (event,) = events()
    assert (event.disposition, event.detail) == ("applied", "held until an STK query confirms it")
    before = snapshot(sent)
    hook(client, sent, unreachable_callback(sent))
    assert events()[-1].disposition == "duplicate" and snapshot(sent) == before
    assert (
        db.session.scalar(select(AuditEvent.id).where(AuditEvent.action.like("payment.%"))) is None
    )


def test_a_held_1037_answered_paid_by_the_query_is_a_late_success(client, sent):
    hook(client, sent, unreachable_callback(sent))
    assert fresh(sent).status == "unknown"  # held, not final
    assert query(sent, "0", now=later(200)) == "late_success"
    paid = fresh(sent)
    assert (paid.status, paid.result_code, paid.paid_amount, paid.receipt) == (
        "paid",
        "0",
        450,
        None,
    )
    assert (paid.flagged, paid.flag_reason, paid.inflight_key) == (True, "late_success", None)
    assert query(sent, "0", now=later(300)) == "duplicate"  # credited once


@pytest.mark.parametrize(
    ("code", "status"), [("1", "failed"), ("1032", "cancelled"), ("1037", "expired")]
)
def test_a_held_1037_answered_unpaid_by_the_query_becomes_final(client, sent, code, status):
    hook(client, sent, unreachable_callback(sent))
    assert fresh(sent).status == "unknown"  # held, not final
    assert query(sent, code, now=later(200)) == "applied"
    final = fresh(sent)
    assert (final.status, final.result_code, final.inflight_key, final.flagged) == (
        status,
        code,
        None,
        False,
    )
    assert final.settled_at is not None


def test_a_query_asked_early_keeps_a_1037_held_until_a_few_minutes_after_the_push(client, sent):
    hook(client, sent, unreachable_callback(sent))
    assert fresh(sent).status == "unknown"  # held, not final
    assert query(sent, "1037", now=later(10)) == "held"  # "Check now", seconds after the 1037
    held = fresh(sent)
    assert held.status == "unknown" and held.next_query_at == held.sent_at + CONFIRM_AFTER
    assert query(sent, "1037", now=held.sent_at + CONFIRM_AFTER) == "applied"
    assert fresh(sent).status == "expired"


def test_money_wins_over_a_held_1037_by_callback_too(client, sent):
    hook(client, sent, unreachable_callback(sent))
    assert fresh(sent).status == "unknown"  # held, not final
    body = success_without_amount(sent, receipt="UKM4LATE77")
    body["Body"]["stkCallback"]["CallbackMetadata"]["Item"].insert(
        0, {"Name": "Amount", "Value": 450}
    )
    hook(client, sent, body)
    paid = fresh(sent)
    assert (paid.status, paid.receipt, paid.flag_reason) == ("paid", "UKM4LATE77", "late_success")
    assert [e.disposition for e in events()] == ["applied", "late_success"]
    hook(client, sent, unreachable_callback(sent))
    assert events()[-1].disposition == "ignored" and fresh(sent).status == "paid"


def test_a_1037_before_the_push_answer_is_held_and_the_answer_does_not_undo_it(
    client, factory, bar
):
    from app.payments import states

    payment = factory.payment(bar, status="created", checkout_request_id=None)
    body = unreachable_callback(payment)
    body["Body"]["stkCallback"]["CheckoutRequestID"] = "ws_CO_EARLY0001"
    hook(client, payment, body)
    held = fresh(payment)
    assert (held.status, held.checkout_request_id, held.result_code) == (
        "unknown",
        "ws_CO_EARLY0001",
        "1037",
    )
    assert not states.move(
        held, "sent", checkout_request_id="ws_CO_EARLY0001"
    )  # the push's own answer
    assert fresh(payment).status == "unknown"

"""Callbacks racing each other and the push, over real HTTP (LiveServer), credited exactly once.

Run it on SQLite and on PostgreSQL (TEST_DATABASE_URL): the conditional UPDATE in
app/payments/states.py and the unique receipt are what keep five deliveries from paying twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import Counter
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, CallbackEvent, Payment
from app.payments import states
from app.payments.push import PushRequest, start_push
from app.settings import vault
from app.settings.vault import CredentialInput
from app.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET
from tests.samples import sample

ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}
ON_POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")
RECEIPT = "UKM4ABC12D"
DELIVERIES = 5
TIMEOUT = 15


def body_for(payment: Payment, name: str = "callback_paid.json") -> bytes:
    """A sample callback for `payment`: its CheckoutRequestID, and on success its amount."""
    body = sample(name)
    callback = body["Body"]["stkCallback"]
    callback["CheckoutRequestID"] = payment.checkout_request_id
    for item in callback.get("CallbackMetadata", {}).get("Item", []):
        if item["Name"] == "Amount":
            item["Value"] = float(payment.amount)
        if item["Name"] == "MpesaReceiptNumber":
            item["Value"] = RECEIPT
    return json.dumps(body).encode()


def deliver_at_once(posts: list[tuple[str, bytes]]) -> list[Any]:
    """POST every (url, body) from its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(posts))
    answers: list[Any] = [None] * len(posts)
    headers = {
        "Content-Type": "application/json;charset=UTF-8",
        "Businessshortcode": SANDBOX_SHORTCODE,
    }

    def deliver(i: int) -> None:
        url, body = posts[i]
        barrier.wait(timeout=TIMEOUT)
        try:
            answers[i] = requests.post(url, data=body, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as exc:  # reported by the callers' assertions
            answers[i] = exc

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(posts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    return answers


def hook(live, payment: Payment) -> str:
    return f"{live.url}/hooks/stk/{payment.callback_token}"


def acked(answer: Any) -> bool:
    return (
        isinstance(answer, requests.Response) and answer.status_code == 200 and answer.json() == ACK
    )


def events_for(payment: Payment) -> list[CallbackEvent]:
    db.session.expire_all()
    query = select(CallbackEvent).where(CallbackEvent.token == payment.callback_token)
    return list(db.session.scalars(query.order_by(CallbackEvent.id)))


def reload(payment: Payment) -> Payment:
    db.session.expire_all()
    return db.session.get(Payment, payment.id)


def credits(receipt: str = RECEIPT) -> int:
    return db.session.scalar(
        select(func.count()).select_from(Payment).where(Payment.receipt == receipt)
    )


def paid_audits() -> int:
    return db.session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "payment.paid")
    )


@pytest.fixture
def payment(factory, bar) -> Payment:
    return factory.payment(bar, status="sent", amount=450)


@pytest.fixture
def lined_up(monkeypatch):
    """Hold each delivery just before the ledger's UPDATE until all of them are there (or half a
    second passed), so the collision the test is about happens on every run, not most runs."""
    barrier = threading.Barrier(DELIVERIES, timeout=0.5)
    real_move = states.move

    def move(payment, new, **values):
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return real_move(payment, new, **values)

    monkeypatch.setattr(states, "move", move)


def test_the_same_success_delivered_five_times_at_once_is_credited_once(live, payment, lined_up):
    body = body_for(payment)

    answers = deliver_at_once([(hook(live, payment), body)] * DELIVERIES)

    assert all(acked(a) for a in answers), answers
    events = events_for(payment)
    assert len(events) == DELIVERIES and all(e.raw_body == body.decode() for e in events)
    assert all(e.source_address == "127.0.0.1" and not e.known_source for e in events)
    paid = reload(payment)
    assert (paid.status, paid.receipt, paid.paid_amount, paid.flagged) == (
        "paid",
        RECEIPT,
        450,
        False,
    )
    assert credits() == 1 and paid_audits() == 1
    assert Counter(e.disposition for e in events) == {"applied": 1, "duplicate": DELIVERIES - 1}


@pytest.mark.parametrize("failure", ["callback_cancelled.json", "callback_unreachable.json"])
def test_a_success_racing_failures_wins_and_is_credited_once(live, payment, failure):
    success, failed = body_for(payment), body_for(payment, failure)
    bodies = [failed, success, failed, success, failed]

    answers = deliver_at_once([(hook(live, payment), body) for body in bodies])

    assert all(acked(a) for a in answers), answers
    paid = reload(payment)
    assert (paid.status, paid.receipt, paid.result_code, paid.paid_amount) == (
        "paid",
        RECEIPT,
        "0",
        450,
    )
    assert credits() == 1 and paid_audits() == 1
    by_body = Counter((e.raw_body == success.decode(), e.disposition) for e in events_for(payment))
    assert sum(by_body.values()) == DELIVERIES
    # Exactly one success credited the payment: on time, or late after a failure settled it.
    assert by_body[(True, "applied")] + by_body[(True, "late_success")] == 1
    assert (
        by_body[(True, "applied")]
        + by_body[(True, "late_success")]
        + by_body[(True, "duplicate")]
        + by_body[(True, "pending")]
        == 2
    )
    # A failure counts only if it got there first; then the success is the flagged late one.
    if by_body[(False, "applied")]:
        assert by_body[(False, "applied")] == 1 and paid.flag_reason == "late_success"
    else:
        assert not paid.flagged


@pytest.fixture
def holds_lined_up(monkeypatch):
    """`lined_up` for holds (a 1037 is held in flight, not settled): every delivery reaches the
    hold's UPDATE having read the payment before any of them wrote it."""
    barrier = threading.Barrier(DELIVERIES, timeout=0.5)
    real_hold = states.hold

    def hold(payment, **values):
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        return real_hold(payment, **values)

    monkeypatch.setattr(states, "hold", hold)


def test_the_same_1037_delivered_five_times_at_once_holds_the_payment_once(
    live, payment, holds_lined_up
):
    from datetime import timedelta

    from app import jobs
    from app.models import utcnow

    body = body_for(payment, "callback_unreachable.json")

    answers = deliver_at_once([(hook(live, payment), body)] * DELIVERIES)

    assert all(acked(a) for a in answers), answers
    jobs.replay_pending(now=utcnow() + timedelta(minutes=2))  # any left pending by a busy database
    held = reload(payment)
    assert (held.status, held.result_code, held.settled_at) == ("unknown", "1037", None)
    assert Counter(e.disposition for e in events_for(payment)) == {
        "applied": 1,
        "duplicate": DELIVERIES - 1,
    }


def test_the_same_receipt_sent_to_two_payments_at_once_is_credited_once(
    live, factory, bar, payment
):
    other = factory.payment(bar, status="sent", amount=450)
    posts = [(hook(live, payment), body_for(payment)), (hook(live, other), body_for(other))] * 2

    answers = deliver_at_once(posts)

    assert all(acked(a) for a in answers), answers
    assert credits() == 1 and paid_audits() == 1
    assert sorted(reload(p).status for p in (payment, other)) == ["paid", "sent"]
    dispositions = Counter(e.disposition for p in (payment, other) for e in events_for(p))
    assert dispositions["applied"] == 1 and sum(dispositions.values()) == 4
    assert set(dispositions) <= {"applied", "duplicate", "mismatch", "pending"}


# Through the simulator: Daraja calling back as it does -----------------------------------------


@pytest.fixture
def live_bar(app, live, bar):
    vault.save(
        bar,
        CredentialInput(
            environment="sandbox",
            kind="paybill",
            shortcode=SANDBOX_SHORTCODE,
            till_number=None,
            consumer_key=SIM_CONSUMER_KEY,
            consumer_secret=SIM_CONSUMER_SECRET,
            passkey=SANDBOX_PASSKEY,
        ),
    )
    bar.setup_state = "live"
    db.session.commit()
    return bar


def push(bar, amount: int = 450) -> Payment:
    return start_push(
        bar,
        PushRequest(
            phone="254708374149",
            amount=amount,
            purpose="api",
            account_reference="API42",
            description="Bar tab",
        ),
    )


def test_a_callback_before_the_push_response_is_credited_once(live_bar, sim_state):
    sim_state.set_faults(callback_before_response=True)

    payment = push(live_bar)

    (delivery,) = sim_state.events("callback")
    assert delivery["status"] == 200 and json.loads(delivery["response"]) == ACK
    sent = delivery["body"]["Body"]["stkCallback"]
    paid = reload(payment)
    assert (paid.status, paid.flagged, paid.flag_reason) == ("paid", False, None)
    assert paid.checkout_request_id == sent["CheckoutRequestID"]
    assert paid.merchant_request_id == sent["MerchantRequestID"]
    receipt = next(
        i["Value"] for i in sent["CallbackMetadata"]["Item"] if i["Name"] == "MpesaReceiptNumber"
    )
    assert (paid.receipt, paid.paid_amount) == (receipt, 450)
    (event,) = events_for(payment)
    assert (event.disposition, event.headers["Businessshortcode"]) == ("applied", SANDBOX_SHORTCODE)
    assert paid_audits() == 1


def test_daraja_delivering_a_callback_three_times_credits_once(live_bar, sim_state):
    sim_state.set_faults(callback_duplicates=3, callback_amount_float=True)

    payment = push(live_bar)
    assert sim_state.wait_for_callbacks(3, timeout=TIMEOUT)

    assert all(d["status"] == 200 for d in sim_state.events("callback"))
    assert [e.disposition for e in events_for(payment)] == ["applied", "duplicate", "duplicate"]
    paid = reload(payment)
    assert (paid.status, paid.paid_amount) == ("paid", 450) and credits(paid.receipt) == 1


def test_a_forged_amount_from_daraja_is_not_credited(live_bar, sim_state):
    sim_state.set_faults(amount_in_callback=1)

    payment = push(live_bar)
    assert sim_state.wait_for_callbacks(1, timeout=TIMEOUT)

    (event,) = events_for(payment)
    assert (event.disposition, event.detail) == ("mismatch", "amount 1 differs from the 450 asked")
    unpaid = reload(payment)
    assert (unpaid.status, unpaid.receipt, unpaid.flag_reason) == ("sent", None, "amount_mismatch")

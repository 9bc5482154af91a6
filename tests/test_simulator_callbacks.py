"""The simulator's callbacks: outcome by phone number, body shape and types, headers, timing.

A real receiver (a tiny Flask app on a LiveServer) gets every callback over HTTP, so these tests
see the bytes a PesaTab callback route would see.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from app.simulator import (
    INSTANT_TIMING,
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    TILL_NUMBER,
    TILL_PASSKEY,
    TILL_STORE_NUMBER,
    SimulatorState,
    create_sim_app,
)
from app.simulator.ids import eat_timestamp
from app.simulator.outcomes import NAMED_PHONES, callback_desc
from app.simulator.testing import (
    CallbackReceiver,
    SimulatorClient,
    json_shape,
    stk_push_body,
    till_push_body,
)
from tests.samples import sample

FAILING_PHONES = [(phone, named.code) for phone, named in NAMED_PHONES.items() if named.code != 0]


LATE_PAYER_PHONE = "254711201037"  # 1037, then pays: its success callback is lost (README)


@pytest.fixture
def state(receiver):
    receiver.clear()
    with SimulatorState(**INSTANT_TIMING) as state:
        yield state


@pytest.fixture
def daraja(state) -> SimulatorClient:
    return SimulatorClient(create_sim_app(state).test_client())


def push_and_receive(daraja, state, receiver, **overrides) -> tuple[dict, dict]:
    """Push, wait for the one callback, return (push answer, callback as received)."""
    accepted = daraja.push(callback_url=receiver.url("hooks/stk/Xq3v9LmT0aBcD4eF"), **overrides)
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    assert state.wait_for_callbacks(1, timeout=5)
    (call,) = receiver.calls()
    return accepted.get_json(), call


def stk_callback(call: dict) -> dict:
    return json.loads(call["raw"])["Body"]["stkCallback"]


def items(callback: dict) -> dict:
    return {item["Name"]: item.get("Value") for item in callback["CallbackMetadata"]["Item"]}


# Success ------------------------------------------------------------------------------------


def test_a_paid_callback_has_darajas_shape_types_and_order(daraja, state, receiver):
    accepted, call = push_and_receive(daraja, state, receiver)
    body = json.loads(call["raw"])
    assert json_shape(body) == json_shape(sample("callback_paid.json"))
    callback = body["Body"]["stkCallback"]
    assert list(callback) == list(sample("callback_paid.json")["Body"]["stkCallback"])
    assert (callback["ResultCode"], callback["ResultDesc"]) == (
        0,
        "The service request is processed successfully.",
    )
    assert callback["CheckoutRequestID"] == accepted["CheckoutRequestID"]
    assert callback["MerchantRequestID"] == accepted["MerchantRequestID"]
    assert callback["CallbackMetadata"]["Item"][2] == {"Name": "Balance"}


def test_a_paid_callback_carries_the_truth(daraja, state, receiver):
    before = int(eat_timestamp(time.time()))
    accepted, call = push_and_receive(daraja, state, receiver, amount=1250, phone="254110123456")
    values = items(stk_callback(call))
    txn = state.transaction(accepted["CheckoutRequestID"])
    assert values["Amount"] == 1250 and isinstance(values["Amount"], int)
    assert values["PhoneNumber"] == 254110123456
    assert values["MpesaReceiptNumber"] == txn.receipt
    assert re.fullmatch(r"[A-Z][A-Z0-9]{9}", txn.receipt)
    assert values["TransactionDate"] == txn.transaction_date
    assert before <= txn.transaction_date <= int(eat_timestamp(time.time()))


def test_the_callback_arrives_with_daraja_headers_at_the_exact_path(daraja, state, receiver):
    _, call = push_and_receive(daraja, state, receiver)
    assert call["path"] == "/hooks/stk/Xq3v9LmT0aBcD4eF"
    assert call["headers"]["Content-Type"] == "application/json;charset=UTF-8"
    assert call["headers"]["Businessshortcode"] == "174379"


def test_receipts_are_unique(daraja, state, receiver):
    for _ in range(10):
        daraja.push(callback_url=receiver.url())
    assert state.wait_for_callbacks(10, timeout=5)
    receipts = {items(stk_callback(call))["MpesaReceiptNumber"] for call in receiver.calls()}
    assert len(receipts) == 10


def test_a_till_payment_is_paid_and_names_the_store_number(daraja, state, receiver):
    daraja.push(till_push_body(callback_url=receiver.url()))
    assert state.wait_for_callbacks(1, timeout=5)
    (call,) = receiver.calls()
    assert stk_callback(call)["ResultCode"] == 0
    assert call["headers"]["Businessshortcode"] == "174380"


@pytest.mark.parametrize("phone", ["254722000000", "254799123456", "254110000001", "254711000000"])
def test_any_other_valid_number_pays(daraja, state, receiver, phone):
    _, call = push_and_receive(daraja, state, receiver, phone=phone)
    assert stk_callback(call)["ResultCode"] == 0


# Failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("phone", "code"), FAILING_PHONES)
def test_a_named_phone_fails_with_its_code_and_no_metadata(daraja, state, receiver, phone, code):
    _, call = push_and_receive(daraja, state, receiver, phone=phone)
    callback = stk_callback(call)
    assert json_shape(json.loads(call["raw"])) == json_shape(sample("callback_cancelled.json"))
    assert callback["ResultCode"] == code and isinstance(callback["ResultCode"], int)
    assert callback["ResultDesc"] == callback_desc(code)
    assert "CallbackMetadata" not in callback


@pytest.mark.parametrize(
    ("phone", "sample_name"),
    [
        ("254711001032", "callback_cancelled.json"),
        ("254711000001", "callback_insufficient.json"),
        ("254711001037", "callback_unreachable.json"),
    ],
)
def test_failure_wording_matches_the_samples(daraja, state, receiver, phone, sample_name):
    _, call = push_and_receive(daraja, state, receiver, phone=phone)
    expected = sample(sample_name)["Body"]["stkCallback"]
    callback = stk_callback(call)
    assert (callback["ResultCode"], callback["ResultDesc"]) == (
        expected["ResultCode"],
        expected["ResultDesc"],
    )


@pytest.mark.parametrize(
    ("phone", "code"), [("254711000026", 26), ("254711099999", 99999), ("254711000004", 4)]
)
def test_2547110ccccc_answers_with_result_code_ccccc(daraja, state, receiver, phone, code):
    _, call = push_and_receive(daraja, state, receiver, phone=phone)
    assert stk_callback(call)["ResultCode"] == code


def test_default_outcome_overrides_the_table(daraja, state, receiver):
    state.set_faults(default_outcome=1032)
    _, call = push_and_receive(daraja, state, receiver)
    assert stk_callback(call)["ResultCode"] == 1032


@pytest.mark.parametrize(
    ("till", "overrides", "code"),
    [
        (True, {"TransactionType": "CustomerPayBillOnline"}, 2028),
        (True, {"PartyB": "5999999"}, "SFC_IC0003"),
        (True, {"PartyB": TILL_STORE_NUMBER}, "SFC_IC0003"),
        (False, {"TransactionType": "CustomerBuyGoodsOnline"}, 2028),
        (False, {"PartyB": TILL_NUMBER}, "SFC_IC0003"),
    ],
)
def test_a_till_paybill_mixup_is_accepted_then_fails_in_the_callback(
    daraja, state, receiver, till, overrides, code
):
    builder = till_push_body if till else stk_push_body
    shortcode, passkey = (
        (TILL_STORE_NUMBER, TILL_PASSKEY) if till else (SANDBOX_SHORTCODE, SANDBOX_PASSKEY)
    )
    assert daraja.push(builder(callback_url=receiver.url(), **overrides)).status_code == 200
    assert state.wait_for_callbacks(1, timeout=5)
    (call,) = receiver.calls()
    callback = stk_callback(call)
    assert callback["ResultCode"] == code and "CallbackMetadata" not in callback
    assert call["headers"]["Businessshortcode"] == shortcode
    answer = daraja.query(
        callback["CheckoutRequestID"], shortcode=shortcode, passkey=passkey
    ).get_json()
    assert answer["ResultCode"] == str(code)


# Timing and delivery ----------------------------------------------------------------------


def test_the_query_and_the_callback_agree(daraja, state, receiver):
    accepted, call = push_and_receive(daraja, state, receiver, phone="254711002001")
    answer = daraja.query(accepted["CheckoutRequestID"]).get_json()
    assert answer["ResultCode"] == "2001" == str(stk_callback(call)["ResultCode"])


def test_the_late_payer_gets_its_1037_callback_and_its_success_callback_is_lost(
    daraja, state, receiver
):
    accepted, call = push_and_receive(daraja, state, receiver, phone=LATE_PAYER_PHONE)
    callback = stk_callback(call)
    assert callback["ResultCode"] == 1037 and "CallbackMetadata" not in callback
    deadline = time.monotonic() + 5
    while not state.events("callback_dropped"):
        assert time.monotonic() < deadline, "the lost success was never recorded"
        time.sleep(0.01)
    (dropped,) = state.events("callback_dropped")
    assert (dropped["checkout_request_id"], dropped["result_code"]) == (
        accepted["CheckoutRequestID"],
        0,
    )
    assert not state.wait_for_callbacks(2, timeout=0.2) and len(receiver.calls()) == 1
    (txn,) = state.transactions()
    assert (txn.result_code, txn.then_code) == (1037, 0) and len(txn.receipt) == 10


def test_a_late_outcome_waits_for_the_prompt_lifetime(daraja, state, receiver):
    state.set_faults(prompt_lifetime=60)
    daraja.push(phone="254711001037", callback_url=receiver.url())
    daraja.push(phone="254711001032", callback_url=receiver.url())
    assert state.wait_for_callbacks(1, timeout=5)
    assert not state.wait_for_callbacks(2, timeout=0.2)
    assert [stk_callback(call)["ResultCode"] for call in receiver.calls()] == [1032]


def test_reset_cancels_callbacks_not_yet_sent(daraja, state, receiver):
    state.set_faults(callback_delay=60)
    daraja.push(callback_url=receiver.url())
    state.reset()
    started = time.monotonic()
    state.close()
    assert time.monotonic() - started < 2
    assert receiver.calls() == [] and state.events("callback") == []


def test_close_cancels_pending_callbacks_and_the_state_stays_usable(daraja, state, receiver):
    state.set_faults(callback_delay=60)
    daraja.push(callback_url=receiver.url())
    state.close()
    state.clear_faults()
    daraja.push(callback_url=receiver.url())
    assert state.wait_for_callbacks(1, timeout=5)
    assert len(receiver.calls()) == 1 and len(state.transactions()) == 2


def test_an_unreachable_callback_url_is_recorded_as_an_error(daraja, state):
    accepted = daraja.push(callback_url="http://127.0.0.1:9/hooks/stk/nobody-home").get_json()
    assert state.wait_for_callbacks(1, timeout=10)
    (event,) = state.events("callback")
    assert event["status"] is None and "ConnectionError" in event["error"]
    assert event["checkout_request_id"] == accepted["CheckoutRequestID"]
    assert event["url"] == "http://127.0.0.1:9/hooks/stk/nobody-home"


def test_a_failing_receiver_is_recorded_with_its_status_and_not_retried(daraja, state):
    with CallbackReceiver(status=500) as broken:
        daraja.push(callback_url=broken.url())
        assert state.wait_for_callbacks(1, timeout=5)
        assert not state.wait_for_callbacks(2, timeout=0.2)
    (event,) = state.events("callback")
    assert (event["status"], event["attempt"], event["error"]) == (500, 1, None)
    assert json.loads(event["response"]) == {"ResultCode": 0, "ResultDesc": "Accepted"}
    assert event["body"]["Body"]["stkCallback"]["ResultCode"] == 0


def test_wait_for_callbacks_gives_up_after_its_timeout(state):
    started = time.monotonic()
    assert state.wait_for_callbacks(1, timeout=0.1) is False
    assert time.monotonic() - started < 1

"""The Daraja simulator through Flask's test client: STK query, the gateway fault, the record."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.simulator import (
    CONTROL_HEADER,
    INSTANT_TIMING,
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    TILL_PASSKEY,
    SimulatorState,
    create_sim_app,
)
from app.simulator.faults import render_faults_table
from app.simulator.outcomes import render_outcome_table
from app.simulator.testing import (
    SimulatorClient,
    basic_auth,
    credentials,
    json_shape,
)
from tests.samples import assert_error, invalid, sample

TOKEN_URL = "/oauth/v1/generate?grant_type=client_credentials"


LATE_PAYER_PHONE = "254711201037"  # 1037, then pays: its success callback is lost (README)


@pytest.fixture
def state():
    # Callbacks go nowhere in this module (see test_simulator_callbacks.py): they are dropped.
    with SimulatorState(**INSTANT_TIMING, callback_lost=True) as state:
        yield state


@pytest.fixture
def sim(state):
    return create_sim_app(state).test_client()


@pytest.fixture
def daraja(sim) -> SimulatorClient:
    return SimulatorClient(sim)


# STK query ----------------------------------------------------------------------------------


def test_a_query_for_an_unknown_id_says_it_does_not_exist(daraja):
    response = daraja.query("ws_CO_221120261430001708374149")
    assert response.status_code == 500
    assert response.get_json() == sample("query_unknown.json")


def test_a_query_before_the_decision_answers_4999(daraja, state):
    state.set_faults(decision_delay=60)
    checkout_id = daraja.push().get_json()["CheckoutRequestID"]
    response = daraja.query(checkout_id)
    assert response.status_code == 200
    body = response.get_json()
    expected = sample("query_pending_4999.json")
    assert json_shape(body) == json_shape(expected)
    assert list(body) == list(expected)
    assert (body["ResultCode"], body["ResultDesc"]) == (
        expected["ResultCode"],
        expected["ResultDesc"],
    )
    assert body["CheckoutRequestID"] == checkout_id


def test_a_query_before_the_decision_can_answer_the_older_500_form(daraja, state):
    state.set_faults(decision_delay=60, query_pending_form="500")
    checkout_id = daraja.push().get_json()["CheckoutRequestID"]
    response = daraja.query(checkout_id)
    assert response.status_code == 500
    assert response.get_json() == {**sample("query_pending_500.json"), "requestId": checkout_id}


@pytest.mark.parametrize(
    ("phone", "code", "desc"),
    [
        ("254711001032", "1032", "Request cancelled by user"),
        ("254708374149", "0", "The service request is processed successfully."),
    ],
)
def test_a_query_after_the_decision_answers_the_result_as_strings(daraja, phone, code, desc):
    accepted = daraja.push(phone=phone).get_json()
    body = daraja.query(accepted["CheckoutRequestID"]).get_json()
    expected = sample("query_finished.json")
    assert json_shape(body) == json_shape(expected)
    assert list(body) == list(expected)
    assert body["ResponseDescription"] == expected["ResponseDescription"]
    assert (body["ResultCode"], body["ResultDesc"]) == (code, desc)
    assert body["MerchantRequestID"] == accepted["MerchantRequestID"]


def test_an_unreachable_phone_stays_pending_until_the_prompt_expires(daraja, state):
    state.set_faults(prompt_lifetime=60)
    unreachable = daraja.push(phone="254711001037").get_json()["CheckoutRequestID"]
    cancelled = daraja.push(phone="254711001032").get_json()["CheckoutRequestID"]
    assert daraja.query(unreachable).get_json()["ResultCode"] == "4999"
    assert daraja.query(cancelled).get_json()["ResultCode"] == "1032"


def test_a_1037_query_has_no_callback_prefix(daraja):
    checkout_id = daraja.push(phone="254711001037").get_json()["CheckoutRequestID"]
    assert daraja.query(checkout_id).get_json()["ResultDesc"] == "DS timeout user cannot be reached"


def test_the_late_payer_answers_1037_until_it_pays_then_0():
    now = [time.time()]
    timing = {**INSTANT_TIMING, "late_payment_delay": 60}
    with SimulatorState(clock=lambda: now[0], **timing, callback_lost=True) as state:
        daraja = SimulatorClient(create_sim_app(state).test_client())
        checkout_id = daraja.push(phone=LATE_PAYER_PHONE).get_json()["CheckoutRequestID"]
        first = daraja.query(checkout_id).get_json()
        assert (first["ResultCode"], first["ResultDesc"]) == (
            "1037",
            "DS timeout user cannot be reached",
        )
        now[0] += 59
        assert daraja.query(checkout_id).get_json()["ResultCode"] == "1037"
        now[0] += 2
        paid = daraja.query(checkout_id).get_json()
        assert (paid["ResultCode"], paid["ResultDesc"]) == (
            "0",
            "The service request is processed successfully.",
        )


def test_default_outcome_turns_the_late_payer_into_a_plain_outcome(daraja, state):
    state.set_faults(default_outcome=1032)
    daraja.push(phone=LATE_PAYER_PHONE)
    (txn,) = state.transactions()
    assert (txn.result_code, txn.then_code, txn.then_at, txn.receipt) == (1032, None, None, None)


def test_a_query_checks_credentials_like_a_push(daraja):
    checkout_id = daraja.push().get_json()["CheckoutRequestID"]
    response = daraja.post(
        SimulatorClient.QUERY,
        {**credentials(SANDBOX_SHORTCODE, "wrong-passkey"), "CheckoutRequestID": checkout_id},
    )
    assert_error(response, 500, "500.001.1001", "Wrong credentials")


def test_a_query_without_an_id_is_refused(daraja):
    response = daraja.post(SimulatorClient.QUERY, credentials(SANDBOX_SHORTCODE, SANDBOX_PASSKEY))
    assert_error(response, *invalid("CheckoutRequestID"))


def test_another_shortcodes_transaction_does_not_exist_for_you(daraja):
    checkout_id = daraja.push().get_json()["CheckoutRequestID"]
    response = daraja.query(checkout_id, shortcode="174380", passkey=TILL_PASSKEY)
    assert_error(response, 500, "500.001.1001", "The transaction does not Exist")


def test_a_query_needs_a_token(sim):
    response = sim.post(SimulatorClient.QUERY, json={"CheckoutRequestID": "ws_CO_1"})
    assert_error(response, 404, "404.001.03", "Invalid Access Token")


# Gateway ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/mpesa/stkpush/v9/processrequest"),
        ("GET", "/mpesa/stkpush/v1/processrequest"),
        ("POST", "/oauth/v1/generate"),
        ("GET", "/"),
    ],
)
def test_an_unrouted_path_gets_the_gateway_fault(sim, method, path):
    response = sim.open(path, method=method)
    assert response.status_code == 404
    body = response.get_json()
    expected = sample("gateway_fault_unknown_path.json")
    assert json_shape(body) == json_shape(expected)
    assert (
        body["fault"]["faultstring"]
        == f"Unable to identify proxy for host: default and url: {path}"
    )
    assert body["fault"]["detail"] == expected["fault"]["detail"]


# The record ---------------------------------------------------------------------------------


def test_the_record_keeps_every_request_and_answer_without_the_password(daraja, state, sim):
    sim.get(TOKEN_URL, headers=basic_auth("SimConsumerKey0001PesaTabDemo", "wrong"))
    checkout_id = daraja.push().get_json()["CheckoutRequestID"]
    daraja.query(checkout_id)
    exchanges = state.events("request")
    assert [e["api"] for e in exchanges] == ["oauth", "oauth", "stk_push", "stk_query"]
    refused, issued, push, query = exchanges
    assert (refused["status"], refused["response"]) == (400, None)
    assert (
        issued["args"] == {"grant_type": "client_credentials"}
        and issued["authorization"] == "Basic"
    )
    assert push["path"] == SimulatorClient.PUSH and push["status"] == 200
    assert push["body"]["Password"] == "***" and push["body"]["Amount"] == 450
    assert push["response"]["CheckoutRequestID"] == checkout_id
    assert query["body"]["CheckoutRequestID"] == checkout_id


def test_the_record_keeps_malformed_bodies_as_text(daraja, state):
    daraja.client.post(SimulatorClient.PUSH, data="{oops", content_type="application/json")
    assert state.events("request")[-1]["body"] == "{oops"


def test_control_calls_are_not_recorded(state):
    secret = "query-tests-control-secret-0123"
    sim = create_sim_app(state, control_secret=secret).test_client()
    headers = {CONTROL_HEADER: secret}
    assert sim.get("/_control/record", headers=headers).status_code == 200
    changed = sim.post("/_control/faults", json={"callback_delay": 0}, headers=headers)
    assert changed.status_code == 200
    assert state.events() == []


def test_reset_forgets_transactions_tokens_record_and_faults(daraja, state):
    daraja.push()
    state.set_faults(lock_subscriber=True)
    state.reset()
    assert (state.transactions(), state.events(), state.faults.lock_subscriber) == ([], [], False)
    assert_error(daraja.push(), 404, "404.001.03", "Invalid Access Token")
    assert state.shortcode(SANDBOX_SHORTCODE) is not None


@pytest.mark.parametrize("readme", ["app/simulator/README.md", "README.md"])
def test_the_readme_tables_are_the_code_tables(readme):
    text = (Path(__file__).resolve().parents[1] / readme).read_text()
    assert render_outcome_table() in text
    assert render_faults_table() in text

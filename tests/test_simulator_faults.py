"""Every simulator fault, switched on and off per test without a restart."""

from __future__ import annotations

import json

import pytest

from app.simulator import INSTANT_TIMING, Faults, SimulatorState, create_sim_app
from app.simulator.testing import SimulatorClient, basic_auth
from tests.samples import sample


@pytest.fixture
def state(receiver):
    receiver.clear()
    with SimulatorState(**INSTANT_TIMING) as state:
        yield state


@pytest.fixture
def daraja(state) -> SimulatorClient:
    return SimulatorClient(create_sim_app(state).test_client())


def push(daraja, receiver, **overrides) -> str:
    response = daraja.push(callback_url=receiver.url(), **overrides)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["CheckoutRequestID"]


def assert_daraja_error(response, status: int, sample_name: str) -> None:
    expected = sample(sample_name)
    body = response.get_json()
    assert response.status_code == status
    assert list(body) == list(expected)
    assert (body["errorCode"], body["errorMessage"]) == (
        expected["errorCode"],
        expected["errorMessage"],
    )


def callback_values(call: dict) -> dict:
    items = json.loads(call["raw"])["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    return {item["Name"]: item.get("Value") for item in items}


# Callbacks ----------------------------------------------------------------------------------


def test_callback_lost_never_sends(daraja, state, receiver):
    state.set_faults(callback_lost=True)
    checkout_id = push(daraja, receiver)
    assert not state.wait_for_callbacks(1, timeout=0.2)
    assert receiver.calls() == []
    (dropped,) = state.events("callback_dropped")
    assert dropped["checkout_request_id"] == checkout_id
    assert daraja.query(checkout_id).get_json()["ResultCode"] == "0"


def test_callback_duplicates_sends_the_same_body_n_times(daraja, state, receiver):
    state.set_faults(callback_duplicates=3)
    push(daraja, receiver)
    assert state.wait_for_callbacks(3, timeout=5)
    calls = receiver.calls()
    assert len(calls) == 3 and len({call["raw"] for call in calls}) == 1
    assert [e["attempt"] for e in state.events("callback")] == [1, 2, 3]


def test_callback_delay_makes_the_callback_late(daraja, state, receiver):
    state.set_faults(callback_delay=0.3)
    push(daraja, receiver)
    assert not state.wait_for_callbacks(1, timeout=0.1)
    assert state.wait_for_callbacks(1, timeout=5)


def test_callback_before_response_delivers_before_the_push_is_answered(daraja, state, receiver):
    state.set_faults(callback_before_response=True, decision_delay=60)
    checkout_id = push(daraja, receiver)
    assert len(receiver.calls()) == 1  # no waiting: it was sent inside the push
    kinds = [e["kind"] for e in state.events()]
    assert kinds == ["request", "callback", "request"]  # token, callback, then the push answer
    assert daraja.query(checkout_id).get_json()["ResultCode"] == "0"


def test_amount_in_callback_forges_the_amount(daraja, state, receiver):
    state.set_faults(amount_in_callback=1)
    checkout_id = push(daraja, receiver, amount=450)
    assert state.wait_for_callbacks(1, timeout=5)
    assert callback_values(receiver.calls()[0])["Amount"] == 1
    assert state.transaction(checkout_id).amount == 450


def test_callback_amount_float_sends_a_decimal_amount(daraja, state, receiver):
    state.set_faults(callback_amount_float=True)
    push(daraja, receiver, amount=450)
    assert state.wait_for_callbacks(1, timeout=5)
    (call,) = receiver.calls()
    assert '{"Name": "Amount", "Value": 450.0}' in call["raw"]
    assert isinstance(callback_values(call)["Amount"], float)


def test_callbacks_keep_the_faults_of_their_push(daraja, state, receiver):
    state.set_faults(callback_delay=0.3, callback_duplicates=2)
    push(daraja, receiver)
    state.clear_faults()
    assert state.wait_for_callbacks(2, timeout=5)


# Queries ------------------------------------------------------------------------------------


def test_query_pending_calls_answers_pending_then_the_result(daraja, state, receiver):
    checkout_id = push(daraja, receiver, phone="254711001032")
    state.set_faults(query_pending_calls=2)
    answers = [daraja.query(checkout_id).get_json()["ResultCode"] for _ in range(3)]
    assert answers == ["4999", "4999", "1032"]
    assert state.faults.query_pending_calls == 0


def test_query_pending_calls_uses_the_pending_form(daraja, state, receiver):
    checkout_id = push(daraja, receiver)
    state.set_faults(query_pending_calls=1, query_pending_form="500")
    response = daraja.query(checkout_id)
    assert response.status_code == 500
    assert response.get_json()["errorMessage"] == "The transaction is being processed"
    assert daraja.query(checkout_id).status_code == 200


def test_query_unknown_calls_says_a_valid_id_does_not_exist(daraja, state, receiver):
    checkout_id = push(daraja, receiver)
    state.set_faults(query_unknown_calls=1)
    first = daraja.query(checkout_id)
    assert first.status_code == 500
    assert first.get_json() == {**sample("query_unknown.json"), "requestId": checkout_id}
    assert daraja.query(checkout_id).get_json()["ResultCode"] == "0"


# Gateway and push ---------------------------------------------------------------------------


def test_spike_arrest_refuses_the_next_n_api_calls_but_not_the_token(daraja, state, receiver):
    checkout_id = push(daraja, receiver)
    state.set_faults(spike_arrest_calls=2)
    assert (
        daraja.client.get(
            "/oauth/v1/generate?grant_type=client_credentials", headers=basic_auth()
        ).status_code
        == 200
    )
    assert_daraja_error(
        daraja.push(callback_url=receiver.url()), 500, "stk_push_error_spike_arrest.json"
    )
    assert_daraja_error(daraja.query(checkout_id), 500, "stk_push_error_spike_arrest.json")
    assert daraja.query(checkout_id).status_code == 200
    assert len(state.transactions()) == 1


def test_lock_subscriber_refuses_pushes_until_cleared(daraja, state, receiver):
    state.set_faults(lock_subscriber=True)
    assert_daraja_error(daraja.push(), 500, "stk_push_error_lock_subscriber.json")
    assert state.transactions() == []
    state.clear_faults()
    push(daraja, receiver)


def test_token_ttl_makes_new_tokens_expire_early(daraja, state):
    state.set_faults(token_ttl=0)
    daraja.token(refresh=True)
    assert daraja.push().get_json()["errorCode"] == "404.001.03"


def test_expires_in_still_says_an_hour_when_tokens_expire_early(daraja, state):
    state.set_faults(token_ttl=2)
    body = daraja.client.get(
        "/oauth/v1/generate?grant_type=client_credentials", headers=basic_auth()
    ).get_json()
    assert body["expires_in"] == "3599"


# The faults themselves ----------------------------------------------------------------------


def test_clear_faults_returns_to_the_constructors_baseline(state):
    state.set_faults(callback_lost=True, callback_delay=9)
    assert state.clear_faults() == Faults(**INSTANT_TIMING)


def test_the_demo_defaults():
    defaults = SimulatorState().faults
    assert (defaults.callback_delay, defaults.query_pending_form, defaults.max_amount) == (
        2.0,
        "4999",
        250_000,
    )


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"no_such_fault": True}, TypeError),
        ({"query_pending_form": "404"}, ValueError),
        ({"callback_delay": -1}, ValueError),
        ({"spike_arrest_calls": -1}, ValueError),
        ({"callback_duplicates": 0}, ValueError),
        ({"token_ttl": -5}, ValueError),
        ({"max_amount": 0}, ValueError),
    ],
)
def test_set_faults_refuses_nonsense(state, changes, error):
    with pytest.raises(error):
        state.set_faults(**changes)
    assert state.faults == Faults(**INSTANT_TIMING)


def test_query_pending_form_accepts_a_number(state):
    assert state.set_faults(query_pending_form=500).query_pending_form == "500"


def test_consume_counts_down_and_stops_at_zero(state):
    state.set_faults(query_unknown_calls=2)
    assert [state.consume("query_unknown_calls") for _ in range(3)] == [True, True, False]
    with pytest.raises(ValueError):
        state.consume("callback_lost")

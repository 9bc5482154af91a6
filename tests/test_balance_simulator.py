"""The simulator's Account Balance on its own: Daraja's synchronous acceptance, its validation,
and the result it POSTs (to a receiver playing PesaTab): the shortcode's accounts, 2001 for a
wrong initiator, the queue timeout."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from app.mpesa.balance import read_accounts
from app.mpesa.security import security_credential
from app.simulator import (
    INSTANT_TIMING,
    SANDBOX_SHORTCODE,
    TILL_NUMBER,
    TILL_STORE_NUMBER,
    SimulatorState,
    create_sim_app,
)
from app.simulator import balance as sim_balance
from app.simulator import status as sim_status
from app.simulator.testing import CallbackReceiver, basic_auth

PATH = "/mpesa/accountbalance/v1/query"


@pytest.fixture
def state():
    with SimulatorState(**INSTANT_TIMING) as state:
        yield state


@pytest.fixture
def sim(state):
    client = create_sim_app(state).test_client()
    token = client.get(
        "/oauth/v1/generate?grant_type=client_credentials", headers=basic_auth()
    ).get_json()["access_token"]
    return client, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def receiver():
    with CallbackReceiver() as receiver:
        yield receiver


def received(receiver, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if receiver.calls():
            return receiver.calls()[-1]
        time.sleep(0.02)
    raise AssertionError("no result was POSTed")


def body(state, receiver, **changes):
    pem = sim_status.certificate_pem(state)
    return {
        "Initiator": sim_status.SIM_INITIATOR,
        "SecurityCredential": security_credential(sim_status.SIM_INITIATOR_PASSWORD, pem),
        "CommandID": "AccountBalance",
        "PartyA": SANDBOX_SHORTCODE,
        "IdentifierType": "4",
        "Remarks": "Balance",
        "QueueTimeOutURL": receiver.url("hooks/timeout/abc"),
        "ResultURL": receiver.url("hooks/result/abc"),
        **changes,
    }


def params_of(call: dict) -> dict:
    result = json.loads(call["raw"])["Result"]
    return {p["Key"]: p["Value"] for p in result["ResultParameters"]["ResultParameter"]}


def test_it_accepts_then_posts_the_accounts(sim, state, receiver):
    client, auth = sim
    answer = client.post(PATH, json=body(state, receiver), headers=auth)
    assert answer.status_code == 200
    accepted = answer.get_json()
    assert accepted["ResponseCode"] == "0" and accepted["ConversationID"].startswith("AG_")
    assert set(accepted) == {
        "OriginatorConversationID", "ConversationID", "ResponseCode", "ResponseDescription"
    }  # fmt: skip
    call = received(receiver)
    assert call["path"].endswith("/hooks/result/abc")
    result = json.loads(call["raw"])["Result"]
    assert result["ResultCode"] == 0 and result["ConversationID"] == accepted["ConversationID"]
    params = params_of(call)
    assert set(params) == {"AccountBalance", "BOCompletedTime"}
    assert len(str(params["BOCompletedTime"])) == 14
    accounts = {a.name: a for a in read_accounts(params["AccountBalance"])}
    assert list(accounts) == [
        "Working Account", "Float Account", "Utility Account", "Charges Paid Account",
        "Organization Settlement Account",
    ]  # fmt: skip
    expected = dict(sim_balance.accounts(state, SANDBOX_SHORTCODE))
    assert accounts["Working Account"].available == expected["Working Account"]
    assert accounts["Utility Account"].current == expected["Utility Account"] > 0
    assert accounts["Charges Paid Account"].current < 0
    assert all(a.currency == "KES" for a in accounts.values())
    (event,) = state.events("balance_query")
    assert event == {**event, "shortcode": SANDBOX_SHORTCODE, "valid_initiator": True}


def test_the_figures_are_fixed_per_shortcode_plus_the_money_taken(state):
    before = dict(sim_balance.accounts(state, SANDBOX_SHORTCODE))
    assert before == dict(sim_balance.accounts(state, SANDBOX_SHORTCODE))
    assert before != dict(sim_balance.accounts(state, TILL_STORE_NUMBER))
    state.add_menu_payment({"receipt": "SIMMENU001", "shortcode": SANDBOX_SHORTCODE, "amount": 750})
    state.add_menu_payment({"receipt": "SIMMENU002", "shortcode": TILL_STORE_NUMBER, "amount": 90})
    after = dict(sim_balance.accounts(state, SANDBOX_SHORTCODE))
    assert after["Working Account"] == before["Working Account"] + Decimal(750)
    assert after["Utility Account"] == before["Utility Account"]
    text = sim_balance.balance_text(state, SANDBOX_SHORTCODE)
    assert text.startswith(f"Working Account|KES|{after['Working Account']:.2f}|")


def test_a_till_store_number_is_asked_as_an_organisation(sim, state, receiver):
    client, auth = sim
    answer = client.post(PATH, json=body(state, receiver, PartyA=TILL_STORE_NUMBER), headers=auth)
    assert answer.status_code == 200
    assert read_accounts(params_of(received(receiver))["AccountBalance"])


@pytest.mark.parametrize(
    "changes",
    [
        {"SecurityCredential": "wrong"},  # not base64 of anything the key opens
        {"Initiator": "SomeoneElse"},
    ],
)
def test_wrong_initiator_credentials_are_2001_without_parameters(sim, state, receiver, changes):
    client, auth = sim
    if changes.get("SecurityCredential"):
        pem = sim_status.certificate_pem(state)
        changes = {"SecurityCredential": security_credential("not-the-password", pem)}
    assert client.post(PATH, json=body(state, receiver, **changes), headers=auth).status_code == 200
    result = json.loads(received(receiver)["raw"])["Result"]
    assert result["ResultCode"] == 2001
    assert result["ResultDesc"] == "The initiator information is invalid."
    assert "ResultParameters" not in result
    assert state.events("balance_query")[0]["valid_initiator"] is False


def test_the_queue_timeout_fault_calls_the_timeout_url(sim, state, receiver):
    state.set_faults(balance_queue_timeout=True)
    client, auth = sim
    assert client.post(PATH, json=body(state, receiver), headers=auth).status_code == 200
    call = received(receiver)
    assert call["path"].endswith("/hooks/timeout/abc")
    assert "ResultParameters" not in json.loads(call["raw"])["Result"]


def test_the_status_fault_does_not_touch_the_balance(sim, state, receiver):
    state.set_faults(status_queue_timeout=True)
    client, auth = sim
    client.post(PATH, json=body(state, receiver), headers=auth)
    assert received(receiver)["path"].endswith("/hooks/result/abc")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"CommandID": "TransactionStatusQuery"}, "CommandID"),
        ({"CommandID": None}, "CommandID"),
        ({"IdentifierType": "2", "PartyA": TILL_NUMBER}, "IdentifierType"),
        ({"IdentifierType": "1"}, "IdentifierType"),
        ({"PartyA": "999999"}, "PartyA"),
        ({"PartyA": ""}, "PartyA"),
        ({"PartyA": "17437x"}, "PartyA"),
        ({"ResultURL": "not a url"}, "ResultURL"),
        ({"ResultURL": None}, "ResultURL"),
        ({"QueueTimeOutURL": "ftp://example.com/t"}, "QueueTimeOutURL"),
        ({"Initiator": ""}, "Initiator"),
        ({"Initiator": 7}, "Initiator"),
        ({"SecurityCredential": "  "}, "SecurityCredential"),
        ({"Remarks": "x" * 101}, "Remarks"),
        ({"Remarks": 5}, "Remarks"),
    ],
)
def test_it_refuses_a_bad_request_like_daraja(sim, state, receiver, changes, field):
    client, auth = sim
    sent = {k: v for k, v in body(state, receiver, **changes).items() if v is not None}
    answer = client.post(PATH, json=sent, headers=auth)
    assert answer.status_code == 400
    assert answer.get_json()["errorMessage"] == f"Bad Request - Invalid {field}"
    assert state.events("balance_query") == []
    assert receiver.calls() == []


def test_it_needs_a_token_and_a_json_body(sim, state, receiver):
    client, auth = sim
    assert client.post(PATH, json=body(state, receiver)).status_code == 404  # no token
    bad = client.post(PATH, data="not json", headers={**auth, "Content-Type": "application/json"})
    assert bad.status_code == 400
    assert state.events("balance_query") == []

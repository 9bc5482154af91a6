"""The Daraja simulator's API through Flask's test client: OAuth, STK push.

Every answer is compared with the sample bodies in tests/fixtures/daraja/ (keys, order of list
items and JSON types), so the simulator speaks exactly what the real client must understand.
"""

from __future__ import annotations

import base64
import json
import re
import time

import pytest

from app.simulator import (
    INSTANT_TIMING,
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    TILL_PASSKEY,
    SimulatorState,
    create_sim_app,
)
from app.simulator.ids import eat_timestamp, stk_password
from app.simulator.testing import (
    SimulatorClient,
    basic_auth,
    credentials,
    json_shape,
    stk_push_body,
    till_push_body,
)
from tests.samples import assert_error, invalid, sample

TOKEN_URL = "/oauth/v1/generate?grant_type=client_credentials"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


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


# OAuth -------------------------------------------------------------------------------------


def test_it_issues_a_token_like_daraja(sim):
    response = sim.get(TOKEN_URL, headers=basic_auth())
    assert response.status_code == 200
    body = response.get_json()
    assert json_shape(body) == json_shape(sample("oauth_ok_string_expiry.json"))
    assert body["expires_in"] == "3599"
    assert re.fullmatch(r"[A-Za-z0-9]{28}", body["access_token"])


def test_it_can_answer_expires_in_as_a_number(sim, state):
    state.set_faults(expires_in_number=True)
    body = sim.get(TOKEN_URL, headers=basic_auth()).get_json()
    assert json_shape(body) == json_shape(sample("oauth_ok_number_expiry.json"))
    assert body["expires_in"] == 3599


@pytest.mark.parametrize("query", ["", "?grant_type=password", "?grant_type=CLIENT_CREDENTIALS"])
def test_it_refuses_a_wrong_grant_type(sim, query):
    response = sim.get("/oauth/v1/generate" + query, headers=basic_auth())
    assert_error(response, 400, "400.008.02", sample("oauth_bad_grant.json")["errorMessage"])


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Bearer "
        + base64.b64encode(b"SimConsumerKey0001PesaTabDemo:SimConsumerSecret0001PesaTab").decode(),
    ],
)
def test_it_refuses_a_missing_or_garbled_basic_header(sim, header):
    headers = {} if header is None else {"Authorization": header}
    response = sim.get(TOKEN_URL, headers=headers)
    assert_error(response, 400, "400.008.01", "Invalid Authentication passed")


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("SimConsumerKey0001PesaTabDemo", "wrong-secret"),
        ("unknown-key", "SimConsumerSecret0001PesaTab"),
    ],
)
def test_it_answers_wrong_credentials_with_an_empty_400(sim, key, secret):
    response = sim.get(TOKEN_URL, headers=basic_auth(key, secret))
    assert response.status_code == 400
    assert response.data == b""


def test_it_refuses_an_app_without_the_stk_product(sim, state):
    state.add_app("c2b-only-key", "c2b-only-secret", products=("c2b",))
    response = sim.get(TOKEN_URL, headers=basic_auth("c2b-only-key", "c2b-only-secret"))
    assert response.status_code == 401
    assert "no apiproduct match" in response.get_json()["errorMessage"]


# Bearer tokens -----------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer not-a-token-we-issued"])
def test_it_refuses_a_push_without_a_valid_token(sim, header):
    headers = {} if header is None else {"Authorization": header}
    response = sim.post(SimulatorClient.PUSH, json=stk_push_body(), headers=headers)
    assert_error(response, 404, "404.001.03", "Invalid Access Token")
    assert json_shape(response.get_json()) == json_shape(
        sample("stk_push_error_invalid_token.json")
    )


def test_it_refuses_a_bearer_token_sent_with_another_scheme(sim, daraja):
    response = sim.post(
        SimulatorClient.PUSH,
        json=stk_push_body(),
        headers={"Authorization": f"Token {daraja.token()}"},
    )
    assert_error(response, 404, "404.001.04", "Invalid Authentication passed")


def test_a_token_expires_after_its_lifetime():
    clock = FakeClock()
    with SimulatorState(clock=clock, callback_lost=True, token_ttl=120) as state:
        daraja = SimulatorClient(create_sim_app(state).test_client())
        token = daraja.token()
        assert daraja.push().status_code == 200
        clock.now += 121
        assert_error(daraja.push(), 404, "404.001.03", "Invalid Access Token")
        assert not state.token_valid(token)
        assert daraja.token(refresh=True) != token


def test_tokens_live_an_hour_by_default():
    clock = FakeClock()
    with SimulatorState(clock=clock) as state:
        token = state.issue_token()
        clock.now += 3599
        assert state.token_valid(token)
        clock.now += 1
        assert not state.token_valid(token)


def test_revoking_tokens_invalidates_every_issued_token(daraja, state):
    assert daraja.push().status_code == 200
    state.revoke_tokens()
    assert_error(daraja.push(), 404, "404.001.03", "Invalid Access Token")
    daraja.token(refresh=True)
    assert daraja.push().status_code == 200


# STK push: accepted -------------------------------------------------------------------------


def test_it_accepts_a_paybill_push_like_daraja(daraja, state):
    before = eat_timestamp(time.time())
    response = daraja.push()
    assert response.status_code == 200
    body = response.get_json()
    assert json_shape(body) == json_shape(sample("stk_push_accepted.json"))
    assert list(body) == list(sample("stk_push_accepted.json"))
    assert body["ResponseCode"] == "0"
    assert (
        body["ResponseDescription"]
        == body["CustomerMessage"]
        == "Success. Request accepted for processing"
    )
    match = re.fullmatch(r"ws_CO_(\d{2})(\d{2})(\d{4})(\d{6})\d+", body["CheckoutRequestID"])
    assert match, body["CheckoutRequestID"]
    day, month, year, _clock = match.groups()
    after = eat_timestamp(time.time())
    assert f"{year}{month}{day}" in (before[:8], after[:8])  # the EAT date, not UTC's
    assert state.transaction(body["CheckoutRequestID"]).amount == 450


def test_checkout_ids_and_merchant_ids_are_unique(daraja):
    bodies = [daraja.push().get_json() for _ in range(20)]
    assert len({b["CheckoutRequestID"] for b in bodies}) == 20
    assert len({b["MerchantRequestID"] for b in bodies}) == 20


def test_it_accepts_a_till_push_with_the_store_number(daraja, state):
    response = daraja.push(till_push_body())
    assert response.status_code == 200
    (txn,) = state.transactions()
    assert (txn.shortcode, txn.party_b, txn.result_code) == ("174380", "5123456", 0)


@pytest.mark.parametrize("phone", ["254110123456", "254712345678", "254799999999"])
def test_it_accepts_07xx_and_01xx_numbers(daraja, phone):
    assert daraja.push(phone=phone).status_code == 200


def test_it_accepts_phone_numbers_and_shortcodes_sent_as_json_integers(daraja):
    body = stk_push_body(PartyA=254708374149, PhoneNumber=254708374149, PartyB=174379)
    assert daraja.push(body).status_code == 200


def test_the_maximum_amount_is_a_setting(daraja, state):
    assert daraja.push(amount=250000).status_code == 200
    state.set_faults(max_amount=150000)
    assert_error(daraja.push(amount=150001), *invalid("Amount"))
    assert daraja.push(amount=150000).status_code == 200


# STK push: refused --------------------------------------------------------------------------

STALE = credentials(SANDBOX_SHORTCODE, SANDBOX_PASSKEY, now=time.time() - 3600)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"BusinessShortCode": "1743"}, invalid("BusinessShortCode")),
        ({"BusinessShortCode": None}, invalid("BusinessShortCode")),
        ({"BusinessShortCode": "999999"}, (500, "500.001.1001", "Merchant does not exist")),
        ({"Timestamp": "2026-11-22 14:30"}, invalid("Timestamp")),
        ({"Timestamp": None}, invalid("Timestamp")),
        (STALE, invalid("Timestamp")),
        ({"Password": "bm90IHRoZSBwYXNzd29yZA=="}, (500, "500.001.1001", "Wrong credentials")),
        ({"Password": None}, (500, "500.001.1001", "Wrong credentials")),
        ({"TransactionType": "CustomerPayBill"}, invalid("TransactionType")),
        ({"Amount": 1.5}, invalid("Amount")),
        ({"Amount": 450.0}, invalid("Amount")),
        ({"Amount": "abc"}, invalid("Amount")),
        ({"Amount": "450"}, invalid("Amount")),
        ({"Amount": 0}, invalid("Amount")),
        ({"Amount": 250001}, invalid("Amount")),
        ({"Amount": True}, invalid("Amount")),
        ({"Amount": None}, invalid("Amount")),
        ({"PartyA": "0708374149"}, invalid("PartyA")),
        ({"PartyA": "25470837414"}, invalid("PartyA")),
        ({"PartyB": "till-5123"}, invalid("PartyB")),
        ({"PhoneNumber": "254208374149"}, invalid("PhoneNumber")),
        ({"PhoneNumber": "+254708374149"}, invalid("PhoneNumber")),
        ({"CallBackURL": None}, invalid("CallBackURL")),
        ({"CallBackURL": "ftp://pay.example.co.ke/cb"}, invalid("CallBackURL")),
        ({"CallBackURL": "https://pay.example.co.ke/hooks/stk/a b"}, invalid("CallBackURL")),
        ({"CallBackURL": "pay.example.co.ke/cb"}, invalid("CallBackURL")),
        ({"AccountReference": "A" * 13}, invalid("AccountReference")),
        ({"AccountReference": None}, invalid("AccountReference")),
        ({"TransactionDesc": None}, invalid("Remarks")),
        ({"TransactionDesc": ""}, invalid("Remarks")),
        ({"TransactionDesc": "Bar tab table 4"}, invalid("TransactionDesc")),
    ],
)
def test_it_refuses_a_push_that_breaks_a_rule(daraja, state, overrides, expected):
    response = daraja.push(**overrides)
    assert_error(response, *expected)
    assert state.transactions() == []


def test_a_password_made_with_another_passkey_is_wrong_credentials(daraja):
    timestamp = eat_timestamp(time.time())
    password = stk_password(SANDBOX_SHORTCODE, TILL_PASSKEY, timestamp)
    response = daraja.push(Timestamp=timestamp, Password=password)
    assert_error(
        response,
        500,
        "500.001.1001",
        sample("stk_push_error_wrong_credentials.json")["errorMessage"],
    )


def test_the_invalid_amount_error_matches_the_sample(daraja):
    body = daraja.push(amount=1.5).get_json()
    assert json_shape(body) == json_shape(sample("stk_push_error_invalid_amount.json"))
    assert body["errorMessage"] == sample("stk_push_error_invalid_amount.json")["errorMessage"]


def test_a_push_without_the_json_content_type_blames_the_shortcode(sim, daraja):
    headers = {"Authorization": f"Bearer {daraja.token()}"}
    response = sim.post(
        SimulatorClient.PUSH,
        data=json.dumps(stk_push_body()),
        headers=headers,
        content_type="text/plain",
    )
    assert_error(response, *invalid("BusinessShortCode"))


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", "", '"a string"'])
def test_a_malformed_payload_is_400_002_05(daraja, raw):
    response = daraja.client.post(
        SimulatorClient.PUSH,
        data=raw,
        content_type="application/json",
        headers={"Authorization": f"Bearer {daraja.token()}"},
    )
    assert_error(response, 400, "400.002.05", "Invalid Request Payload")

"""Credentials and secrets: nothing secret in a repr, a log line or an error message."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses

from app.mpesa import (
    Credentials,
    DarajaAuthError,
    DarajaClient,
    DarajaError,
    DarajaOutcomeUnknown,
    DarajaUnavailable,
)

BASE = "https://daraja.test"
OAUTH = f"{BASE}/oauth/v1/generate"
PUSH = f"{BASE}/mpesa/stkpush/v1/processrequest"
TOKEN = "TOKEN-a8f9c2e1d4b7"
NOW = datetime(2026, 11, 22, 11, 30, tzinfo=UTC)
OWNER_CREDS = Credentials(
    environment="production",
    kind="paybill",
    shortcode="888880",
    consumer_key="KEY-7c1e9a3b5d",
    consumer_secret="SECRET-4f6a8b0c2e",
    passkey="PASSKEY-1d3f5b7a9c",
)
PASSWORD = base64.b64encode(b"888880PASSKEY-1d3f5b7a9c20261122143000").decode()
SECRETS = [
    OWNER_CREDS.consumer_key,
    OWNER_CREDS.consumer_secret,
    OWNER_CREDS.passkey,
    TOKEN,
    base64.b64encode(b"KEY-7c1e9a3b5d:SECRET-4f6a8b0c2e").decode(),
    PASSWORD,
]


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.fixture
def daraja() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client() -> DarajaClient:
    return DarajaClient(BASE, sleep=lambda seconds: None, max_retries=0)


def push(client: DarajaClient) -> Any:
    return client.stk_push(OWNER_CREDS, phone="254708374149", amount=100,
                           account_reference="TAB1", description="Bar tab",
                           callback_url="https://pay.example.co.ke/h/1", now=NOW)  # fmt: skip


def test_it_hides_secrets_in_repr_and_str():
    for text in (repr(OWNER_CREDS), str(OWNER_CREDS), f"{OWNER_CREDS}"):
        assert_no_secrets(text)
        assert "888880" in text and "***" in text


def test_it_keys_the_token_cache_on_a_hash():
    key = OWNER_CREDS.cache_key
    assert len(key) == 64
    assert_no_secrets(key)
    assert key == replace(OWNER_CREDS, passkey="other").cache_key
    assert key != replace(OWNER_CREDS, consumer_secret="other").cache_key
    assert key != replace(OWNER_CREDS, environment="sandbox").cache_key


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"environment": "staging"}, "environment"),
        ({"kind": "bank"}, "kind"),
        ({"shortcode": "12 34"}, "short code"),
        ({"shortcode": "12345678"}, "short code"),
        ({"kind": "till"}, "till number"),
        ({"kind": "till", "till_number": "abc"}, "till number"),
    ],
)
def test_it_refuses_credentials_that_cannot_work(fields, message):
    with pytest.raises(ValueError, match=message):
        replace(OWNER_CREDS, **fields)


def test_it_knows_where_a_till_payment_goes():
    till = replace(OWNER_CREDS, kind="till", till_number="5123456")
    assert (till.party_b, till.transaction_type) == ("5123456", "CustomerBuyGoodsOnline")
    assert (OWNER_CREDS.party_b, OWNER_CREDS.transaction_type) == (
        "888880",
        "CustomerPayBillOnline",
    )


def caught_errors(daraja: responses.RequestsMock, client: DarajaClient) -> list[DarajaError]:
    """Provoke one error of every family with these credentials."""
    daraja.get(OAUTH, status=400, json={"errorCode": "400.008.01", "errorMessage": "Bad"})
    daraja.get(OAUTH, json={"access_token": TOKEN, "expires_in": 3599})
    echo = f"Wrong credentials {OWNER_CREDS.passkey} / Bearer {TOKEN} / Password {PASSWORD}"
    daraja.post(PUSH, status=500, json={"errorCode": "500.001.1001", "errorMessage": echo})
    daraja.post(PUSH, body=requests.exceptions.ReadTimeout(f"timed out {TOKEN}"))
    daraja.post(PUSH, body=requests.exceptions.ConnectTimeout())
    errors: list[DarajaError] = []
    for expected in (DarajaAuthError, DarajaError, DarajaOutcomeUnknown, DarajaUnavailable):
        with pytest.raises(expected) as caught:
            push(client)
        errors.append(caught.value)
    return errors


def test_it_never_puts_secrets_in_error_messages(daraja, client):
    errors = caught_errors(daraja, client)

    assert [err.kind for err in errors] == ["auth", "wrong_credentials", "outcome_unknown",
                                            "unavailable"]  # fmt: skip
    for err in errors:
        assert_no_secrets(str(err))
        assert_no_secrets(repr(err))
        assert_no_secrets(" ".join(map(str, err.args)))
    assert errors[1].message == "Wrong credentials *** / Bearer *** / Password ***"


def test_it_sends_the_secrets_only_where_daraja_needs_them(daraja, client):
    daraja.get(OAUTH, json={"access_token": TOKEN, "expires_in": 3599})
    daraja.post(PUSH, json={"CheckoutRequestID": "ws_CO_1", "ResponseCode": "0"})

    push(client)

    token_call, push_call = (call.request for call in daraja.calls)
    assert token_call.headers["Authorization"] == f"Basic {SECRETS[4]}"
    assert token_call.body is None
    assert OWNER_CREDS.passkey not in json.dumps(json.loads(push_call.body))  # only inside Password

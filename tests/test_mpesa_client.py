"""The Daraja client: the push and query it sends, and what it makes of Daraja's answers."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from responses import matchers

from app.mpesa import (
    Credentials,
    DarajaClient,
    DarajaError,
    DarajaOutcomeUnknown,
    InvalidRequest,
    StkPushAccepted,
    StkQueryResult,
    base_url_for,
)
from tests.samples import sample

BASE = "https://daraja.test"
OAUTH = f"{BASE}/oauth/v1/generate"
PUSH = f"{BASE}/mpesa/stkpush/v1/processrequest"
QUERY = f"{BASE}/mpesa/stkpushquery/v1/query"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
CALLBACK = "https://pay.example.co.ke/hooks/stk/Xq3v9LmT0aBcD4eF"
# 14:30:00 in Nairobi, the moment the sample requests were built.
NOW = datetime(2026, 11, 22, 11, 30, tzinfo=UTC)
CHECKOUT_ID = "ws_CO_221120261430001708374149"

PAYBILL = Credentials(
    environment="sandbox",
    kind="paybill",
    shortcode="174379",
    consumer_key="paybill-consumer-key",
    consumer_secret="paybill-consumer-secret",
    passkey=SANDBOX_PASSKEY,
)
TILL = Credentials(
    environment="production",
    kind="till",
    shortcode="7654321",
    consumer_key="till-consumer-key",
    consumer_secret="till-consumer-secret",
    passkey="till-passkey-0123456789",
    till_number="5123456",
)


class Sleeper:
    """Records the back-off delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def daraja():
    """Daraja as `responses` plays it: unmatched calls fail, registered calls must happen."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def client(sleeper: Sleeper) -> DarajaClient:
    return DarajaClient(BASE, sleep=sleeper)


def add_token(daraja: responses.RequestsMock, name: str = "oauth_ok_number_expiry.json") -> None:
    grant = matchers.query_param_matcher({"grant_type": "client_credentials"})
    daraja.get(OAUTH, json=sample(name), match=[grant])


def push(client: DarajaClient, creds: Credentials = PAYBILL, **changes: Any) -> StkPushAccepted:
    fields: dict[str, Any] = {
        "phone": "254708374149",
        "amount": 450,
        "account_reference": "TAB0042",
        "description": "Bar tab",
        "callback_url": CALLBACK,
        "now": NOW,
    }
    return client.stk_push(creds, **(fields | changes))


def sent_json(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


def calls_to(daraja: responses.RequestsMock, url: str) -> list[Any]:
    return [call for call in daraja.calls if call.request.url.split("?")[0] == url]


# -- the push as sent -----------------------------------------------------------------------------


def test_it_sends_the_paybill_push_exactly_as_the_sample(daraja, client):
    add_token(daraja)
    daraja.post(PUSH, json=sample("stk_push_accepted.json"))

    accepted = push(client)

    assert sent_json(daraja.calls[1]) == sample("stk_push_request_paybill.json")
    headers = daraja.calls[1].request.headers
    assert headers["Authorization"] == "Bearer SGWcJPtNtYNPGm6uSYR9yPYrAI3Bm"
    assert headers["Content-Type"] == "application/json"
    assert accepted == StkPushAccepted(
        merchant_request_id="f1e2-4b95-a71d-b30d3cdbb7a7942864",
        checkout_request_id=CHECKOUT_ID,
        response_code="0",
        response_description="Success. Request accepted for processing",
        customer_message="Success. Request accepted for processing",
    )


def test_it_sends_a_till_push_to_the_till_from_the_store_number(daraja, client):
    add_token(daraja)
    daraja.post(PUSH, json=sample("stk_push_accepted.json"))

    push(client, TILL, phone="254110123456")

    body = sent_json(daraja.calls[1])
    expected = sample("stk_push_request_till.json")
    password = base64.b64encode(b"7654321" + TILL.passkey.encode() + b"20261122143000").decode()
    assert body == expected | {"Password": password}


def test_it_stamps_the_push_in_nairobi_time_whatever_the_server_zone(daraja, client):
    add_token(daraja)
    daraja.post(PUSH, json=sample("stk_push_accepted.json"))

    push(client, now=NOW.astimezone(ZoneInfo("America/New_York")))

    body = sent_json(daraja.calls[1])
    assert body["Timestamp"] == "20261122143000"
    decoded = base64.b64decode(body["Password"]).decode()
    assert decoded == "174379" + SANDBOX_PASSKEY + body["Timestamp"]


def test_it_refuses_a_naive_now(daraja, client):
    with pytest.raises(ValueError, match="timezone-aware"):
        push(client, now=datetime(2026, 11, 22, 14, 30))
    assert len(daraja.calls) == 0


def test_it_strips_reference_and_description(daraja, client):
    add_token(daraja)
    daraja.post(PUSH, json=sample("stk_push_accepted.json"))

    push(client, account_reference="  TAB0042 ", description=" Bar tab ")

    body = sent_json(daraja.calls[1])
    assert (body["AccountReference"], body["TransactionDesc"]) == ("TAB0042", "Bar tab")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"amount": 450.0}, "amount", "whole shillings"),
        ({"amount": 450.5}, "amount", "whole shillings"),
        ({"amount": True}, "amount", "whole shillings"),
        ({"amount": "450"}, "amount", "whole shillings"),
        ({"amount": 0}, "amount", "at least KES 1"),
        ({"amount": 250_001}, "amount", "at most KES 250,000"),
        ({"phone": "0708374149"}, "phone", "Kenyan mobile number"),
        ({"phone": "254208374149"}, "phone", "Kenyan mobile number"),
        ({"account_reference": "TAB-0042"}, "account_reference", "1 to 12 letters or digits"),
        ({"account_reference": "ABCDEFGHIJKLM"}, "account_reference", "1 to 12"),
        ({"account_reference": "  "}, "account_reference", "1 to 12"),
        ({"description": ""}, "description", "1 to 13 characters"),
        ({"description": "Bar tab table 4"}, "description", "1 to 13 characters"),
        ({"callback_url": ""}, "callback_url", "missing"),
        ({"callback_url": "https://pay.example.co.ke/hooks/stk/a b"}, "callback_url", "spaces"),
        ({"callback_url": "ftp://pay.example.co.ke/x"}, "callback_url", "https://"),
        ({"callback_url": "https://pay.example.co.ke/mpesa/cb"}, "callback_url", "'mpesa'"),
    ],
)
def test_it_refuses_bad_input_before_calling_daraja(daraja, client, changes, field, message):
    with pytest.raises(InvalidRequest, match=message) as caught:
        push(client, **changes)
    assert caught.value.field == field
    assert len(daraja.calls) == 0


def test_it_wants_https_callbacks_in_production(daraja, client):
    with pytest.raises(InvalidRequest, match="https://"):
        push(client, TILL, callback_url="http://pay.example.co.ke/hooks/stk/abc")
    assert len(daraja.calls) == 0


def test_it_honours_a_lower_maximum_amount(daraja, sleeper):
    client = DarajaClient(BASE, sleep=sleeper, max_amount=150_000)
    with pytest.raises(InvalidRequest, match="at most KES 150,000"):
        push(client, amount=150_001)


def test_it_reads_a_200_that_says_no_as_a_refusal(daraja, client):
    add_token(daraja)
    daraja.post(PUSH, json={"ResponseCode": "1", "ResponseDescription": "Rejected"})

    with pytest.raises(DarajaError) as caught:
        push(client)

    assert type(caught.value) is DarajaError
    assert (caught.value.error_code, caught.value.permanent) == ("1", True)


@pytest.mark.parametrize(
    "answer", [{"body": "<html>OK</html>"}, {"json": {"ResponseCode": "0"}}, {"body": ""}]
)
def test_it_treats_a_garbled_success_as_outcome_unknown(daraja, client, answer):
    add_token(daraja)
    daraja.post(PUSH, status=200, **answer)

    with pytest.raises(DarajaOutcomeUnknown):
        push(client)
    assert len(calls_to(daraja, PUSH)) == 1


# -- STK query ------------------------------------------------------------------------------------


def test_it_sends_the_query_with_the_same_password_rule(daraja, client):
    add_token(daraja)
    daraja.post(QUERY, json=sample("query_finished.json"))

    client.stk_query(PAYBILL, CHECKOUT_ID, now=NOW)

    password = base64.b64encode(f"174379{SANDBOX_PASSKEY}20261122143000".encode()).decode()
    assert sent_json(daraja.calls[1]) == {
        "BusinessShortCode": "174379",
        "Password": password,
        "Timestamp": "20261122143000",
        "CheckoutRequestID": CHECKOUT_ID,
    }


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"status": 200, "json": "query_finished.json"}, ("finished", "1032")),
        ({"status": 200, "json": "query_pending_4999.json"}, ("pending", "4999")),
        ({"status": 500, "json": "query_pending_500.json"}, ("pending", None)),
        ({"status": 500, "json": "query_unknown.json"}, ("no_answer", None)),
    ],
)
def test_it_reads_every_query_answer(daraja, client, sleeper, answer, expected):
    add_token(daraja)
    daraja.post(QUERY, status=answer["status"], json=sample(answer["json"]))

    result = client.stk_query(PAYBILL, CHECKOUT_ID, now=NOW)

    assert (result.state, result.result_code) == expected
    assert result.result_desc
    assert sleeper.delays == []  # pending is not retried in-line: the recovery job polls
    assert len(calls_to(daraja, QUERY)) == 1


@pytest.mark.parametrize(("code", "desc"), [("0", "processed"), (0, "ok"), ("1037", "timeout")])
def test_it_reports_finished_queries_with_string_codes(daraja, client, code, desc):
    add_token(daraja)
    daraja.post(
        QUERY, json=sample("query_finished.json") | {"ResultCode": code, "ResultDesc": desc}
    )

    result = client.stk_query(PAYBILL, CHECKOUT_ID, now=NOW)

    assert result == StkQueryResult("finished", str(code), desc)


def test_it_backs_off_when_the_query_meets_spike_arrest(daraja, client, sleeper):
    add_token(daraja)
    for _ in range(3):
        daraja.post(QUERY, status=500, json=sample("stk_push_error_spike_arrest.json"))

    with pytest.raises(DarajaError) as caught:
        client.stk_query(PAYBILL, CHECKOUT_ID, now=NOW)

    assert (caught.value.kind, caught.value.transient) == ("spike_arrest", True)
    assert sleeper.delays == [0.5, 1.0]


def test_it_raises_quota_on_query_for_the_job_to_wait(daraja, client, sleeper):
    add_token(daraja)
    quota = {"requestId": "1-2-3", "errorCode": "500.003.03", "errorMessage": "Quota Violation"}
    daraja.post(QUERY, status=500, json=quota)

    with pytest.raises(DarajaError) as caught:
        client.stk_query(PAYBILL, CHECKOUT_ID, now=NOW)

    assert (caught.value.kind, caught.value.transient, caught.value.retry_after) == (
        "quota",
        True,
        60.0,
    )
    assert sleeper.delays == []


def test_it_asks_again_when_a_query_times_out(daraja, client, sleeper):
    add_token(daraja)
    daraja.post(QUERY, body=requests.exceptions.ReadTimeout("read timed out"))
    daraja.post(QUERY, json=sample("query_finished.json"))

    result = client.stk_query(PAYBILL, CHECKOUT_ID, now=NOW)

    assert result.result_code == "1032"
    assert sleeper.delays == [0.5]


def test_it_refuses_an_empty_checkout_id(daraja, client):
    with pytest.raises(InvalidRequest):
        client.stk_query(PAYBILL, "  ")


# -- hosts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "override", "expected"),
    [
        ("sandbox", None, "https://sandbox.safaricom.co.ke"),
        ("production", None, "https://api.safaricom.co.ke"),
        ("production", "", "https://api.safaricom.co.ke"),
        ("sandbox", "http://localhost:5000/simulator/", "http://localhost:5000/simulator"),
    ],
)
def test_it_picks_the_host(environment, override, expected):
    assert base_url_for(environment, override) == expected


def test_it_refuses_an_unknown_environment():
    with pytest.raises(ValueError, match="sandbox"):
        base_url_for("staging")


def test_it_reports_requests_to_the_observer(daraja, sleeper):
    events: list[tuple[str, dict[str, Any]]] = []
    client = DarajaClient(BASE, sleep=sleeper, observer=lambda name, **f: events.append((name, f)))
    add_token(daraja)
    daraja.post(PUSH, json=sample("stk_push_accepted.json"))

    push(client)

    names = [(name, f.get("endpoint"), f.get("status"), f.get("ok")) for name, f in events]
    assert names == [
        ("request", "/oauth/v1/generate", 200, None),
        ("token_fetch", None, None, True),
        ("request", "/mpesa/stkpush/v1/processrequest", 200, None),
    ]
    assert all(f["seconds"] >= 0 for name, f in events if name == "request")

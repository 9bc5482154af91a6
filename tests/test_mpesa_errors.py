"""How the client reads Daraja's refusals, and when it dares to ask again."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from app.mpesa import (
    Credentials,
    DarajaAuthError,
    DarajaClient,
    DarajaError,
    DarajaOutcomeUnknown,
    DarajaUnavailable,
    TokenCache,
)
from app.mpesa.classify import classify
from tests.samples import raw

BASE = "https://daraja.test"
OAUTH = f"{BASE}/oauth/v1/generate"
PUSH = f"{BASE}/mpesa/stkpush/v1/processrequest"
NOW = datetime(2026, 11, 22, 11, 30, tzinfo=UTC)
PAYBILL = Credentials(
    environment="sandbox",
    kind="paybill",
    shortcode="174379",
    consumer_key="paybill-consumer-key",
    consumer_secret="paybill-consumer-secret",
    passkey="bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
)
TOKEN = "SGWcJPtNtYNPGm6uSYR9yPYrAI3Bm"


def daraja_error(code: str, message: str) -> bytes:
    return json.dumps({"requestId": "1-2-3", "errorCode": code, "errorMessage": message}).encode()


class Sleeper:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def daraja() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def client(sleeper: Sleeper) -> DarajaClient:
    return DarajaClient(BASE, sleep=sleeper)


def add_token(daraja: responses.RequestsMock) -> None:
    daraja.get(OAUTH, json={"access_token": TOKEN, "expires_in": 3599})


def push(client: DarajaClient) -> Any:
    return client.stk_push(
        PAYBILL,
        phone="254708374149",
        amount=450,
        account_reference="TAB0042",
        description="Bar tab",
        callback_url="https://pay.example.co.ke/hooks/stk/abc",
        now=NOW,
    )


def push_calls(daraja: responses.RequestsMock) -> int:
    return sum(call.request.url == PUSH for call in daraja.calls)


# -- reading every refusal ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind", "code", "transient"),
    [
        (400, raw("stk_push_error_invalid_amount.json"), "invalid_input", "400.002.02", False),
        (404, raw("stk_push_error_invalid_token.json"), "invalid_token", "404.001.03", False),
        (500, raw("stk_push_error_lock_subscriber.json"), "subscriber_locked",
         "500.001.1001", True),
        (500, raw("stk_push_error_spike_arrest.json"), "spike_arrest", "500.003.02", True),
        (500, raw("stk_push_error_wrong_credentials.json"), "wrong_credentials",
         "500.001.1001", False),
        (400, daraja_error("400.002.05", "Invalid Request Payload"), "invalid_input",
         "400.002.05", False),
        (401, daraja_error("401.002.01", "Invalid Access Token"), "invalid_token",
         "401.002.01", False),
        (400, daraja_error("400.003.01", "Invalid Access Token"), "invalid_token",
         "400.003.01", False),
        (404, daraja_error("404.001.04", "Invalid Authentication Header"), "auth",
         "404.001.04", False),
        (500, daraja_error("500.001.1001", "Merchant does not exist"), "merchant_missing",
         "500.001.1001", False),
        (500, daraja_error("500.003.03", "Quota Violation"), "quota", "500.003.03", True),
        (500, daraja_error("500.003.1001", "Internal Server Error"), "internal",
         "500.003.1001", True),
        (500, daraja_error("500.003.02", "System is busy"), "spike_arrest", "500.003.02", True),
        (500, raw("query_pending_500.json"), "processing", "500.001.1001", True),
        (500, raw("query_unknown.json"), "not_found", "500.001.1001", False),
        (500, daraja_error("500.001.1001", "Something new"), "unknown", "500.001.1001", False),
        (400, daraja_error("400.999.99", "New rule"), "unknown", "400.999.99", False),
        (404, raw("gateway_fault_unknown_path.json"), "gateway",
         "messaging.adaptors.http.flow.ApplicationNotFound", False),
    ],
)  # fmt: skip
def test_it_classifies_every_refusal(status, body, kind, code, transient):
    err = classify(status, body)
    assert (err.kind, err.error_code, err.transient, err.http_status) == (
        kind,
        code,
        transient,
        status,
    )
    assert err.message


def test_it_keeps_daraja_details_of_a_refusal():
    err = classify(400, raw("stk_push_error_invalid_amount.json"))
    assert err.request_id == "f1e2-4b95-a71d-b30d3cdbb7a7942865"
    assert err.field == "Amount"
    assert err.message == "Bad Request - Invalid Amount"
    assert err.permanent


def test_it_marks_a_locked_subscriber_for_a_minute_not_an_inline_retry():
    err = classify(500, raw("stk_push_error_lock_subscriber.json"))
    assert (err.retry_after, err.retry_now, err.permanent) == (60.0, False, False)


@pytest.mark.parametrize(
    ("status", "body", "kind", "transient"),
    [
        (502, b"", "gateway", True),
        (503, b"<html><body>Service Unavailable</body></html>", "gateway", True),
        (504, b"upstream timed out", "gateway", True),
        (429, b"", "spike_arrest", True),
        (500, b"<html>Internal Server Error</html>", "unknown", False),
        (400, b"", "unknown", False),
        (400, b"[1, 2]", "unknown", False),
        (400, b'"just a string"', "unknown", False),
        (400, b"null", "unknown", False),
        (400, b'{"unexpected": {"shape": true}}', "unknown", False),
        (400, b'{"fault": "not an object"}', "unknown", False),
        (400, b'{"fault": {"detail": "odd"}}', "gateway", False),
        (500, b"\xff\xfe not utf-8", "unknown", False),
        (500, b"[" * 100_000, "unknown", False),
    ],
)
def test_it_classifies_odd_answers_without_crashing(status, body, kind, transient):
    err = classify(status, body)
    assert (err.kind, err.transient, err.http_status) == (kind, transient, status)


def test_it_tolerates_odd_field_types_in_a_refusal():
    err = classify(500, b'{"errorCode": 500.003, "requestId": 7}')
    assert (err.error_code, err.request_id, err.kind) == ("500.003", "7", "unknown")
    assert err.message == "Daraja refused the request"


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (400, b"", "bad_credentials"),
        (400, daraja_error("400.008.01", "Invalid Authentication passed"), "bad_credentials"),
        (400, raw("oauth_bad_grant.json"), "bad_grant"),
        (401, b'{"fault": {"faultstring": "No API product match found"}}', "product_not_enabled"),
        (401, b"", "bad_credentials"),
        (400, b"<html>nope</html>", "unknown"),
    ],
)
def test_it_says_why_the_token_was_refused(status, body, reason):
    err = classify(status, body, token_endpoint=True)
    assert isinstance(err, DarajaAuthError)
    assert (err.reason, err.kind, err.permanent) == (reason, "auth", True)


# -- retrying only what is safe -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["spike", "internal"])
def test_it_backs_off_and_then_succeeds(daraja, client, sleeper, name):
    busy = {
        "spike": raw("stk_push_error_spike_arrest.json"),
        "internal": daraja_error("500.003.1001", "Internal Server Error"),
    }[name]
    add_token(daraja)
    daraja.post(PUSH, status=500, body=busy)
    daraja.post(PUSH, status=500, body=busy)
    daraja.post(PUSH, json={"CheckoutRequestID": "ws_CO_1", "ResponseCode": "0"})

    assert push(client).checkout_request_id == "ws_CO_1"
    assert sleeper.delays == [0.5, 1.0]
    assert push_calls(daraja) == 3


def test_it_gives_up_after_the_bounded_retries(daraja, client, sleeper):
    add_token(daraja)
    for _ in range(3):
        daraja.post(PUSH, status=500, body=raw("stk_push_error_spike_arrest.json"))

    with pytest.raises(DarajaError) as caught:
        push(client)

    assert (caught.value.kind, caught.value.transient) == ("spike_arrest", True)
    assert sleeper.delays == [0.5, 1.0]
    assert push_calls(daraja) == 3


def test_it_caps_the_back_off(daraja, sleeper):
    client = DarajaClient(BASE, sleep=sleeper, max_retries=5, backoff=1.0, max_backoff=3.0)
    add_token(daraja)
    for _ in range(6):
        daraja.post(PUSH, status=500, body=raw("stk_push_error_spike_arrest.json"))

    with pytest.raises(DarajaError):
        push(client)
    assert sleeper.delays == [1.0, 2.0, 3.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, raw("stk_push_error_invalid_amount.json"), "invalid_input"),
        (500, raw("stk_push_error_lock_subscriber.json"), "subscriber_locked"),
        (500, raw("stk_push_error_wrong_credentials.json"), "wrong_credentials"),
        (500, daraja_error("500.003.03", "Quota Violation"), "quota"),
        (404, daraja_error("404.001.04", "Invalid Authentication Header"), "auth"),
        (404, raw("gateway_fault_unknown_path.json"), "gateway"),
    ],
)
def test_it_does_not_repeat_a_refusal_that_cannot_pass_now(
    daraja, client, sleeper, status, body, kind
):
    add_token(daraja)
    daraja.post(PUSH, status=status, body=body)

    with pytest.raises(DarajaError) as caught:
        push(client)

    assert type(caught.value) is DarajaError
    assert caught.value.kind == kind
    assert push_calls(daraja) == 1
    assert sleeper.delays == []


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("Read timed out."),
        requests.exceptions.ConnectionError(
            ProtocolError("Connection aborted.", ConnectionResetError(104))
        ),
        requests.exceptions.ChunkedEncodingError("Connection broken"),
        requests.exceptions.SSLError("EOF occurred in violation of protocol"),
    ],
)  # fmt: skip
def test_it_never_resends_a_push_that_may_have_arrived(daraja, client, sleeper, failure):
    add_token(daraja)
    daraja.post(PUSH, body=failure)

    with pytest.raises(DarajaOutcomeUnknown) as caught:
        push(client)

    assert push_calls(daraja) == 1
    assert sleeper.delays == []
    assert caught.value.kind == "outcome_unknown"
    assert caught.value.__cause__ is failure


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b"<html>Internal Server Error</html>"),
        (502, b""),
        (504, b'{"fault": {"faultstring": "Gateway Timeout", '
              b'"detail": {"errorcode": "x.GatewayTimeout"}}}'),
    ],
)  # fmt: skip
def test_it_treats_a_proxy_error_after_forwarding_as_outcome_unknown(daraja, client, status, body):
    add_token(daraja)
    daraja.post(PUSH, status=status, body=body)

    with pytest.raises(DarajaOutcomeUnknown):
        push(client)
    assert push_calls(daraja) == 1


def test_it_retries_a_push_the_gateway_refused_as_unavailable(daraja, client, sleeper):
    add_token(daraja)
    daraja.post(PUSH, status=503, body=b"Service Unavailable")
    daraja.post(PUSH, json={"CheckoutRequestID": "ws_CO_1", "ResponseCode": "0"})

    assert push(client).checkout_request_id == "ws_CO_1"
    assert sleeper.delays == [0.5]


def refused_connection() -> requests.exceptions.ConnectionError:
    refused = "Failed to establish a new connection: refused"
    reason = NewConnectionError(None, refused)  # type: ignore[arg-type]
    retries = MaxRetryError(None, PUSH, reason)  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(retries)


@pytest.mark.parametrize("failure", [requests.exceptions.ConnectTimeout, refused_connection])
def test_it_retries_a_push_that_never_left(daraja, client, sleeper, failure):
    add_token(daraja)
    daraja.post(PUSH, body=failure())
    daraja.post(PUSH, body=failure())
    daraja.post(PUSH, json={"CheckoutRequestID": "ws_CO_1", "ResponseCode": "0"})

    assert push(client).checkout_request_id == "ws_CO_1"
    assert sleeper.delays == [0.5, 1.0]


def test_it_reports_daraja_unreachable_after_the_retries(daraja, client, sleeper):
    add_token(daraja)
    for _ in range(3):
        daraja.post(PUSH, body=requests.exceptions.ConnectTimeout())

    with pytest.raises(DarajaUnavailable) as caught:
        push(client)
    assert (caught.value.kind, caught.value.transient) == ("unavailable", True)
    assert push_calls(daraja) == 3


def test_it_does_not_retry_a_base_url_that_cannot_work(sleeper):
    cache = TokenCache()
    cache.get(PAYBILL.cache_key, lambda: (TOKEN, 3599))
    client = DarajaClient("daraja.test", token_cache=cache, sleep=sleeper)

    with pytest.raises(DarajaError, match="DARAJA_BASE_URL") as caught:
        push(client)
    assert (type(caught.value), caught.value.permanent, sleeper.delays) == (DarajaError, True, [])


def test_it_fails_loudly_on_an_unregistered_call(daraja, client):
    """`responses` refuses unmatched calls; the client must surface that, not swallow it."""
    add_token(daraja)

    with pytest.raises(DarajaOutcomeUnknown) as caught:
        push(client)

    assert isinstance(caught.value.__cause__, requests.exceptions.ConnectionError)
    assert "Connection refused by Responses" in str(caught.value.__cause__)


# -- real sockets, to check the before/after-sending line against urllib3 itself ------------------


def seeded_client(port: int, sleeper: Sleeper) -> DarajaClient:
    cache = TokenCache()
    cache.get(PAYBILL.cache_key, lambda: (TOKEN, 3599))
    return DarajaClient(f"http://127.0.0.1:{port}", token_cache=cache, sleep=sleeper,
                        connect_timeout=1, read_timeout=1)  # fmt: skip


def test_it_retries_when_the_port_refuses_the_connection(sleeper):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again on exit: nothing listens there

    with pytest.raises(DarajaUnavailable):
        push(seeded_client(port, sleeper))
    assert sleeper.delays == [0.5, 1.0]


def test_it_does_not_resend_when_the_server_hangs_up_after_reading(sleeper):
    received: list[bytes] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def hang_up() -> None:
            conn, _ = server.accept()
            with conn:
                received.append(conn.recv(65536))

        thread = threading.Thread(target=hang_up)
        thread.start()
        with pytest.raises(DarajaOutcomeUnknown):
            push(seeded_client(server.getsockname()[1], sleeper))
        thread.join(timeout=5)

    assert len(received) == 1 and received[0].startswith(b"POST /mpesa/stkpush")
    assert sleeper.delays == []

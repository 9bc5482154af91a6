"""OAuth tokens: cached per credential set, refreshed before expiry, one refresh at a time."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import responses
from responses import matchers

from app.mpesa import Credentials, DarajaAuthError, DarajaClient, DarajaError, TokenCache
from tests.samples import sample

BASE = "https://daraja.test"
OAUTH = f"{BASE}/oauth/v1/generate"
PUSH = f"{BASE}/mpesa/stkpush/v1/processrequest"
QUERY = f"{BASE}/mpesa/stkpushquery/v1/query"
NOW = datetime(2026, 11, 22, 11, 30, tzinfo=UTC)
ACCEPTED = {"CheckoutRequestID": "ws_CO_1", "MerchantRequestID": "m-1", "ResponseCode": "0"}


def bar_credentials(name: str, environment: str = "sandbox") -> Credentials:
    return Credentials(
        environment=environment,  # type: ignore[arg-type]
        kind="paybill",
        shortcode="174379",
        consumer_key=f"{name}-consumer-key",
        consumer_secret=f"{name}-consumer-secret",
        passkey=f"{name}-passkey",
    )


OTIENOS = bar_credentials("otienos")
WANJIKUS = bar_credentials("wanjikus")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def daraja() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def client(clock: FakeClock) -> DarajaClient:
    return DarajaClient(BASE, clock=clock, sleep=lambda seconds: None)


def token_answer(token: str, expires_in: Any = "3599") -> dict[str, Any]:
    return {"access_token": token, "expires_in": expires_in}


def oauth_calls(daraja: responses.RequestsMock) -> int:
    return sum(call.request.url.startswith(OAUTH) for call in daraja.calls)


def push(client: DarajaClient, creds: Credentials = OTIENOS) -> Any:
    return client.stk_push(creds, phone="254708374149", amount=100, account_reference="TAB1",
                           description="Bar tab", callback_url="https://pay.example.co.ke/h/1",
                           now=NOW)  # fmt: skip


# -- the cache on its own -------------------------------------------------------------------------


def test_it_keeps_a_token_until_the_margin_before_expiry(clock):
    cache = TokenCache(clock=clock)
    fetches = iter([("first", 3599.0), ("second", 3599.0)])

    assert cache.get("bar", lambda: next(fetches)) == "first"
    clock.now += 3599 - 60 - 0.5
    assert cache.get("bar", lambda: next(fetches)) == "first"
    clock.now += 0.5
    assert cache.get("bar", lambda: next(fetches)) == "second"
    assert cache.fetch_count == 2


def test_it_honours_a_custom_margin(clock):
    cache = TokenCache(clock=clock, margin=300)
    cache.get("bar", lambda: ("first", 3600.0))
    clock.now += 3300
    assert cache.peek("bar") is None


def test_it_keeps_one_token_per_key(clock):
    cache = TokenCache(clock=clock)
    assert cache.get("otienos", lambda: ("a", 3599.0)) == "a"
    assert cache.get("wanjikus", lambda: ("b", 3599.0)) == "b"
    assert (cache.peek("otienos"), cache.peek("wanjikus")) == ("a", "b")


def test_it_drops_a_token_only_if_it_is_still_the_same(clock):
    cache = TokenCache(clock=clock)
    cache.get("bar", lambda: ("current", 3599.0))

    assert cache.invalidate("bar", "older") is False
    assert cache.peek("bar") == "current"
    assert cache.invalidate("bar", "current") is True
    assert cache.peek("bar") is None


def test_it_caches_nothing_when_the_fetch_fails(clock):
    cache = TokenCache(clock=clock)

    def fail() -> tuple[str, float]:
        raise DarajaError("down", transient=True)

    with pytest.raises(DarajaError):
        cache.get("bar", fail)
    assert cache.get("bar", lambda: ("later", 3599.0)) == "later"


def test_it_lets_twenty_threads_share_one_fetch():
    cache = TokenCache()
    start = threading.Barrier(20)
    seen: list[str] = []

    def slow_fetch() -> tuple[str, float]:
        time.sleep(0.05)  # long enough for every other thread to pile up behind the lock
        return "shared", 3599.0

    def ask() -> None:
        start.wait()
        seen.append(cache.get("bar", slow_fetch))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert cache.fetch_count == 1
    assert seen == ["shared"] * 20


# -- the client's use of it -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["oauth_ok_string_expiry.json", "oauth_ok_number_expiry.json"])
def test_it_reads_expires_in_as_string_or_number(daraja, client, clock, name):
    daraja.get(OAUTH, json=sample(name))
    daraja.get(OAUTH, json=sample(name))
    expected = sample(name)["access_token"]

    assert client.access_token(OTIENOS) == expected
    clock.now += 3538
    assert client.access_token(OTIENOS) == expected
    assert oauth_calls(daraja) == 1
    clock.now += 1
    client.access_token(OTIENOS)
    assert oauth_calls(daraja) == 2


def test_it_asks_for_a_token_with_basic_auth(daraja, client):
    grant = matchers.query_param_matcher({"grant_type": "client_credentials"})
    daraja.get(OAUTH, json=token_answer("t1"), match=[grant])

    assert client.fetch_token(OTIENOS) == "t1"

    expected = base64.b64encode(b"otienos-consumer-key:otienos-consumer-secret").decode()
    assert daraja.calls[0].request.headers["Authorization"] == f"Basic {expected}"


def test_it_fetches_anew_when_asked_to_check_credentials(daraja, client):
    daraja.get(OAUTH, json=token_answer("t1"))
    daraja.get(OAUTH, json=token_answer("t2"))

    assert client.access_token(OTIENOS) == "t1"
    assert client.fetch_token(OTIENOS) == "t2"
    assert oauth_calls(daraja) == 2


def test_it_keeps_separate_tokens_for_two_bars(daraja, client):
    daraja.get(OAUTH, json=token_answer("otienos-token"))
    daraja.get(OAUTH, json=token_answer("wanjikus-token"))

    assert client.access_token(OTIENOS) == "otienos-token"
    assert client.access_token(WANJIKUS) == "wanjikus-token"
    assert client.access_token(OTIENOS) == "otienos-token"


@pytest.mark.parametrize("expires_in", [None, "soon", -5, float("inf")])
def test_it_assumes_an_hour_when_expires_in_is_odd(daraja, client, clock, expires_in):
    daraja.get(OAUTH, json=token_answer("t1", expires_in))
    client.access_token(OTIENOS)
    clock.now += 3500
    assert client.access_token(OTIENOS) == "t1"
    assert oauth_calls(daraja) == 1


def test_it_refuses_a_token_answer_without_a_token(daraja, client):
    daraja.get(OAUTH, json={"expires_in": "3599"})
    with pytest.raises(DarajaError, match="no access_token"):
        client.access_token(OTIENOS)


def test_it_lets_twenty_threads_share_one_token_request(daraja):
    client = DarajaClient(BASE)

    def slow_token(request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.05)
        return 200, {}, json.dumps(token_answer("shared"))

    daraja.add_callback(responses.GET, OAUTH, callback=slow_token)
    start = threading.Barrier(20)
    seen: list[str] = []

    def ask() -> None:
        start.wait()
        seen.append(client.access_token(OTIENOS))

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert oauth_calls(daraja) == 1
    assert seen == ["shared"] * 20


def test_it_refreshes_a_refused_token_once_and_succeeds(daraja, client):
    daraja.get(OAUTH, json=token_answer("stale"))
    daraja.post(PUSH, status=404, json=sample("stk_push_error_invalid_token.json"))
    daraja.get(OAUTH, json=token_answer("fresh"))
    daraja.post(PUSH, json=ACCEPTED)

    assert push(client).checkout_request_id == "ws_CO_1"

    pushes = [c.request for c in daraja.calls if c.request.url == PUSH]
    assert [p.headers["Authorization"] for p in pushes] == ["Bearer stale", "Bearer fresh"]
    assert client.tokens.peek(OTIENOS.cache_key) == "fresh"


def test_it_gives_up_when_the_fresh_token_is_refused_too(daraja, client):
    daraja.get(OAUTH, json=token_answer("stale"))
    daraja.get(OAUTH, json=token_answer("also-refused"))
    daraja.post(PUSH, status=404, json=sample("stk_push_error_invalid_token.json"))
    daraja.post(PUSH, status=404, json=sample("stk_push_error_invalid_token.json"))

    with pytest.raises(DarajaError) as caught:
        push(client)

    assert caught.value.kind == "invalid_token"
    assert oauth_calls(daraja) == 2
    assert sum(c.request.url == PUSH for c in daraja.calls) == 2


@pytest.mark.parametrize(
    ("status", "code"), [(404, "404.001.03"), (401, "401.002.01"), (400, "400.003.01")]
)
def test_it_refreshes_on_every_invalid_token_code(daraja, client, status, code):
    refused = {"requestId": "1", "errorCode": code, "errorMessage": "Invalid Access Token"}
    daraja.get(OAUTH, json=token_answer("stale"))
    daraja.post(QUERY, status=status, json=refused)
    daraja.get(OAUTH, json=token_answer("fresh"))
    daraja.post(QUERY, json=sample("query_finished.json"))

    assert client.stk_query(OTIENOS, "ws_CO_1", now=NOW).result_code == "1032"


def test_it_sends_no_push_when_the_keys_are_refused(daraja, client):
    daraja.get(OAUTH, status=400, body=b"")

    with pytest.raises(DarajaAuthError) as caught:
        push(client)

    assert caught.value.reason == "bad_credentials"
    assert len(daraja.calls) == 1  # the token request only


def test_it_retries_a_busy_token_endpoint(daraja, client):
    daraja.get(OAUTH, status=503, body=b"")
    daraja.get(OAUTH, json=token_answer("t1"))

    assert client.access_token(OTIENOS) == "t1"


def test_it_reports_token_fetches_to_the_observer(daraja, clock):
    events: list[tuple[str, Any]] = []
    client = DarajaClient(BASE, clock=clock, observer=lambda name, **f: events.append((name, f)))
    daraja.get(OAUTH, status=400, body=b"")
    daraja.get(OAUTH, json=token_answer("t1"))

    with pytest.raises(DarajaAuthError):
        client.access_token(OTIENOS)
    client.access_token(OTIENOS)

    assert [f for name, f in events if name == "token_fetch"] == [{"ok": False}, {"ok": True}]

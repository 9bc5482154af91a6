"""Contract test: the real Daraja client against the simulator, over real HTTP on 127.0.0.1.

The client (`app.mpesa`) and the simulator (`app.simulator`) were written independently from
the team's Daraja reference (daraja.md), so each checks the other. Every documented outcome and
fault runs end to end: `DarajaClient` pushes to the simulator served by `LiveServer`; the
simulator POSTs the callback to a live receiver; `parse_stk_callback` reads the raw body;
`describe` gives PesaTab's status; `stk_query` settles the same CheckoutRequestID.

No test sleeps for a fixed time: the client's back-off sleeps are recorded instead of slept,
and callbacks are awaited with `state.wait_for_callbacks`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask, Response, request

from app.mpesa import (
    Credentials,
    DarajaAuthError,
    DarajaClient,
    DarajaError,
    DarajaOutcomeUnknown,
    StkPushAccepted,
    describe,
    describe_error,
    parse_stk_callback,
)
from app.mpesa import errors as e
from app.mpesa.timestamps import EAT
from app.simulator import (
    INSTANT_TIMING,
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    SIM_CONSUMER_KEY,
    SIM_CONSUMER_SECRET,
    STATE_EXTENSION,
    TILL_NUMBER,
    TILL_PASSKEY,
    TILL_STORE_NUMBER,
    LiveServer,
    SimulatorState,
    create_sim_app,
)
from app.simulator.testing import ACK

AMOUNT = 450
SANDBOX_PHONE = "254708374149"
WAIT = 5.0  # the longest any test waits for something that should come at once
PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
PUSH_ENDPOINT = PUSH_PATH
QUERY_ENDPOINT = "/mpesa/stkpushquery/v1/query"

PAYBILL = Credentials(
    environment="sandbox",
    kind="paybill",
    shortcode=SANDBOX_SHORTCODE,
    consumer_key=SIM_CONSUMER_KEY,
    consumer_secret=SIM_CONSUMER_SECRET,
    passkey=SANDBOX_PASSKEY,
)
TILL = Credentials(
    environment="sandbox",
    kind="till",
    shortcode=TILL_STORE_NUMBER,
    consumer_key=SIM_CONSUMER_KEY,
    consumer_secret=SIM_CONSUMER_SECRET,
    passkey=TILL_PASSKEY,
    till_number=TILL_NUMBER,
)
CREDENTIALS = {"paybill": PAYBILL, "till": TILL}


# A callback receiver that notes arrival times ------------------------------------------------


@dataclass(frozen=True)
class Callback:
    """One POST the receiver got: its path, headers, raw body and arrival (time.monotonic)."""

    path: str
    headers: dict[str, str]
    raw: bytes
    at: float


class Receiver:
    """A live callback endpoint, like `app.simulator.testing.CallbackReceiver`, that also keeps
    each arrival time (to prove ordering) and looks calls up by path (one receiver per module,
    a fresh per-payment path per push, as PesaTab's callback URLs carry a token)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Callback] = []
        hooks = Flask(__name__)
        hooks.add_url_rule("/hooks/<path:token>", "receive", self._receive, methods=["POST"])
        self._server = LiveServer(hooks)

    def _receive(self, token: str) -> Response:
        call = Callback(request.path, dict(request.headers), request.get_data(), time.monotonic())
        with self._lock:
            self._calls.append(call)
        return Response(json.dumps(ACK), mimetype="application/json")

    def new_url(self) -> tuple[str, str]:
        """A fresh callback URL and its path."""
        path = f"/hooks/stk/{uuid.uuid4().hex}"
        return self._server.url + path, path

    def calls(self, path: str) -> list[Callback]:
        """Every POST received on `path` so far."""
        with self._lock:
            return [call for call in self._calls if call.path == path]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def __enter__(self) -> Receiver:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()


class ShiftedClock:
    """The simulator's wall clock, movable forward (to expire tokens without waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


# The client with its sleeps and metrics recorded -----------------------------------------------


@dataclass
class Desk:
    """A DarajaClient whose back-off sleeps and observer events are recorded, not slept."""

    client: DarajaClient
    sleeps: list[float]  # back-off delays the client asked for
    events: list[tuple[float, str, dict[str, Any]]]  # (time.monotonic(), name, fields)

    def requests_to(self, endpoint: str) -> list[tuple[float, dict[str, Any]]]:
        """(time the answer came back, fields) of each HTTP request the client made there."""
        return [
            (at, fields)
            for at, name, fields in self.events
            if name == "request" and fields["endpoint"] == endpoint
        ]

    def retries(self) -> list[dict[str, Any]]:
        return [fields for _, name, fields in self.events if name == "retry"]

    @property
    def token_fetches(self) -> int:
        return self.client.tokens.fetch_count


# Fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def sim_clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture(scope="module")
def sim_state(sim_clock) -> Iterator[SimulatorState]:
    with SimulatorState(clock=sim_clock, **INSTANT_TIMING) as state:
        yield state


@pytest.fixture(scope="module")
def sim_server(sim_state) -> Iterator[LiveServer]:
    with LiveServer(create_sim_app(sim_state)) as server:
        yield server


@pytest.fixture
def state(sim_state, sim_clock, receiver) -> Iterator[SimulatorState]:
    """The module's simulator, fresh: instant timing, no faults, no tokens, empty record."""
    sim_clock.offset = 0.0
    sim_state.reset()
    receiver.clear()
    yield sim_state
    sim_state.close()  # cancel and join the callback threads this test started
    sim_state.reset()


@pytest.fixture
def make_desk() -> Iterator[Callable[..., Desk]]:
    """Build clients for a base URL; their HTTP sessions are closed after the test."""
    sessions: list[requests.Session] = []

    def make(base_url: str, **options: Any) -> Desk:
        session = requests.Session()
        sessions.append(session)
        sleeps: list[float] = []
        events: list[tuple[float, str, dict[str, Any]]] = []

        def observe(name: str, **fields: Any) -> None:
            events.append((time.monotonic(), name, fields))

        options.setdefault("read_timeout", WAIT)
        client = DarajaClient(
            base_url, session=session, sleep=sleeps.append, observer=observe, **options
        )
        return Desk(client, sleeps, events)

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def desk(make_desk, sim_server, state) -> Desk:
    return make_desk(sim_server.url)


# Helpers ------------------------------------------------------------------------------------


def push(
    desk: Desk,
    receiver: Receiver,
    creds: Credentials = PAYBILL,
    *,
    phone: str = SANDBOX_PHONE,
    amount: int = AMOUNT,
) -> tuple[StkPushAccepted, str]:
    """An STK push through the client with a fresh callback URL; returns (accepted, path)."""
    url, path = receiver.new_url()
    accepted = desk.client.stk_push(
        creds,
        phone=phone,
        amount=amount,
        account_reference="TAB0042",
        description="Bar tab",
        callback_url=url,
    )
    return accepted, path


def sim_requests(state: SimulatorState, api: str) -> list[dict[str, Any]]:
    """The simulator's record of requests to one API: `oauth`, `stk_push` or `stk_query`."""
    return [event for event in state.events("request") if event["api"] == api]


def only_callback(state: SimulatorState, receiver: Receiver, path: str) -> Callback:
    """Wait for the simulator's one callback delivery and return what the receiver got."""
    assert state.wait_for_callbacks(1, WAIT), "no callback arrived"
    (call,) = receiver.calls(path)
    return call


def wait_until(condition: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll `condition` until it is truthy (a thread we do not control is finishing)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)
    return result


def assert_paid(call: Callback, accepted_id: str, phone: str, amount: int = AMOUNT) -> None:
    callback = parse_stk_callback(call.raw)
    assert callback.checkout_request_id == accepted_id
    assert (callback.result_code, callback.succeeded) == ("0", True)
    assert callback.amount == amount and type(callback.amount) is int
    assert callback.phone == phone


# Every documented outcome -------------------------------------------------------------------

OUTCOMES = [
    pytest.param(SANDBOX_PHONE, "0", "paid", id="0-sandbox-phone-pays"),
    pytest.param("254110000001", "0", "paid", id="0-01xx-phone-pays"),
    pytest.param("254711000001", "1", "failed", id="1-insufficient"),
    pytest.param("254711000017", "17", "failed", id="17-rule-limited"),
    pytest.param("254711001001", "1001", "failed", id="1001-session-open"),
    pytest.param("254711001019", "1019", "expired", id="1019-expired"),
    pytest.param("254711001025", "1025", "failed", id="1025-not-delivered"),
    pytest.param("254711001032", "1032", "cancelled", id="1032-cancelled"),
    pytest.param("254711001037", "1037", "expired", id="1037-unreachable"),
    pytest.param("254711002001", "2001", "failed", id="2001-wrong-pin"),
    pytest.param("254711008006", "8006", "failed", id="8006-pin-locked"),
    pytest.param("254711000026", "26", "failed", id="26-coded-phone"),
    pytest.param("254711000099", "99", "failed", id="99-undocumented"),
]


@pytest.mark.parametrize("kind", ["paybill", "till"])
@pytest.mark.parametrize(("phone", "code", "status"), OUTCOMES)
def test_each_outcome_end_to_end(desk, receiver, state, kind, phone, code, status):
    creds = CREDENTIALS[kind]
    accepted, path = push(desk, receiver, creds, phone=phone)

    assert accepted.response_code == "0"
    assert accepted.checkout_request_id.startswith("ws_CO_") and accepted.merchant_request_id
    (sent,) = sim_requests(state, "stk_push")
    assert sent["status"] == 200 and sent["content_type"] == "application/json"
    assert sent["authorization"] == "Bearer"
    assert {k: sent["body"][k] for k in ("BusinessShortCode", "PartyB", "TransactionType")} == {
        "BusinessShortCode": creds.shortcode,
        "PartyB": creds.party_b,
        "TransactionType": creds.transaction_type,
    }

    call = only_callback(state, receiver, path)
    assert call.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert call.headers["Businessshortcode"] == creds.shortcode
    callback = parse_stk_callback(call.raw)
    assert callback.checkout_request_id == accepted.checkout_request_id
    assert callback.merchant_request_id == accepted.merchant_request_id
    assert callback.result_code == code
    info = describe(callback.result_code, callback.receipt)
    assert info.status == status
    assert info.known is (code != "99")
    truth = state.transaction(accepted.checkout_request_id)
    if status == "paid":
        assert callback.amount == AMOUNT and type(callback.amount) is int
        assert callback.receipt == truth.receipt and len(callback.receipt) == 10
        assert callback.receipt.isalnum() and callback.receipt.isupper()
        assert callback.phone == phone
        assert callback.transaction_date.utcoffset() == timedelta(hours=3)
        assert callback.transaction_date.strftime("%Y%m%d%H%M%S") == str(truth.transaction_date)
        assert abs(callback.transaction_date - datetime.now(EAT)) < timedelta(minutes=1)
        assert callback.receipt in info.sentence
    else:
        assert (callback.amount, callback.receipt, callback.items) == (None, None, {})

    result = desk.client.stk_query(creds, accepted.checkout_request_id)
    assert (result.state, result.result_code) == ("finished", code)
    assert describe(result.result_code).status == status
    assert desk.token_fetches == 1 and desk.sleeps == []


SETUP_ERRORS = [
    pytest.param(
        dataclasses.replace(PAYBILL, shortcode=TILL_STORE_NUMBER, passkey=TILL_PASSKEY),
        "2028",
        id="2028-paybill-type-on-a-till-store",
    ),
    pytest.param(
        dataclasses.replace(PAYBILL, kind="till", till_number=TILL_NUMBER),
        "2028",
        id="2028-buy-goods-on-a-paybill",
    ),
    pytest.param(
        dataclasses.replace(TILL, till_number="5999999"),
        "SFC_IC0003",
        id="SFC_IC0003-till-not-in-the-store",
    ),
]


@pytest.mark.parametrize(("creds", "code"), SETUP_ERRORS)
def test_a_till_set_up_error_is_accepted_then_fails(desk, receiver, state, creds, code):
    accepted, path = push(desk, receiver, creds)

    callback = parse_stk_callback(only_callback(state, receiver, path).raw)
    assert (callback.checkout_request_id, callback.result_code) == (
        accepted.checkout_request_id,
        code,
    )
    assert callback.amount is None and callback.receipt is None
    info = describe(callback.result_code)
    assert (info.status, info.known, info.setup_error) == ("failed", True, True)
    result = desk.client.stk_query(creds, accepted.checkout_request_id)
    assert (result.state, result.result_code) == ("finished", code)


# Callback faults ----------------------------------------------------------------------------


def test_callback_lost_nothing_arrives_but_the_query_settles(desk, receiver, state):
    state.set_faults(callback_lost=True)
    accepted, path = push(desk, receiver)

    result = desk.client.stk_query(PAYBILL, accepted.checkout_request_id)
    assert (result.state, result.result_code) == ("finished", "0")
    (dropped,) = state.events("callback_dropped")
    assert dropped["checkout_request_id"] == accepted.checkout_request_id
    state.close()  # join any callback thread: there must have been none
    assert state.events("callback") == [] and receiver.calls(path) == []


@pytest.mark.parametrize("copies", [2, 3])
def test_callback_duplicates_arrive_identical(desk, receiver, state, copies):
    state.set_faults(callback_duplicates=copies)
    accepted, path = push(desk, receiver)

    assert state.wait_for_callbacks(copies, WAIT)
    calls = receiver.calls(path)
    assert len(calls) == copies
    assert len({call.raw for call in calls}) == 1
    parsed = [parse_stk_callback(call.raw) for call in calls]
    assert {(cb.checkout_request_id, cb.receipt) for cb in parsed} == {
        (accepted.checkout_request_id, parsed[0].receipt)
    }  # the idempotency keys PesaTab dedupes on
    assert [event["attempt"] for event in state.events("callback")] == list(range(1, copies + 1))
    assert len(state.transactions()) == 1


def test_callback_delay_arrives_after_the_query_settled(desk, receiver, state):
    delay = 0.3
    state.set_faults(callback_delay=delay)
    before_push = time.monotonic()
    accepted, path = push(desk, receiver)

    result = desk.client.stk_query(PAYBILL, accepted.checkout_request_id)
    settled_at = time.monotonic()
    assert (result.state, result.result_code) == ("finished", "0")
    call = only_callback(state, receiver, path)
    assert call.at >= before_push + delay - 0.02  # small allowance for the two clocks
    assert call.at > settled_at  # late: the query had already said how it ended
    assert_paid(call, accepted.checkout_request_id, SANDBOX_PHONE)


def test_callback_before_response_arrives_before_stk_push_returns(desk, receiver, state):
    state.set_faults(callback_before_response=True, decision_delay=5.0)  # resolves at once anyway
    accepted, path = push(desk, receiver)

    calls = receiver.calls(path)  # no waiting: it is already here
    assert len(calls) == 1
    ((answered_at, fields),) = desk.requests_to(PUSH_ENDPOINT)
    assert fields["status"] == 200
    assert calls[0].at < answered_at
    order = [
        event["kind"] if event["kind"] == "callback" else event["api"]
        for event in state.events()
        if event["kind"] == "callback" or event.get("api") == "stk_push"
    ]
    assert order == ["callback", "stk_push"]  # the simulator's record agrees
    assert_paid(calls[0], accepted.checkout_request_id, SANDBOX_PHONE)
    result = desk.client.stk_query(PAYBILL, accepted.checkout_request_id)
    assert (result.state, result.result_code) == ("finished", "0")


def test_callback_amount_float_is_read_as_whole_shillings(desk, receiver, state):
    state.set_faults(callback_amount_float=True)
    accepted, path = push(desk, receiver)

    call = only_callback(state, receiver, path)
    items = json.loads(call.raw)["Body"]["stkCallback"]["CallbackMetadata"]["Item"]
    (sent,) = [item["Value"] for item in items if item["Name"] == "Amount"]
    assert sent == float(AMOUNT) and isinstance(sent, float)
    assert_paid(call, accepted.checkout_request_id, SANDBOX_PHONE)


def test_amount_in_callback_forgery_is_visible_to_the_parser(desk, receiver, state):
    state.set_faults(amount_in_callback=1)
    accepted, path = push(desk, receiver)

    callback = parse_stk_callback(only_callback(state, receiver, path).raw)
    assert callback.succeeded and callback.amount == 1  # what the callback claims...
    assert state.transaction(accepted.checkout_request_id).amount == AMOUNT  # ...not the truth
    assert callback.amount != AMOUNT  # so PesaTab can compare it with what it asked for


# Query faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "pending_code", "pending_status"), [("4999", "4999", 200), ("500", None, 500)]
)
def test_pending_query_answers_read_as_pending_then_finished(
    desk, receiver, state, form, pending_code, pending_status
):
    state.set_faults(query_pending_form=form, query_pending_calls=2)
    accepted, path = push(desk, receiver)
    only_callback(state, receiver, path)  # resolved for real; the query still says pending

    answers = [desk.client.stk_query(PAYBILL, accepted.checkout_request_id) for _ in range(3)]
    assert [(a.state, a.result_code) for a in answers] == [
        ("pending", pending_code),
        ("pending", pending_code),
        ("finished", "0"),
    ]
    assert [r["status"] for r in sim_requests(state, "stk_query")] == [
        pending_status,
        pending_status,
        200,
    ]
    assert desk.sleeps == []  # pending is the caller's to poll later, never retried in-line


@pytest.mark.parametrize("form", ["4999", "500"])
def test_a_slow_customer_reads_as_pending_until_the_decision(desk, receiver, state, form):
    state.set_faults(query_pending_form=form, decision_delay=0.3)
    accepted, path = push(desk, receiver)

    early = desk.client.stk_query(PAYBILL, accepted.checkout_request_id)
    assert early.state == "pending"
    assert_paid(only_callback(state, receiver, path), accepted.checkout_request_id, SANDBOX_PHONE)
    late = desk.client.stk_query(PAYBILL, accepted.checkout_request_id)
    assert (late.state, late.result_code) == ("finished", "0")


def test_query_unknown_reads_as_no_answer_then_finished(desk, receiver, state):
    state.set_faults(query_unknown_calls=1)
    accepted, path = push(desk, receiver)
    only_callback(state, receiver, path)

    first = desk.client.stk_query(PAYBILL, accepted.checkout_request_id)
    second = desk.client.stk_query(PAYBILL, accepted.checkout_request_id)
    assert (first.state, first.result_code) == ("no_answer", None)
    assert (second.state, second.result_code) == ("finished", "0")
    assert desk.sleeps == []


# Gateway faults: spike arrest ---------------------------------------------------------------


def test_spike_arrest_on_push_is_retried_with_back_off(desk, receiver, state):
    state.set_faults(spike_arrest_calls=desk.client.max_retries)
    accepted, path = push(desk, receiver)

    assert desk.sleeps == [0.5, 1.0]
    assert [r["kind"] for r in desk.retries()] == [e.SPIKE_ARREST] * 2
    pushes = sim_requests(state, "stk_push")
    assert [p["status"] for p in pushes] == [500, 500, 200]
    assert [p["response"]["errorCode"] for p in pushes[:2]] == ["500.003.02"] * 2
    assert len(state.transactions()) == 1  # refused pushes prompted nobody
    assert_paid(only_callback(state, receiver, path), accepted.checkout_request_id, SANDBOX_PHONE)


def test_spike_arrest_beyond_max_retries_raises_a_transient_error(desk, receiver, state):
    state.set_faults(spike_arrest_calls=desk.client.max_retries + 1)
    with pytest.raises(DarajaError) as caught:
        push(desk, receiver)

    err = caught.value
    assert not isinstance(err, DarajaOutcomeUnknown)
    assert (err.kind, err.error_code, err.http_status) == (e.SPIKE_ARREST, "500.003.02", 500)
    assert err.transient
    assert desk.sleeps == [0.5, 1.0]
    assert len(sim_requests(state, "stk_push")) == desk.client.max_retries + 1
    assert state.transactions() == []


def test_spike_arrest_on_query_is_retried(desk, receiver, state):
    accepted, path = push(desk, receiver)
    only_callback(state, receiver, path)
    state.set_faults(spike_arrest_calls=1)

    result = desk.client.stk_query(PAYBILL, accepted.checkout_request_id)
    assert (result.state, result.result_code) == ("finished", "0")
    assert desk.sleeps == [0.5]
    assert [q["status"] for q in sim_requests(state, "stk_query")] == [500, 200]


# Tokens -------------------------------------------------------------------------------------


def test_revoked_token_is_refetched_once_and_the_push_succeeds(desk, receiver, state):
    push(desk, receiver)
    assert desk.token_fetches == 1
    state.revoke_tokens()

    accepted, path = push(desk, receiver)
    assert desk.token_fetches == 2
    assert len(sim_requests(state, "oauth")) == 2
    pushes = sim_requests(state, "stk_push")
    assert [p["status"] for p in pushes] == [200, 404, 200]
    assert pushes[1]["response"]["errorCode"] == "404.001.03"
    assert desk.sleeps == []
    assert state.wait_for_callbacks(2, WAIT)
    assert_paid(receiver.calls(path)[0], accepted.checkout_request_id, SANDBOX_PHONE)


def test_short_token_ttl_expiring_on_the_simulator_clock_is_refetched(
    desk, receiver, state, sim_clock
):
    state.set_faults(token_ttl=30)
    push(desk, receiver)
    sim_clock.offset += 31  # the simulator's token died; the client still trusts "3599"

    push(desk, receiver)
    assert desk.token_fetches == 2
    assert [p["status"] for p in sim_requests(state, "stk_push")] == [200, 404, 200]
    assert len(state.transactions()) == 2


def test_a_token_refused_again_after_refetching_is_not_retried_forever(desk, receiver, state):
    state.set_faults(token_ttl=0)  # every token is dead on arrival
    with pytest.raises(DarajaError) as caught:
        push(desk, receiver)

    assert (caught.value.kind, caught.value.error_code) == (e.ACCESS_REFUSED, "404.001.03")
    assert not isinstance(caught.value, DarajaOutcomeUnknown)
    assert desk.token_fetches == 2
    assert [p["status"] for p in sim_requests(state, "stk_push")] == [404, 404]
    assert state.transactions() == []


def test_expires_in_as_a_number_is_accepted(desk, receiver, state):
    state.set_faults(expires_in_number=True)
    accepted, path = push(desk, receiver)

    (oauth,) = sim_requests(state, "oauth")
    assert oauth["response"]["expires_in"] == 3599
    assert_paid(only_callback(state, receiver, path), accepted.checkout_request_id, SANDBOX_PHONE)


def test_wrong_consumer_secret_is_an_auth_error(desk, receiver, state):
    wrong = dataclasses.replace(PAYBILL, consumer_secret="not-the-secret-0001")
    with pytest.raises(DarajaAuthError) as caught:
        push(desk, receiver, wrong)

    err = caught.value
    assert (err.reason, err.http_status) == (e.BAD_CREDENTIALS, 400)
    assert "not-the-secret-0001" not in f"{err} {err!r}"
    (oauth,) = sim_requests(state, "oauth")
    assert (oauth["status"], oauth["response"]) == (400, None)  # Daraja's empty 400
    assert sim_requests(state, "stk_push") == [] and desk.sleeps == []


# Push refusals and timeouts ------------------------------------------------------------------


def test_wrong_passkey_is_a_permanent_wrong_credentials_error(desk, receiver, state):
    wrong = dataclasses.replace(PAYBILL, passkey="0" * 64)
    with pytest.raises(DarajaError) as caught:
        push(desk, receiver, wrong)

    err = caught.value
    assert not isinstance(err, DarajaOutcomeUnknown | DarajaAuthError)
    assert (err.kind, err.error_code, err.http_status) == (e.WRONG_CREDENTIALS, "500.001.1001", 500)
    assert err.permanent
    assert "0" * 64 not in f"{err} {err!r}"
    assert len(sim_requests(state, "stk_push")) == 1 and desk.sleeps == []
    assert state.transactions() == []


def test_lock_subscriber_is_not_retried(desk, receiver, state):
    state.set_faults(lock_subscriber=True)
    with pytest.raises(DarajaError) as caught:
        push(desk, receiver)

    err = caught.value
    assert (err.kind, err.error_code) == (e.SUBSCRIBER_LOCKED, "500.001.1001")
    assert err.transient and not err.retry_now and err.retry_after == 60.0
    assert "minute" in describe_error(err)
    assert len(sim_requests(state, "stk_push")) == 1 and desk.sleeps == []
    assert state.transactions() == [] and state.events("callback") == []


def test_push_read_timeout_is_outcome_unknown_and_never_resent(
    make_desk, sim_server, receiver, state
):
    desk = make_desk(sim_server.url, read_timeout=0.2)
    state.set_faults(push_delay=0.6)  # longer than the client waits; the push still goes through
    with pytest.raises(DarajaOutcomeUnknown) as caught:
        push(desk, receiver)

    assert caught.value.kind == e.OUTCOME_UNKNOWN and not caught.value.retry_now
    assert [f["status"] for _, f in desk.requests_to(PUSH_ENDPOINT)] == [None]
    assert desk.sleeps == [] and desk.retries() == []
    # The simulator records the push when it finally answers: exactly one, never re-sent.
    pushes = wait_until(lambda: sim_requests(state, "stk_push"))
    assert len(pushes) == 1 and pushes[0]["status"] == 200
    (txn,) = state.transactions()
    # The customer was prompted; the payment is settled by the callback and the query.
    assert state.wait_for_callbacks(1, WAIT)
    (call,) = receiver.calls(urlsplit(txn.callback_url).path)
    assert_paid(call, txn.checkout_request_id, SANDBOX_PHONE)
    result = desk.client.stk_query(PAYBILL, txn.checkout_request_id)
    assert (result.state, result.result_code) == ("finished", "0")
    assert len(sim_requests(state, "stk_push")) == 1


# The simulator mounted inside PesaTab --------------------------------------------------------


def test_the_simulator_mounted_in_pesatab_serves_the_client(app, make_desk, receiver):
    sim = app.extensions[STATE_EXTENSION]
    sim.set_faults(**INSTANT_TIMING)
    try:
        with LiveServer(app) as server:
            base = server.url + "/_daraja"
            desk = make_desk(base)
            accepted, path = push(desk, receiver)
            assert sim.wait_for_callbacks(1, WAIT)
            (call,) = receiver.calls(path)
            assert_paid(call, accepted.checkout_request_id, SANDBOX_PHONE)
            result = desk.client.stk_query(PAYBILL, accepted.checkout_request_id)
            assert (result.state, result.result_code) == ("finished", "0")

            # No CSRF token (and no bearer token): the simulator answers, as Daraja would.
            bare = requests.post(base + PUSH_PATH, json={}, timeout=WAIT)
            assert (bare.status_code, bare.headers["Content-Type"]) == (404, "application/json")
            assert bare.json()["errorCode"] == "404.001.03"
            # Control: the rest of PesaTab does refuse a POST without a CSRF token.
            form = requests.post(
                server.url + "/login",
                data={"email": "a@example.com", "password": "x"},
                timeout=WAIT,
            )
            assert form.status_code == 400 and form.headers["Content-Type"].startswith("text/html")
    finally:
        sim.close()

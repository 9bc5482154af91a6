"""Helpers for tests and benchmarks that drive the simulator: request bodies, a callback receiver.

with CallbackReceiver() as receiver:
    body = stk_push_body(callback_url=receiver.url("hooks/stk/abc"))
"""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

from flask import Flask, Response, request
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.simulator import ids
from app.simulator.outcomes import SANDBOX_TEST_PHONE
from app.simulator.server import LiveServer
from app.simulator.state import (
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    SIM_CONSUMER_KEY,
    SIM_CONSUMER_SECRET,
    TILL_NUMBER,
    TILL_PASSKEY,
    TILL_STORE_NUMBER,
)

ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}


def basic_auth(key: str = SIM_CONSUMER_KEY, secret: str = SIM_CONSUMER_SECRET) -> dict[str, str]:
    """The OAuth request's `Authorization: Basic ...` header."""
    encoded = base64.b64encode(f"{key}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def credentials(shortcode: str, passkey: str, now: float | None = None) -> dict[str, str]:
    """BusinessShortCode, Password and Timestamp for `now` (default: the real time)."""
    timestamp = ids.eat_timestamp(time.time() if now is None else now)
    return {
        "BusinessShortCode": shortcode,
        "Password": ids.stk_password(shortcode, passkey, timestamp),
        "Timestamp": timestamp,
    }


def stk_push_body(
    *,
    phone: str = SANDBOX_TEST_PHONE,
    amount: Any = 450,
    callback_url: str = "https://example.com/cb",
    **overrides: Any,
) -> dict[str, Any]:
    """A valid PayBill push to the sandbox shortcode; `overrides` replace or (None) drop fields."""
    body = {
        **credentials(SANDBOX_SHORTCODE, SANDBOX_PASSKEY),
        "TransactionType": "CustomerPayBillOnline",
        "Amount": amount,
        "PartyA": phone,
        "PartyB": SANDBOX_SHORTCODE,
        "PhoneNumber": phone,
        "CallBackURL": callback_url,
        "AccountReference": "TAB0042",
        "TransactionDesc": "Bar tab",
    }
    return _apply(body, overrides)


def till_push_body(**overrides: Any) -> dict[str, Any]:
    """A valid Buy Goods push: the store number as BusinessShortCode, the till as PartyB."""
    till = {
        **credentials(TILL_STORE_NUMBER, TILL_PASSKEY),
        "TransactionType": "CustomerBuyGoodsOnline",
        "PartyB": TILL_NUMBER,
    }
    return stk_push_body(**{**till, **overrides})


def query_body(
    checkout_id: str, shortcode: str = SANDBOX_SHORTCODE, passkey: str = SANDBOX_PASSKEY
) -> dict[str, str]:
    """An STK query body for `checkout_id`."""
    return {**credentials(shortcode, passkey), "CheckoutRequestID": checkout_id}


def _apply(body: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


class CallbackReceiver:
    """A tiny live server that keeps every POST it gets and answers like a good integrator."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self._calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.app = Flask(__name__)
        self.app.add_url_rule("/<path:path>", "receive", self._receive, methods=["POST"])
        self._server = LiveServer(self.app)

    def _receive(self, path: str) -> Response:
        call = {
            "path": "/" + path,
            "headers": dict(request.headers),
            "raw": request.get_data(as_text=True),
        }
        with self._lock:
            self._calls.append(call)
        return Response(json.dumps(ACK), status=self.status, mimetype="application/json")

    def url(self, path: str = "hooks/stk/test-token") -> str:
        """A callback URL on this receiver."""
        return f"{self._server.url}/{path.lstrip('/')}"

    def calls(self) -> list[dict[str, Any]]:
        """Every POST received so far (raw body text and headers)."""
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        """Forget what was received."""
        with self._lock:
            self._calls.clear()

    def __enter__(self) -> CallbackReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop()


class SimulatorClient:
    """Daraja calls through a Flask test client, with the bearer token taken care of."""

    PUSH = "/mpesa/stkpush/v1/processrequest"
    QUERY = "/mpesa/stkpushquery/v1/query"

    def __init__(self, client: FlaskClient, prefix: str = "") -> None:
        self.client = client
        self.prefix = prefix
        self._token: str | None = None

    def token(self, *, refresh: bool = False) -> str:
        """A bearer token for the built-in app (fetched once unless `refresh`)."""
        if self._token is None or refresh:
            url = f"{self.prefix}/oauth/v1/generate?grant_type=client_credentials"
            self._token = self.client.get(url, headers=basic_auth()).get_json()["access_token"]
        return self._token

    def post(self, path: str, body: Any) -> TestResponse:
        """POST JSON to a Daraja path with the bearer token."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        return self.client.post(
            self.prefix + path,
            data=json.dumps(body),
            headers=headers,
            content_type="application/json",
        )

    def push(self, body: dict[str, Any] | None = None, **overrides: Any) -> TestResponse:
        """An STK push: `body`, or `stk_push_body(**overrides)`."""
        return self.post(self.PUSH, body if body is not None else stk_push_body(**overrides))

    def query(self, checkout_id: str, **kwargs: str) -> TestResponse:
        """An STK query for `checkout_id`."""
        return self.post(self.QUERY, query_body(checkout_id, **kwargs))


def json_shape(value: Any) -> Any:
    """The JSON types of `value`, recursively, to compare with Daraja's sample bodies.

    Integers and floats are both "number" (Daraja sends `450` and `450.0`); list order counts.
    """
    if isinstance(value, dict):
        return {key: json_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_shape(item) for item in value]
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else type(value).__name__

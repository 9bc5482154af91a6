"""Checking requests the way Daraja does: gateway (token), payload, credentials, then fields."""

from __future__ import annotations

import hmac
import json
import re
from typing import Any
from urllib.parse import urlsplit

from flask import Request

from app.simulator import errors, ids
from app.simulator.models import PAYBILL_TYPE, TILL_TYPE, PushRequest, Shortcode
from app.simulator.state import SimulatorState

PHONE_RE = re.compile(r"254[17]\d{8}")
TRANSACTION_TYPES = (PAYBILL_TYPE, TILL_TYPE)
ACCOUNT_REFERENCE_MAX = 12
TRANSACTION_DESC_MAX = 13


def check_gateway(state: SimulatorState, request: Request) -> None:
    """Spike arrest first (the gateway counts every call), then the bearer token."""
    if state.consume("spike_arrest_calls"):
        raise errors.spike_arrest()
    header = request.headers.get("Authorization")
    if header is None:
        raise errors.invalid_token()
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer":
        raise errors.invalid_auth_header()
    if not state.token_valid(token.strip()):
        raise errors.invalid_token()


def read_json(request: Request) -> dict[str, Any]:
    """The JSON object body; without the JSON content type Daraja blames the shortcode."""
    if request.mimetype != "application/json":
        raise errors.bad_request("BusinessShortCode")
    try:
        body = json.loads(request.get_data(as_text=True))
    except ValueError:
        raise errors.bad_payload() from None
    if not isinstance(body, dict):
        raise errors.bad_payload()
    return body


def check_credentials(state: SimulatorState, body: dict[str, Any]) -> Shortcode:
    """BusinessShortCode known, Timestamp fresh, Password = base64(shortcode+passkey+timestamp)."""
    number = _digits(body.get("BusinessShortCode"), "BusinessShortCode")
    shortcode = state.shortcode(number)
    if shortcode is None:
        raise errors.merchant_error("Merchant does not exist")
    timestamp = _timestamp(state, body.get("Timestamp"))
    expected = ids.stk_password(shortcode.number, shortcode.passkey, timestamp)
    password = body.get("Password")
    if not isinstance(password, str) or not hmac.compare_digest(password, expected):
        raise errors.merchant_error("Wrong credentials")
    return shortcode


def validate_push(state: SimulatorState, body: dict[str, Any]) -> PushRequest:
    """Every STK push rule; the first broken one raises its Daraja error."""
    shortcode = check_credentials(state, body)
    return PushRequest(
        shortcode=shortcode,
        transaction_type=_transaction_type(body.get("TransactionType")),
        amount=_amount(body.get("Amount"), state.faults.max_amount),
        party_a=_phone(body.get("PartyA"), "PartyA"),
        party_b=_digits(body.get("PartyB"), "PartyB"),
        phone=_phone(body.get("PhoneNumber"), "PhoneNumber"),
        callback_url=_callback_url(body.get("CallBackURL")),
        account_reference=_text(
            body.get("AccountReference"), "AccountReference", ACCOUNT_REFERENCE_MAX
        ),
        transaction_desc=_remarks(body.get("TransactionDesc")),
    )


def checkout_request_id(body: dict[str, Any]) -> str:
    """The query's CheckoutRequestID (any non-empty string)."""
    value = body.get("CheckoutRequestID")
    if not isinstance(value, str) or not value.strip():
        raise errors.bad_request("CheckoutRequestID")
    return value.strip()


def _as_text(value: Any) -> str | None:
    """Strings as they are, JSON integers as their digits (SDKs send both); None otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _digits(value: Any, field: str) -> str:
    text = _as_text(value)
    if text is None or not re.fullmatch(r"\d{5,7}", text):
        raise errors.bad_request(field)
    return text


def _phone(value: Any, field: str) -> str:
    text = _as_text(value)
    if text is None or not PHONE_RE.fullmatch(text):
        raise errors.bad_request(field)
    return text


def _timestamp(state: SimulatorState, value: Any) -> str:
    try:
        moment = ids.parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or abs(moment.timestamp() - state.clock()) > state.faults.timestamp_tolerance:
        raise errors.bad_request("Timestamp")
    return value


def _transaction_type(value: Any) -> str:
    if value not in TRANSACTION_TYPES:
        raise errors.bad_request("TransactionType")
    return value


def _amount(value: Any, maximum: int) -> int:
    """Whole shillings only: a JSON integer, not 1.5, not "450"."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise errors.bad_request("Amount")
    return value


def _callback_url(value: Any) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise errors.bad_request("CallBackURL")
    try:
        parts = urlsplit(value)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise errors.bad_request("CallBackURL")
    return value


def _text(value: Any, field: str, max_length: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise errors.bad_request(field)
    return value


def _remarks(value: Any) -> str:
    """TransactionDesc: Daraja calls it "Remarks" when it is missing."""
    if not isinstance(value, str) or not value:
        raise errors.bad_request("Remarks")
    return _text(value, "TransactionDesc", TRANSACTION_DESC_MAX)

"""STK push and query: checking the inputs, building the bodies, reading the answers.

Pure functions; the HTTP side lives in `client.py`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any, Literal

from app.mpesa.catalogue import normalize_code
from app.mpesa.credentials import Credentials
from app.mpesa.errors import InvalidRequest
from app.mpesa.phone import MSISDN, InvalidPhone

DEFAULT_MAX_AMOUNT = 250_000
PENDING_RESULT_CODE = "4999"
_REFERENCE = re.compile(r"[A-Za-z0-9]{1,12}")
_DESCRIPTION_MAX = 13
# Daraja has refused callback URLs containing these words.
_CALLBACK_FORBIDDEN = ("mpesa", "m-pesa", "safaricom", "exec", "cmd", "sql", "query")

QueryState = Literal["finished", "pending", "no_answer"]


@dataclass(frozen=True)
class StkPushAccepted:
    """Daraja accepted the push: the customer is being prompted. Accepted is not paid."""

    merchant_request_id: str
    checkout_request_id: str
    response_code: str
    response_description: str
    customer_message: str


@dataclass(frozen=True)
class StkQueryResult:
    """Where a push stands: `finished` (with a result code), `pending`, or `no_answer` yet."""

    state: QueryState
    result_code: str | None = None
    result_desc: str = ""


def password(shortcode: str, passkey: str, timestamp: str) -> str:
    """Daraja's Password: base64(BusinessShortCode + Passkey + Timestamp)."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode("ascii")


def check_amount(amount: object, max_amount: int = DEFAULT_MAX_AMOUNT) -> int:
    """Whole shillings from 1 to `max_amount`; bools and floats are refused."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidRequest("The amount must be whole shillings (no cents).", field="amount")
    if amount < 1:
        raise InvalidRequest("The amount must be at least KES 1.", field="amount")
    if amount > max_amount:
        raise InvalidRequest(
            f"M-Pesa takes at most KES {max_amount:,} in one request; split the payment.",
            field="amount",
        )
    return amount


def check_msisdn(phone: str) -> str:
    """A phone already in Daraja's form (use `normalize_phone` on what people type)."""
    if not isinstance(phone, str) or not MSISDN.fullmatch(phone):
        raise InvalidPhone("Enter a Kenyan mobile number like 0712 345 678.")
    return phone


def check_reference(reference: str) -> str:
    """AccountReference: 1 to 12 letters or digits, shown on the customer's prompt."""
    text = reference.strip() if isinstance(reference, str) else ""
    if not _REFERENCE.fullmatch(text):
        raise InvalidRequest(
            "The account reference must be 1 to 12 letters or digits.", field="account_reference"
        )
    return text


def check_description(description: str) -> str:
    """TransactionDesc: 1 to 13 characters (Daraja says "Invalid Remarks" otherwise)."""
    text = description.strip() if isinstance(description, str) else ""
    if not 1 <= len(text) <= _DESCRIPTION_MAX:
        raise InvalidRequest(
            f"The description must be 1 to {_DESCRIPTION_MAX} characters.", field="description"
        )
    return text


def check_callback_url(url: str, environment: str) -> str:
    """An absolute http(s) URL without spaces (https in production) Daraja will accept."""
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise InvalidRequest("The callback URL is missing.", field="callback_url")
    if any(ch.isspace() for ch in text):
        raise InvalidRequest("The callback URL must not contain spaces.", field="callback_url")
    schemes = ("https://",) if environment == "production" else ("https://", "http://")
    if not text.lower().startswith(schemes):
        raise InvalidRequest("The callback URL must start with https://.", field="callback_url")
    for word in _CALLBACK_FORBIDDEN:
        if word in text.lower():
            raise InvalidRequest(
                f"The callback URL must not contain {word!r}; Daraja refuses it.",
                field="callback_url",
            )
    return text


def push_body(
    creds: Credentials,
    *,
    phone: str,
    amount: int,
    reference: str,
    description: str,
    callback_url: str,
    timestamp: str,
) -> dict[str, Any]:
    """The JSON for `/mpesa/stkpush/v1/processrequest` (inputs already checked)."""
    return {
        "BusinessShortCode": creds.shortcode,
        "Password": password(creds.shortcode, creds.passkey, timestamp),
        "Timestamp": timestamp,
        "TransactionType": creds.transaction_type,
        "Amount": amount,
        "PartyA": phone,
        "PartyB": creds.party_b,
        "PhoneNumber": phone,
        "CallBackURL": callback_url,
        "AccountReference": reference,
        "TransactionDesc": description,
    }


def query_body(creds: Credentials, checkout_request_id: str, timestamp: str) -> dict[str, Any]:
    """The JSON for `/mpesa/stkpushquery/v1/query`."""
    return {
        "BusinessShortCode": creds.shortcode,
        "Password": password(creds.shortcode, creds.passkey, timestamp),
        "Timestamp": timestamp,
        "CheckoutRequestID": checkout_request_id,
    }


def read_push_answer(payload: Any) -> StkPushAccepted | None:
    """The accepted push in a 200 answer, or None if the answer is not the expected shape."""
    if not isinstance(payload, dict) or not _text(payload.get("CheckoutRequestID")):
        return None
    return StkPushAccepted(
        merchant_request_id=_text(payload.get("MerchantRequestID")),
        checkout_request_id=_text(payload.get("CheckoutRequestID")),
        response_code=normalize_code(payload.get("ResponseCode")),
        response_description=_text(payload.get("ResponseDescription")),
        customer_message=_text(payload.get("CustomerMessage")),
    )


def read_query_answer(payload: Any) -> StkQueryResult | None:
    """A 200 query answer as a result, or None if it carries no ResultCode."""
    if not isinstance(payload, dict):
        return None
    code = normalize_code(payload.get("ResultCode"))
    if not code:
        return None
    desc = _text(payload.get("ResultDesc"))
    state: QueryState = "pending" if code == PENDING_RESULT_CODE else "finished"
    return StkQueryResult(state, code, desc)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()

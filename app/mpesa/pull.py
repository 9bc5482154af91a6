"""Daraja's Pull Transactions: the request bodies and reading the answers (no Flask, no database).

Register: `POST /pulltransactions/v1/register` `{ShortCode, RequestType: "Pull", NominatedNumber,
CallBackURL}`. Query: `POST /pulltransactions/v1/query` `{ShortCode, StartDate, EndDate,
OffSetValue}`, dates `YYYY-MM-DD HH:MM:SS` in Nairobi time, the last 48 hours only, paged by
the offset (how many records were already read).

Daraja's public page does not spell the answer out. We follow what integrators report (SDK
guides and client code reading `Response`): an envelope `{ResponseRefID, ResponseCode: "1000",
ResponseMessage, Response: [[{...}]]}` whose items are `{transactionId, trxDate (ISO 8601, often
with +03:00), msisdn (masked or hashed), sender, transactiontype, billreference, amount,
organizationname}`. `Response` is read both nested (a list holding the page's list, as most
reports show) and flat, and the register answer's `ResponseStatus` or `ResponseCode` may say
"1000" or "0". The simulator (app/simulator/pull.py) answers in this shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.mpesa import errors as e
from app.mpesa.credentials import Credentials
from app.mpesa.errors import DarajaError, InvalidRequest
from app.mpesa.phone import InvalidPhone, normalize_phone
from app.mpesa.stk import check_callback_url
from app.mpesa.timestamps import EAT

REGISTER_PATH = "/pulltransactions/v1/register"
QUERY_PATH = "/pulltransactions/v1/query"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_WINDOW = timedelta(hours=48)
SUCCESS_CODES = ("1000", "0")


@dataclass(frozen=True)
class PullTransaction:
    """One transaction as Pull reports it; `amount` is the text Daraja sent ("300.00")."""

    transaction_id: str
    paid_at: datetime  # aware
    msisdn: str
    kind: str  # transactiontype, e.g. "c2b-pay-bill-debit"
    bill_reference: str
    amount: str
    sender: str = ""


@dataclass(frozen=True)
class PullPage:
    """One page of a query: the transactions read, and how many records the page held
    (unreadable ones included, so the next offset never re-reads or skips a record)."""

    transactions: tuple[PullTransaction, ...]
    records: int
    unreadable: int = 0


def register_body(creds: Credentials, nominated_number: str, callback_url: str) -> dict[str, str]:
    """The register request; the nominated number is the Safaricom line tied to the shortcode."""
    try:
        number = normalize_phone(nominated_number)
    except InvalidPhone:
        raise InvalidRequest(
            "The nominated number must be a Kenyan mobile number.", field="nominated_number"
        ) from None
    return {
        "ShortCode": creds.shortcode,
        "RequestType": "Pull",
        "NominatedNumber": number,
        "CallBackURL": check_callback_url(callback_url, creds.environment),
    }


def query_body(creds: Credentials, start: datetime, end: datetime, offset: int) -> dict[str, str]:
    """The query request for `start`..`end` (aware datetimes), from record `offset`."""
    for moment in (start, end):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise InvalidRequest("The window's end must come after its start.", field="end")
    if offset < 0:
        raise InvalidRequest("The offset must not be negative.", field="offset")
    return {
        "ShortCode": creds.shortcode,
        "StartDate": start.astimezone(EAT).strftime(DATE_FORMAT),
        "EndDate": end.astimezone(EAT).strftime(DATE_FORMAT),
        "OffSetValue": str(offset),
    }


def _code(payload: dict[str, Any], *keys: str) -> str:
    return next((str(payload[k]).strip() for k in keys if payload.get(k) is not None), "")


def read_register_answer(payload: dict[str, Any]) -> dict[str, Any]:
    """The register answer, or a DarajaError saying why it was refused. "Already registered"
    is success: production registration is once per shortcode."""
    code = _code(payload, "ResponseStatus", "ResponseCode")
    text = _code(payload, "ResponseDescription", "ResponseMessage")
    if code in SUCCESS_CODES or "already registered" in text.lower():
        return payload
    raise DarajaError(text or "Pull registration refused", kind=e.UNKNOWN, error_code=code or None)


def _items(payload: dict[str, Any]) -> list[Any]:
    found = payload.get("Response", payload.get("Transactions"))
    if found is None or found == "":
        return []
    if not isinstance(found, list):
        raise DarajaError("Pull answered a Response that is not a list", kind=e.UNKNOWN)
    if found and all(isinstance(part, list) for part in found):  # nested: [[...], ...]
        return [item for part in found for item in part]
    return found


def read_page(payload: dict[str, Any]) -> PullPage:
    """One page of transactions; a refusal (a code other than 1000/0) raises DarajaError."""
    code = _code(payload, "ResponseCode", "ResponseStatus")
    if code and code not in SUCCESS_CODES:
        message = _code(payload, "ResponseMessage", "ResponseDescription")
        raise DarajaError(message or "Pull query refused", kind=e.UNKNOWN, error_code=code)
    items = _items(payload)
    read = [t for t in (_transaction(item) for item in items) if t is not None]
    return PullPage(tuple(read), records=len(items), unreadable=len(items) - len(read))


def _text(item: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = item.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value).strip()
    return ""


def _transaction(item: Any) -> PullTransaction | None:
    """An item, or None when it lacks an id or a readable date (kept out, counted)."""
    if not isinstance(item, dict):
        return None
    transaction_id = _text(item, "transactionId", "TransactionId", "transactionID").upper()
    try:
        paid_at = _date(_text(item, "trxDate", "TrxDate", "transactionDate"))
    except ValueError:
        return None
    if not transaction_id:
        return None
    return PullTransaction(
        transaction_id=transaction_id,
        paid_at=paid_at,
        msisdn=_text(item, "msisdn", "MSISDN"),
        kind=_text(item, "transactiontype", "transactionType", "TransactionType"),
        bill_reference=_text(item, "billreference", "billReference", "BillRefNumber"),
        amount=_text(item, "amount", "Amount"),
        sender=_text(item, "sender", "Sender"),
    )


def _date(text: str) -> datetime:
    """ISO 8601 (`2026-12-07T10:13:00.000+03:00`, `...Z`) or `YYYY-MM-DD HH:MM:SS`; a date
    without an offset is Nairobi time, as every other Daraja date."""
    if not text:
        raise ValueError("no date")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=EAT)

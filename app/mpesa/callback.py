"""Reading the STK callback Safaricom POSTs to our CallBackURL.

Items are read by name, never by position, and any of them may be missing. Anything that is not
the expected shape raises `MalformedCallback` (a ValueError) with the reason; never a KeyError.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from app.mpesa.catalogue import normalize_code
from app.mpesa.timestamps import parse_daraja_timestamp

# What Daraja's result codes look like: 0, 1032, SFC_IC0003 (and what fits the column).
_CODE = re.compile(r"[A-Z0-9_]{1,16}")


class MalformedCallback(ValueError):
    """The body is not an STK callback we can read; `reason` says what was wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StkCallback:
    """The facts of one STK callback. Amount and receipt are present only on success."""

    merchant_request_id: str | None
    checkout_request_id: str
    result_code: str
    result_desc: str
    amount: int | None = None
    receipt: str | None = None
    transaction_date: datetime | None = None
    phone: str | None = None
    items: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """True when M-Pesa reports the payment as made (ResultCode 0)."""
        return self.result_code == "0"


def parse_stk_callback(body: bytes | str | dict[str, Any]) -> StkCallback:
    """Parse a callback body (raw bytes, text or already-decoded JSON)."""
    stk = _stk_callback(_decode(body))
    items = _items(stk.get("CallbackMetadata"))
    return StkCallback(
        merchant_request_id=_optional_text(stk, "MerchantRequestID"),
        checkout_request_id=_checkout_id(stk),
        result_code=_result_code(stk),
        result_desc=_optional_text(stk, "ResultDesc") or "",
        amount=_amount(items.get("Amount")),
        receipt=_receipt(items.get("MpesaReceiptNumber")),
        transaction_date=_date(items.get("TransactionDate")),
        phone=_phone(items.get("PhoneNumber")),
        items=items,
    )


def _decode(body: bytes | str | dict[str, Any]) -> Any:
    if isinstance(body, dict):
        return body
    if not isinstance(body, bytes | str):
        raise MalformedCallback(f"body must be bytes, text or a dict, not {type(body).__name__}")
    try:
        return json.loads(body)
    except ValueError as exc:  # covers JSONDecodeError and UnicodeDecodeError
        raise MalformedCallback(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise MalformedCallback("body is nested too deeply") from None


def _stk_callback(data: Any) -> dict[str, Any]:
    outer = data.get("Body") if isinstance(data, dict) else None
    if not isinstance(outer, dict):
        raise MalformedCallback("no Body object")
    stk = outer.get("stkCallback")
    if not isinstance(stk, dict):
        raise MalformedCallback("no Body.stkCallback object")
    return stk


def _optional_text(stk: dict[str, Any], name: str) -> str | None:
    value = stk.get(name)
    if value is not None and not isinstance(value, str):
        raise MalformedCallback(f"{name} must be text")
    return value


def _checkout_id(stk: dict[str, Any]) -> str:
    value = _optional_text(stk, "CheckoutRequestID")
    if not value or not value.strip():
        raise MalformedCallback("no CheckoutRequestID")
    if len(value.strip()) > 64:
        raise MalformedCallback("CheckoutRequestID is longer than Daraja's (64 characters)")
    return value.strip()


def _result_code(stk: dict[str, Any]) -> str:
    value = stk.get("ResultCode")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MalformedCallback("no ResultCode (number or text)")
    code = normalize_code(value)
    if not _CODE.fullmatch(code) or (isinstance(value, float) and not value.is_integer()):
        raise MalformedCallback(f"ResultCode is not a code: {value!r}")
    return code


def _items(metadata: Any) -> dict[str, Any]:
    """CallbackMetadata.Item as {Name: Value}; items without a Value (Balance) are skipped."""
    if metadata is None:
        return {}
    raw = metadata.get("Item") if isinstance(metadata, dict) else None
    if not isinstance(raw, list):
        raise MalformedCallback("CallbackMetadata.Item must be a list")
    items: dict[str, Any] = {}
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            raise MalformedCallback("each CallbackMetadata item needs a Name")
        if item.get("Value") is not None:
            items.setdefault(item["Name"], item["Value"])
    return items


def _amount(value: Any) -> int | None:
    """Whole shillings: 450 and 450.00 are 450; 450.5 is not money M-Pesa sends."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MalformedCallback("Amount must be a number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise MalformedCallback(f"Amount is not a number: {value!r}") from None
    if not amount.is_finite() or amount != amount.to_integral_value() or amount <= 0:
        raise MalformedCallback(f"Amount is not a whole number of shillings: {value!r}")
    return int(amount)


_RECEIPT = re.compile(r"[A-Z0-9]{1,20}")


def _receipt(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _RECEIPT.fullmatch(value.strip().upper()):
        raise MalformedCallback("MpesaReceiptNumber must be text: 1 to 20 letters and digits")
    return value.strip().upper()


def _date(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MalformedCallback("TransactionDate must be a yyyyMMddHHmmss number")
    try:
        return parse_daraja_timestamp(value)
    except ValueError:
        raise MalformedCallback(f"TransactionDate is not a date: {value!r}") from None


def _phone(value: Any) -> str | None:
    """As Daraja sent it, as text; production may mask it, so no format is enforced."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MalformedCallback("PhoneNumber must be a number or text")
    return str(value).strip() or None

"""Daraja's clock and identifiers: EAT timestamps, passwords, request ids, receipts.

Kenya has kept UTC+3 without daylight saving since 1942, so a fixed offset is exact and spares
us a tzdata dependency on slim images.
"""

from __future__ import annotations

import base64
import secrets
import string
from datetime import datetime, timedelta, timezone

EAT = timezone(timedelta(hours=3), "EAT")
TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"
_UPPER_ALNUM = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits


def eat_datetime(epoch: float) -> datetime:
    """The moment `epoch` (seconds since 1970) on a Nairobi wall clock."""
    return datetime.fromtimestamp(epoch, EAT)


def eat_timestamp(epoch: float) -> str:
    """Daraja's `yyyyMMddHHmmss` timestamp, in EAT, for `epoch`."""
    return eat_datetime(epoch).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(value: str) -> datetime:
    """Read a `yyyyMMddHHmmss` EAT timestamp; raises ValueError when it is not one."""
    if len(value) != 14 or not value.isdigit():
        raise ValueError(f"not a yyyyMMddHHmmss timestamp: {value!r}")
    return datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=EAT)


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """The STK `Password`: base64(BusinessShortCode + passkey + Timestamp)."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode("ascii")


def _digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def _hex(n: int) -> str:
    return secrets.token_hex(n)[:n]


def new_access_token() -> str:
    """An opaque bearer token shaped like Daraja's (28 letters and digits)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(28))


def new_request_id() -> str:
    """A gateway `requestId` such as `29448-36440128-1`."""
    return f"{10000 + secrets.randbelow(90000)}-{10000000 + secrets.randbelow(90000000)}-1"


def new_merchant_request_id() -> str:
    """A `MerchantRequestID` such as `f1e2-4b95-a71d-b30d3cdbb7a7942864`."""
    return f"{_hex(4)}-{_hex(4)}-{_hex(4)}-{_hex(12)}{_digits(6)}"


def new_checkout_request_id(epoch: float) -> str:
    """`ws_CO_` + the EAT time as ddmmyyyyHHMMSS + ten digits (uniqueness is the caller's job)."""
    return "ws_CO_" + eat_datetime(epoch).strftime("%d%m%Y%H%M%S") + _digits(10)


def new_receipt() -> str:
    """A ten-character M-Pesa receipt such as `UKM4ABC12D`: uppercase letters and digits."""
    first = secrets.choice(string.ascii_uppercase)
    return first + "".join(secrets.choice(_UPPER_ALNUM) for _ in range(9))

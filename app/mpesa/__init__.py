"""Talking to Safaricom's Daraja API: client, errors, result codes, phone numbers, tokens.

Pure Python: no Flask, no database. The domain (`app/payments`) calls this package.
"""

from app.mpesa.callback import MalformedCallback, StkCallback, parse_stk_callback
from app.mpesa.catalogue import ResultInfo, describe, describe_error, normalize_code
from app.mpesa.client import PRODUCTION_URL, SANDBOX_URL, DarajaClient, base_url_for
from app.mpesa.credentials import Credentials
from app.mpesa.errors import (
    DarajaAuthError,
    DarajaError,
    DarajaOutcomeUnknown,
    DarajaUnavailable,
    InvalidRequest,
)
from app.mpesa.phone import InvalidPhone, mask_phone, normalize_phone
from app.mpesa.stk import StkPushAccepted, StkQueryResult
from app.mpesa.timestamps import EAT
from app.mpesa.tokens import TokenCache

__all__ = [
    "EAT",
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "Credentials",
    "DarajaAuthError",
    "DarajaClient",
    "DarajaError",
    "DarajaOutcomeUnknown",
    "DarajaUnavailable",
    "InvalidPhone",
    "InvalidRequest",
    "MalformedCallback",
    "ResultInfo",
    "StkCallback",
    "StkPushAccepted",
    "StkQueryResult",
    "TokenCache",
    "base_url_for",
    "describe",
    "describe_error",
    "mask_phone",
    "normalize_code",
    "normalize_phone",
    "parse_stk_callback",
]

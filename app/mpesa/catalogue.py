"""What Daraja's result codes and refusals mean, in sentences a cashier or owner can act on.

Map on the code, never on Daraja's wording: `ResultDesc` varies (`[STK_CB - ]` prefixes and so on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.enums import PaymentStatus
from app.mpesa import errors as e
from app.mpesa.errors import DarajaAuthError, DarajaError, InvalidRequest

# What a result code leads to: a final status, or PENDING (still processing: not news).
PENDING = "pending"
Status = PaymentStatus | Literal["pending"]

SETTINGS = "the owner must check the M-Pesa settings."


@dataclass(frozen=True)
class ResultInfo:
    """A result code read for people: the payment status it leads to and what to say."""

    code: str
    status: Status
    sentence: str
    known: bool
    setup_error: bool = False
    # A failure that can still turn into money (the customer may pay after it): not final until
    # an STK query a few minutes later still says so (app/payments/ledger.py).
    may_still_pay: bool = False


_SETUP = f"Payment set-up error; {SETTINGS}"

# code -> (status, sentence, setup_error)
_RESULTS: dict[str, tuple[Status, str, bool]] = {
    "1": (PaymentStatus.FAILED, "The customer's M-Pesa balance is too low.", False),
    "2": (PaymentStatus.FAILED, "Amount is outside M-Pesa limits.", False),
    "3": (PaymentStatus.FAILED, "Amount is outside M-Pesa limits.", False),
    "4": (PaymentStatus.FAILED, "The customer has reached their daily M-Pesa limit.", False),
    "8": (
        PaymentStatus.FAILED,
        "This till cannot receive more right now; call the manager.",
        False,
    ),
    "17": (PaymentStatus.FAILED, "Wait two minutes, then send again.", False),
    "26": (PaymentStatus.FAILED, "M-Pesa is busy; send again shortly.", False),
    "1001": (
        PaymentStatus.FAILED,
        "The customer has another M-Pesa prompt open; try again in a minute.",
        False,
    ),
    "1019": (PaymentStatus.EXPIRED, "The request expired; send it again.", False),
    "1025": (PaymentStatus.FAILED, "Could not reach the phone; send again.", False),
    "9999": (PaymentStatus.FAILED, "Could not reach the phone; send again.", False),
    "1031": (PaymentStatus.CANCELLED, "The customer cancelled.", False),
    "1032": (PaymentStatus.CANCELLED, "The customer cancelled.", False),
    "1037": (
        PaymentStatus.EXPIRED,
        "No response from the phone; check it is on and send again.",
        False,
    ),
    "2001": (PaymentStatus.FAILED, "Wrong PIN entered; send again.", False),
    "2028": (PaymentStatus.FAILED, _SETUP, True),
    "SFC_IC0003": (PaymentStatus.FAILED, _SETUP, True),
    "8006": (PaymentStatus.FAILED, "The customer's M-Pesa PIN is locked.", False),
    "4999": (PENDING, "Waiting for the customer…", False),
}

KNOWN_CODES = frozenset({"0", *_RESULTS})

# Codes reported as followed by a success (daraja.md: 1037 "DS timeout" comes while the customer
# may still enter the PIN; the 2026 sandbox answers 1037 by query first, its callback later).
# Not 1019 (the prompt itself expired), 1032 (the customer said no) or 1025/9999 (no prompt).
MAY_STILL_PAY = frozenset({"1037"})
CONFIRMING = (
    "M-Pesa is still confirming this payment: the phone did not answer in time, but the customer "
    "may still pay. PesaTab checks again in a few minutes; do not send it again yet."
)


def normalize_code(code: str | int | float | None) -> str:
    """Daraja's ResultCode as a string: `0`, `"0"` and `0.0` all become `"0"`."""
    if code is None or isinstance(code, bool):
        return ""
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    text = str(code).strip()
    return str(int(text)) if text.isdigit() else text.upper()


def describe(code: str | int | None, receipt: str | None = None) -> ResultInfo:
    """Read a callback's or query's result code; unknown codes are failures flagged unknown."""
    key = normalize_code(code)
    if key == "0":
        sentence = f"Paid. Receipt {receipt}." if receipt else "Paid. The receipt will follow."
        return ResultInfo(key, PaymentStatus.PAID, sentence, known=True)
    if key in _RESULTS:
        status, sentence, setup_error = _RESULTS[key]
        return ResultInfo(
            key,
            status,
            sentence,
            known=True,
            setup_error=setup_error,
            may_still_pay=key in MAY_STILL_PAY,
        )
    shown = key or "missing"
    return ResultInfo(
        key, PaymentStatus.FAILED, f"M-Pesa declined the payment (code {shown}).", known=False
    )


_ERROR_SENTENCES = {
    e.SUBSCRIBER_LOCKED: (
        "The customer has another M-Pesa request in progress; wait a minute and send again."
    ),
    e.WRONG_CREDENTIALS: f"M-Pesa refused this business's passkey or short code; {SETTINGS}",
    e.MERCHANT_MISSING: f"M-Pesa does not know this business short code; {SETTINGS}",
    e.ACCESS_REFUSED: f"M-Pesa refused PesaTab's access token; {SETTINGS}",
    e.AUTH: f"M-Pesa refused PesaTab's sign-in; {SETTINGS}",
    e.SPIKE_ARREST: "M-Pesa is busy; try again in a few seconds.",
    e.QUOTA: "M-Pesa is limiting requests from this business; try again in a minute.",
    e.INTERNAL: "M-Pesa had a problem; try again shortly.",
    e.GATEWAY: "M-Pesa had a problem; try again shortly.",
    e.UNAVAILABLE: "Could not reach M-Pesa; check the internet connection and send again.",
    e.OUTCOME_UNKNOWN: (
        "We could not confirm M-Pesa received the request; PesaTab is checking — "
        "do not send again yet."
    ),
    e.PROCESSING: "M-Pesa is still processing this request; wait before sending again.",
    e.NOT_FOUND: "M-Pesa has no record of this request yet.",
}

_AUTH_SENTENCES = {
    e.BAD_CREDENTIALS: f"M-Pesa refused the consumer key or secret; {SETTINGS}",
    e.PRODUCT_NOT_ENABLED: f"The Daraja app does not have M-Pesa Express enabled; {SETTINGS}",
}

_FIELD_SENTENCES = {
    "amount": "M-Pesa refused the amount; it must be whole shillings within M-Pesa's limits.",
    "phonenumber": "M-Pesa refused the phone number; check it and send again.",
    "partya": "M-Pesa refused the phone number; check it and send again.",
    "partyb": f"M-Pesa refused the till or paybill number; {SETTINGS}",
    "businessshortcode": f"M-Pesa refused the business short code; {SETTINGS}",
}


def describe_error(err: DarajaError | InvalidRequest) -> str:
    """A sentence for a refused or unconfirmed push, for the cashier or the owner."""
    if isinstance(err, InvalidRequest):
        return err.message  # already written for people
    if isinstance(err, DarajaAuthError):
        return _AUTH_SENTENCES.get(err.reason, "M-Pesa refused PesaTab's sign-in; contact support.")
    if err.kind == e.INVALID_INPUT:
        return _invalid_input_sentence(err)
    if err.kind in _ERROR_SENTENCES:
        return _ERROR_SENTENCES[err.kind]
    code = err.error_code or (f"HTTP {err.http_status}" if err.http_status else "none")
    return f"M-Pesa refused the request (code {code}); try again, then contact support."


def _invalid_input_sentence(err: DarajaError) -> str:
    field = (err.field or "").replace(" ", "").lower()
    if field in _FIELD_SENTENCES:
        return _FIELD_SENTENCES[field]
    detail = f" ({err.field})" if err.field else ""
    return f"M-Pesa refused the request as invalid{detail}; contact support."

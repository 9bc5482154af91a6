"""What Daraja's result codes and refusals mean, in sentences a cashier or owner can act on.

Map on the code, never on Daraja's wording: `ResultDesc` varies (`[STK_CB - ]` prefixes and so on).
The sentences are English, stored as they are (Payment.message), and marked `N_` for the
Kiswahili catalogue: app/formats.py `stored_sentence` shows one in the reader's language, with
`read_back` finding the values (a receipt, a code) in those that carry one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from app.enums import PaymentStatus
from app.mpesa import errors as e
from app.mpesa.errors import DarajaAuthError, DarajaError, InvalidRequest

# What a result code leads to: a final status, or PENDING (still processing: not news).
PENDING = "pending"
Status = PaymentStatus | Literal["pending"]


def N_(text: str) -> str:
    """Marks a sentence for the Kiswahili catalogue (app/translations/sw/parts/payments.po)
    without translating it: this package has no Flask. The sentence is stored in English
    (Payment.message) and shown in the reader's language (app/formats.py `stored_sentence`)."""
    return text


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


_SETUP = N_("Payment set-up error; the owner must check the M-Pesa settings.")

# code -> (status, sentence, setup_error)
_RESULTS: dict[str, tuple[Status, str, bool]] = {
    "1": (PaymentStatus.FAILED, N_("The customer's M-Pesa balance is too low."), False),
    "2": (PaymentStatus.FAILED, N_("Amount is outside M-Pesa limits."), False),
    "3": (PaymentStatus.FAILED, N_("Amount is outside M-Pesa limits."), False),
    "4": (PaymentStatus.FAILED, N_("The customer has reached their daily M-Pesa limit."), False),
    "8": (
        PaymentStatus.FAILED,
        N_("This till cannot receive more right now; call the manager."),
        False,
    ),
    "17": (PaymentStatus.FAILED, N_("Wait two minutes, then send again."), False),
    "26": (PaymentStatus.FAILED, N_("M-Pesa is busy; send again shortly."), False),
    "1001": (
        PaymentStatus.FAILED,
        N_("The customer has another M-Pesa prompt open; try again in a minute."),
        False,
    ),
    "1019": (PaymentStatus.EXPIRED, N_("The request expired; send it again."), False),
    "1025": (PaymentStatus.FAILED, N_("Could not reach the phone; send again."), False),
    "9999": (PaymentStatus.FAILED, N_("Could not reach the phone; send again."), False),
    "1031": (PaymentStatus.CANCELLED, N_("The customer cancelled."), False),
    "1032": (PaymentStatus.CANCELLED, N_("The customer cancelled."), False),
    "1037": (
        PaymentStatus.EXPIRED,
        N_("No response from the phone; check it is on and send again."),
        False,
    ),
    "2001": (PaymentStatus.FAILED, N_("Wrong PIN entered; send again."), False),
    "2028": (PaymentStatus.FAILED, _SETUP, True),
    "SFC_IC0003": (PaymentStatus.FAILED, _SETUP, True),
    "8006": (PaymentStatus.FAILED, N_("The customer's M-Pesa PIN is locked."), False),
    "4999": (PENDING, N_("Waiting for the customer…"), False),
}

KNOWN_CODES = frozenset({"0", *_RESULTS})

# Codes reported as followed by a success (daraja.md: 1037 "DS timeout" comes while the customer
# may still enter the PIN; the 2026 sandbox answers 1037 by query first, its callback later).
# Not 1019 (the prompt itself expired), 1032 (the customer said no) or 1025/9999 (no prompt).
MAY_STILL_PAY = frozenset({"1037"})
CONFIRMING = N_(
    "M-Pesa is still confirming this payment: the phone did not answer in time, but the customer "
    "may still pay. PesaTab checks again in a few minutes; do not send it again yet."
)

# Sentences stored with a value in them (a receipt, a code): `read_back` finds which one a
# stored sentence is, so it can be shown in the reader's language with its value.
PAID_WITH_RECEIPT = N_("Paid. Receipt %(receipt)s.")
PAID_FROM_MENU = N_("Paid from the M-Pesa menu. Receipt %(receipt)s.")  # C2B money
DECLINED_WITH_CODE = N_("M-Pesa declined the payment (code %(code)s).")
REFUSED_WITH_CODE = N_(
    "M-Pesa refused the request (code %(code)s); try again, then contact support."
)
INVALID_FIELD = N_("M-Pesa refused the request as invalid (%(field)s); contact support.")
WITH_VALUES = (
    PAID_WITH_RECEIPT, PAID_FROM_MENU, DECLINED_WITH_CODE, REFUSED_WITH_CODE, INVALID_FIELD,
)  # fmt: skip


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
        sentence = (
            PAID_WITH_RECEIPT % {"receipt": receipt}
            if receipt
            else N_("Paid. The receipt will follow.")
        )
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
    return ResultInfo(key, PaymentStatus.FAILED, DECLINED_WITH_CODE % {"code": shown}, known=False)


_ERROR_SENTENCES = {
    e.SUBSCRIBER_LOCKED: N_(
        "The customer has another M-Pesa request in progress; wait a minute and send again."
    ),
    e.WRONG_CREDENTIALS: N_(
        "M-Pesa refused this business's passkey or short code; the owner must check the M-Pesa "
        "settings."
    ),
    e.MERCHANT_MISSING: N_(
        "M-Pesa does not know this business short code; the owner must check the M-Pesa settings."
    ),
    e.ACCESS_REFUSED: N_(
        "M-Pesa refused PesaTab's access token; the owner must check the M-Pesa settings."
    ),
    e.AUTH: N_("M-Pesa refused PesaTab's sign-in; the owner must check the M-Pesa settings."),
    e.SPIKE_ARREST: N_("M-Pesa is busy; try again in a few seconds."),
    e.QUOTA: N_("M-Pesa is limiting requests from this business; try again in a minute."),
    e.INTERNAL: N_("M-Pesa had a problem; try again shortly."),
    e.GATEWAY: N_("M-Pesa had a problem; try again shortly."),
    e.UNAVAILABLE: N_("Could not reach M-Pesa; check the internet connection and send again."),
    e.OUTCOME_UNKNOWN: N_(
        "We could not confirm M-Pesa received the request; PesaTab is checking — "
        "do not send again yet."
    ),
    e.PROCESSING: N_("M-Pesa is still processing this request; wait before sending again."),
    e.NOT_FOUND: N_("M-Pesa has no record of this request yet."),
}

_AUTH_SENTENCES = {
    e.BAD_CREDENTIALS: N_(
        "M-Pesa refused the consumer key or secret; the owner must check the M-Pesa settings."
    ),
    e.PRODUCT_NOT_ENABLED: N_(
        "The Daraja app does not have M-Pesa Express enabled; the owner must check the M-Pesa "
        "settings."
    ),
}

_PHONE_REFUSED = N_("M-Pesa refused the phone number; check it and send again.")
_FIELD_SENTENCES = {
    "amount": N_("M-Pesa refused the amount; it must be whole shillings within M-Pesa's limits."),
    "phonenumber": _PHONE_REFUSED,
    "partya": _PHONE_REFUSED,
    "partyb": N_(
        "M-Pesa refused the till or paybill number; the owner must check the M-Pesa settings."
    ),
    "businessshortcode": N_(
        "M-Pesa refused the business short code; the owner must check the M-Pesa settings."
    ),
}


def describe_error(err: DarajaError | InvalidRequest) -> str:
    """A sentence for a refused or unconfirmed push, for the cashier or the owner."""
    if isinstance(err, InvalidRequest):
        return err.message  # already written for people
    if isinstance(err, DarajaAuthError):
        return _AUTH_SENTENCES.get(
            err.reason, N_("M-Pesa refused PesaTab's sign-in; contact support.")
        )
    if err.kind == e.INVALID_INPUT:
        return _invalid_input_sentence(err)
    if err.kind in _ERROR_SENTENCES:
        return _ERROR_SENTENCES[err.kind]
    code = err.error_code or (f"HTTP {err.http_status}" if err.http_status else "none")
    return REFUSED_WITH_CODE % {"code": code}


def _invalid_input_sentence(err: DarajaError) -> str:
    field = (err.field or "").replace(" ", "").lower()
    if field in _FIELD_SENTENCES:
        return _FIELD_SENTENCES[field]
    if err.field:
        return INVALID_FIELD % {"field": err.field}
    return N_("M-Pesa refused the request as invalid; contact support.")


def _pattern(sentence: str) -> re.Pattern:
    """`sentence` as a regular expression whose groups are its %(name)s values."""
    return re.compile(re.sub(r"%\\\(([a-z_]+)\\\)s", r"(?P<\1>.+)", re.escape(sentence)))


_READ_BACK = tuple((sentence, _pattern(sentence)) for sentence in WITH_VALUES)


def read_back(sentence: str) -> tuple[str, dict[str, str]]:
    """The catalogue sentence a stored one was written from, and its values:
    "Paid. Receipt UKM4ABC12D." -> ("Paid. Receipt %(receipt)s.", {"receipt": "UKM4ABC12D"}).
    A sentence without values (or not this catalogue's) is its own, with none."""
    for template, pattern in _READ_BACK:
        found = pattern.fullmatch(sentence)
        if found:
            return template, found.groupdict()
    return sentence, {}

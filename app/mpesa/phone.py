"""Kenyan mobile numbers in the form Daraja wants (`2547XXXXXXXX` / `2541XXXXXXXX`).

Google's phonenumbers metadata knows the 07xx and 01xx mobile ranges; hand-written regexes are
where others rejected 0110-0117 numbers.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from app.mpesa.errors import InvalidRequest

MSISDN = re.compile(r"254[17]\d{8}")


def N_(text: str) -> str:
    """Marks a sentence for the Kiswahili catalogue (app/i18n.py; this package has no Flask):
    it is translated where it is shown, through the `stored_sentence` filter."""
    return text


EXAMPLE = "0712 345 678"
EMPTY = N_("Enter the customer's phone number.")
LETTERS = N_("A phone number has only digits; enter it like 0712 345 678.")
TOO_SHORT = N_(
    "That number is too short — a Kenyan mobile number has 10 digits, like 0712 345 678."
)
TOO_LONG = N_("That number is too long — a Kenyan mobile number has 10 digits, like 0712 345 678.")
FOREIGN = N_("Only Kenyan mobile numbers (07… or 01…) can receive M-Pesa requests.")
LANDLINE = N_("That looks like a landline; enter a Safaricom mobile number like 0712 345 678.")
NOT_MOBILE = N_("That is not a mobile number; enter a Safaricom mobile number like 0712 345 678.")
NOT_A_NUMBER = N_("That is not a phone number; enter it like 0712 345 678.")

_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_KENYA = 254
_MOBILE_NSN_LENGTH = 9  # 7XXXXXXXX or 1XXXXXXXX after the 0 or +254


class InvalidPhone(InvalidRequest):
    """The text is not a Kenyan mobile number; the message tells the cashier what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="phone")


def normalize_phone(text: str) -> str:
    """Turn what a cashier typed into Daraja's 12-digit form, e.g. `254708374149`.

    Accepts 0708 374 149, +254 708374149, 254708374149, 708374149, 0110123456, (0712) 345678
    and similar. Raises InvalidPhone with a sentence the cashier can act on.
    """
    compact = _compact(text)
    number = _parse(compact)
    nsn = str(number.national_number)
    if number.country_code != _KENYA:
        raise InvalidPhone(FOREIGN)
    if len(nsn) < _MOBILE_NSN_LENGTH:
        raise InvalidPhone(TOO_SHORT)
    if len(nsn) > _MOBILE_NSN_LENGTH:
        raise InvalidPhone(TOO_LONG)
    _check_mobile(number)
    msisdn = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
    if not MSISDN.fullmatch(msisdn):
        raise InvalidPhone(NOT_MOBILE)
    return msisdn


def mask_phone(msisdn: str) -> str:
    """`254708374149` → `2547****149`: enough to recognise, not enough to call."""
    digits = (msisdn or "").strip()
    if len(digits) < 8:
        return "****"
    return f"{digits[:4]}****{digits[-3:]}"


def _compact(text: str) -> str:
    """Strip spacing and punctuation; refuse empty text and letters up front."""
    if not text or not text.strip():
        raise InvalidPhone(EMPTY)
    if any(ch.isalpha() for ch in text):
        raise InvalidPhone(LETTERS)  # phonenumbers would read letters as keypad digits
    compact = re.sub(r"[\s().\-/]", "", text.strip())
    if compact.startswith("00"):  # international prefix typed the European way
        compact = "+" + compact[2:]
    return compact


def _parse(compact: str) -> phonenumbers.PhoneNumber:
    try:
        return phonenumbers.parse(compact, "KE")
    except NumberParseException as exc:
        raise InvalidPhone(_PARSE_MESSAGES.get(exc.error_type, NOT_A_NUMBER)) from None


_PARSE_MESSAGES = {
    NumberParseException.INVALID_COUNTRY_CODE: FOREIGN,
    NumberParseException.TOO_SHORT_AFTER_IDD: TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: TOO_SHORT,
    NumberParseException.TOO_LONG: TOO_LONG,
}


def _check_mobile(number: phonenumbers.PhoneNumber) -> None:
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.FIXED_LINE:
        raise InvalidPhone(LANDLINE)
    if kind not in _MOBILE_TYPES or not phonenumbers.is_valid_number(number):
        raise InvalidPhone(NOT_MOBILE)

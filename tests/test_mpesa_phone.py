"""Phone numbers as cashiers type them, and the sentences they read when one is wrong."""

from __future__ import annotations

import pytest

from app.mpesa import InvalidPhone, InvalidRequest, mask_phone, normalize_phone
from app.mpesa.phone import EMPTY, FOREIGN, LANDLINE, LETTERS, NOT_MOBILE, TOO_LONG, TOO_SHORT


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("0708 374 149", "254708374149"),
        ("+254 708374149", "254708374149"),
        ("254708374149", "254708374149"),
        ("708374149", "254708374149"),
        ("  0708374149  ", "254708374149"),
        ("(0712) 345678", "254712345678"),
        ("0712-345-678", "254712345678"),
        ("0712.345.678", "254712345678"),
        ("00254 712 345 678", "254712345678"),
        ("+2540712345678", "254712345678"),
        ("0110123456", "254110123456"),
        ("+254-110-123-456", "254110123456"),
        ("0115 987 654", "254115987654"),
        ("0100 123 456", "254100123456"),
        ("0730 123 456", "254730123456"),
    ],
)
def test_it_accepts_the_ways_cashiers_type_numbers(typed, expected):
    assert normalize_phone(typed) == expected


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", EMPTY),
        ("   ", EMPTY),
        ("020 2222222", LANDLINE),
        ("+254 20 2222222", LANDLINE),
        ("+255 712 345 678", FOREIGN),
        ("00255 712 345 678", FOREIGN),
        ("+1 202 555 0100", FOREIGN),
        ("0712 345", TOO_SHORT),
        ("0712 345 67", TOO_SHORT),
        ("12345", TOO_SHORT),
        ("+254712", TOO_SHORT),
        ("0712 345 6789", TOO_LONG),
        ("254 712 345 678 9", TOO_LONG),
        ("0712abc678", LETTERS),
        ("O712345678", LETTERS),
        ("0800 720 000", NOT_MOBILE),
        ("+", "not a phone number"),
        ("---", "not a phone number"),
    ],
)
def test_it_tells_the_cashier_what_is_wrong(typed, message):
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone(typed)
    assert message in str(caught.value)


def test_it_writes_the_messages_for_people():
    assert EMPTY == "Enter the customer's phone number."
    assert LANDLINE == (
        "That looks like a landline; enter a Safaricom mobile number like 0712 345 678."
    )
    assert FOREIGN == "Only Kenyan mobile numbers (07… or 01…) can receive M-Pesa requests."
    assert TOO_SHORT == (
        "That number is too short — a Kenyan mobile number has 10 digits, like 0712 345 678."
    )


def test_it_is_a_value_error_callers_can_catch_with_other_bad_input():
    with pytest.raises(InvalidRequest) as caught:
        normalize_phone("")
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == "phone"


@pytest.mark.parametrize(
    ("msisdn", "masked"),
    [
        ("254708374149", "2547****149"),
        ("254110123456", "2541****456"),
        ("", "****"),
        ("123", "****"),
    ],
)
def test_it_masks_numbers_for_lists_and_logs(msisdn, masked):
    assert mask_phone(msisdn) == masked

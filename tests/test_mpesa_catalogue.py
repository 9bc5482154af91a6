"""What the cashier reads for each result code and each refusal."""

from __future__ import annotations

import pytest

from app.mpesa import (
    DarajaAuthError,
    DarajaError,
    DarajaOutcomeUnknown,
    DarajaUnavailable,
    InvalidPhone,
    InvalidRequest,
    describe,
    describe_error,
)
from app.mpesa.classify import classify
from app.mpesa.errors import KINDS

TABLE = [
    ("0", "paid", "Paid. Receipt UKM4ABC12D."),
    ("1", "failed", "The customer's M-Pesa balance is too low."),
    ("2", "failed", "Amount is outside M-Pesa limits."),
    ("3", "failed", "Amount is outside M-Pesa limits."),
    ("4", "failed", "The customer has reached their daily M-Pesa limit."),
    ("8", "failed", "This till cannot receive more right now; call the manager."),
    ("17", "failed", "Wait two minutes, then send again."),
    ("26", "failed", "M-Pesa is busy; send again shortly."),
    ("1001", "failed", "The customer has another M-Pesa prompt open; try again in a minute."),
    ("1019", "expired", "The request expired; send it again."),
    ("1025", "failed", "Could not reach the phone; send again."),
    ("9999", "failed", "Could not reach the phone; send again."),
    ("1031", "cancelled", "The customer cancelled."),
    ("1032", "cancelled", "The customer cancelled."),
    ("1037", "expired", "No response from the phone; check it is on and send again."),
    ("2001", "failed", "Wrong PIN entered; send again."),
    ("2028", "failed", "Payment set-up error; the owner must check the M-Pesa settings."),
    ("SFC_IC0003", "failed", "Payment set-up error; the owner must check the M-Pesa settings."),
    ("8006", "failed", "The customer's M-Pesa PIN is locked."),
    ("4999", "pending", "Waiting for the customer…"),
]


@pytest.mark.parametrize(("code", "status", "sentence"), TABLE)
def test_it_knows_every_code_in_the_table(code, status, sentence):
    info = describe(code, receipt="UKM4ABC12D")
    assert (info.code, info.status, info.sentence, info.known) == (code, status, sentence, True)


@pytest.mark.parametrize("code", ["2028", "SFC_IC0003", "sfc_ic0003"])
def test_it_flags_set_up_errors_for_the_owner(code):
    assert describe(code).setup_error is True


@pytest.mark.parametrize("code", [c for c, _, _ in TABLE if c not in ("2028", "SFC_IC0003")])
def test_it_does_not_flag_customer_side_codes_as_set_up_errors(code):
    assert describe(code).setup_error is False


@pytest.mark.parametrize("code", [0, "0", " 0 ", 0.0, "00"])
def test_it_normalises_paid_codes(code):
    assert describe(code).code == "0"
    assert describe(code).status == "paid"


@pytest.mark.parametrize("code", [1032, "1032"])
def test_it_reads_int_and_string_codes_alike(code):
    assert describe(code).status == "cancelled"


def test_it_says_the_receipt_will_follow_when_only_the_query_knows():
    assert describe("0").sentence == "Paid. The receipt will follow."


@pytest.mark.parametrize(("code", "shown"), [(5005, "5005"), ("ABC", "ABC"), (None, "missing")])
def test_it_has_a_safe_default_for_unknown_codes(code, shown):
    info = describe(code)
    assert (info.status, info.known, info.setup_error) == ("failed", False, False)
    assert info.sentence == f"M-Pesa declined the payment (code {shown})."


def body(code: str, message: str) -> bytes:
    return f'{{"errorCode": "{code}", "errorMessage": "{message}"}}'.encode()


@pytest.mark.parametrize(
    ("err", "sentence"),
    [
        (
            classify(500, body("500.001.1001", "Unable to lock subscriber, a transaction is …")),
            "The customer has another M-Pesa request in progress; wait a minute and send again.",
        ),
        (
            classify(500, body("500.001.1001", "Wrong credentials")),
            "M-Pesa refused this business's passkey or short code; "
            "the owner must check the M-Pesa settings.",
        ),
        (
            classify(500, body("500.001.1001", "Merchant does not exist")),
            "M-Pesa does not know this business short code; "
            "the owner must check the M-Pesa settings.",
        ),
        (
            classify(500, body("500.003.02", "Spike Arrest Violation")),
            "M-Pesa is busy; try again in a few seconds.",
        ),
        (
            classify(400, body("400.002.02", "Bad Request - Invalid Amount")),
            "M-Pesa refused the amount; it must be whole shillings within M-Pesa's limits.",
        ),
        (
            classify(400, body("400.002.02", "Bad Request - Invalid PhoneNumber")),
            "M-Pesa refused the phone number; check it and send again.",
        ),
        (
            classify(400, body("400.002.02", "Bad Request - Invalid CallBackURL")),
            "M-Pesa refused the request as invalid (CallBackURL); contact support.",
        ),
        (
            DarajaOutcomeUnknown("read timeout"),
            "We could not confirm M-Pesa received the request; PesaTab is checking — "
            "do not send again yet.",
        ),
        (
            DarajaUnavailable("connect timeout"),
            "Could not reach M-Pesa; check the internet connection and send again.",
        ),
        (
            DarajaAuthError("refused", reason="bad_credentials"),
            "M-Pesa refused the consumer key or secret; the owner must check the M-Pesa settings.",
        ),
        (
            DarajaAuthError("refused", reason="product_not_enabled"),
            "The Daraja app does not have M-Pesa Express enabled; "
            "the owner must check the M-Pesa settings.",
        ),
        (
            DarajaError("odd", error_code="500.009.99"),
            "M-Pesa refused the request (code 500.009.99); try again, then contact support.",
        ),
        (InvalidPhone("Enter the customer's phone number."), "Enter the customer's phone number."),
        (
            InvalidRequest("The amount must be at least KES 1."),
            "The amount must be at least KES 1.",
        ),
    ],
)
def test_it_explains_refusals_in_sentences(err, sentence):
    assert describe_error(err) == sentence


@pytest.mark.parametrize("kind", sorted(KINDS - {"unknown"}))
def test_it_has_a_sentence_for_every_kind(kind):
    sentence = describe_error(DarajaError("x", kind=kind, http_status=500))
    assert sentence.endswith(".")
    assert "(code" not in sentence

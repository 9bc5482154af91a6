"""Account Balance without a network: the request body, the `AccountBalance` string read into
accounts (Decimal, never a float; tolerant of missing, extra and garbled fields), whole
shillings for the card, and what a result means (app/payments/account_balance.py)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from app.enums import BalanceOutcome
from app.mpesa import InvalidRequest
from app.mpesa.balance import (
    BALANCE_PATH,
    MAX_ACCOUNTS,
    Account,
    balance_body,
    read_accounts,
    read_amount,
    whole_shillings,
)
from app.mpesa.credentials import Credentials
from app.mpesa.initiator import InitiatorResult, read_result
from app.payments import account_balance

DOC_EXAMPLE = (
    "Working Account|KES|700000.00|700000.00|0.00|0.00"
    "&Utility Account|KES|228037.00|228037.00|0.00|0.00"
)
SANDBOX = (
    "Working Account|KES|46713.00|46713.00|0.00|0.00&Float Account|KES|0.00|0.00|0.00|0.00"
    "&Utility Account|KES|49217.00|49217.00|0.00|0.00&Charges Paid Account|KES|-220.00|-220.00"
    "|0.00|0.00&Organization Settlement Account|KES|0.00|0.00|0.00|0.00"
)


def paybill() -> Credentials:
    return Credentials("sandbox", "paybill", "174379", "key", "secret", "passkey")


def test_the_documented_example_gives_the_working_and_utility_accounts():
    working, utility = read_accounts(DOC_EXAMPLE)
    assert working == Account(
        "Working Account", "KES", Decimal("700000.00"), Decimal("700000.00"),
        Decimal("0.00"), Decimal("0.00"),
    )  # fmt: skip
    assert utility.name == "Utility Account" and utility.shown == Decimal("228037.00")
    assert all(isinstance(a.current, Decimal) for a in (working, utility))


def test_every_account_in_the_sandbox_string_is_read_in_order_negative_ones_too():
    accounts = read_accounts(SANDBOX)
    assert [a.name for a in accounts] == [
        "Working Account", "Float Account", "Utility Account", "Charges Paid Account",
        "Organization Settlement Account",
    ]  # fmt: skip
    assert accounts[3].current == Decimal("-220.00")
    assert whole_shillings(accounts[3].shown) == -220


def test_current_and_available_are_told_apart():
    """A published sample: current 346568.83 = available 6186.83 + reserved 340382.00."""
    (account,) = read_accounts("Working Account|KES|346568.83|6186.83|340382.00|0.00")
    assert account.current == Decimal("346568.83")
    assert account.available == Decimal("6186.83")
    assert account.reserved == Decimal("340382.00") and account.uncleared == Decimal("0.00")
    assert account.shown == account.available
    assert whole_shillings(account.shown) == 6186  # cents dropped, never rounded up


def test_missing_fields_are_none_and_the_total_stands_in():
    (account,) = read_accounts("Working Account|KES|100.50")
    assert account.current == Decimal("100.50")
    assert account.available is None and account.reserved is None and account.uncleared is None
    assert account.shown == Decimal("100.50")


def test_extra_fields_and_extra_accounts_are_tolerated():
    text = "Working Account|KES|1.00|2.00|0.00|0.00|future|field&Merchant Account|KES|5.00|5.00"
    first, second = read_accounts(text)
    assert (first.current, first.available) == (Decimal("1.00"), Decimal("2.00"))
    assert second.name == "Merchant Account" and second.available == Decimal("5.00")


@pytest.mark.parametrize(
    "text",
    [
        None,
        123,
        700000.0,
        ["Working Account|KES|1.00|1.00"],
        "",
        "&&&",
        "|||",
        "Working Account",
        "Working Account|KES",
        "Working Account|KES|abc|NaN|1e5|Infinity",
        "|KES|1.00|1.00|0.00|0.00",
        "   |KES|1.00",
    ],
)
def test_what_is_not_an_account_gives_no_account(text):
    assert read_accounts(text) == []


def test_a_garbled_account_among_good_ones_is_skipped():
    text = "Working Account|KES|10.00|10.00&garbage&Utility Account|KES|x|20.00"
    working, utility = read_accounts(text)
    assert working.shown == Decimal("10.00")
    assert utility.current is None and utility.available == Decimal("20.00")


def test_currency_and_names_are_cleaned():
    (account,) = read_accounts("  Working\tAccount\x00 |kes|1.00|1.00")
    assert account.name == "Working Account" and account.currency == "KES"
    (odd,) = read_accounts("Working Account|K3S|1.00|1.00")
    assert odd.currency is None
    (long,) = read_accounts("W" * 500 + "|KES|1.00")
    assert len(long.name) == 60


def test_at_most_so_many_accounts_are_read():
    text = "&".join(f"Account {n}|KES|{n}.00|{n}.00" for n in range(MAX_ACCOUNTS + 5))
    assert len(read_accounts(text)) == MAX_ACCOUNTS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("700000.00", Decimal("700000.00")),
        ("700,000.00", Decimal("700000.00")),
        ("-220.00", Decimal("-220.00")),
        ("+5", Decimal("5.00")),
        ("1.5", Decimal("1.50")),
        (" 12 ", Decimal("12.00")),
        ("0.00", Decimal("0.00")),
        ("1.555", None),
        ("1e5", None),
        ("NaN", None),
        ("Infinity", None),
        ("0x10", None),
        ("1,00.00", None),
        ("", None),
        ("12.", None),
        (12.5, None),
        (None, None),
    ],
)
def test_amounts_are_read_as_decimal_or_not_at_all(text, expected):
    assert read_amount(text) == expected


def test_whole_shillings_drop_the_cents_towards_zero():
    assert whole_shillings(Decimal("69000.99")) == 69000
    assert whole_shillings(Decimal("-220.50")) == -220
    assert whole_shillings(Decimal("0.40")) == 0


def test_the_request_body_is_dara_jas():
    body = balance_body(paybill(), "PesaTabSimInitiator", "Q1JFRA==",
                        result_url="https://bar.example/hooks/result/abc",
                        timeout_url="https://bar.example/hooks/timeout/abc")  # fmt: skip
    assert body == {
        "Initiator": "PesaTabSimInitiator",
        "SecurityCredential": "Q1JFRA==",
        "CommandID": "AccountBalance",
        "PartyA": "174379",
        "IdentifierType": "4",
        "Remarks": "Balance",
        "QueueTimeOutURL": "https://bar.example/hooks/timeout/abc",
        "ResultURL": "https://bar.example/hooks/result/abc",
    }
    assert BALANCE_PATH == "/mpesa/accountbalance/v1/query"


def test_a_till_asks_as_its_store_number():
    till = Credentials("sandbox", "till", "174380", "key", "secret", "passkey", "5123456")
    remarks = "  a\n b  " + "c" * 200
    body = balance_body(till, "me", "c", result_url="https://x.example/r",
                        timeout_url="https://x.example/t", remarks=remarks)  # fmt: skip
    assert body["PartyA"] == "174380" and body["IdentifierType"] == "4"
    assert body["Remarks"].startswith("a b c") and len(body["Remarks"]) == 100


@pytest.mark.parametrize(
    "url", ["", "not a url", "ftp://bar.example/r", "https://bar.example/mpesa/result"]
)
def test_a_url_daraja_would_refuse_is_refused_before_sending(url):
    with pytest.raises(InvalidRequest):
        balance_body(paybill(), "me", "c", result_url=url, timeout_url="https://x.example/t")


def _result(code: str, params: dict | None = None) -> InitiatorResult:
    return InitiatorResult(code, "words", "orig", "conv", None, params or {})


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("0", BalanceOutcome.SHOWN),
        ("2001", BalanceOutcome.BAD_CREDENTIALS),
        ("8006", BalanceOutcome.BAD_CREDENTIALS),
        ("1", BalanceOutcome.REFUSED),
        ("SFC_IC0003", BalanceOutcome.REFUSED),
    ],
)
def test_what_a_result_means(code, expected):
    assert account_balance.outcome(_result(code), {"174379"}, "174379") == expected


def test_refusals_and_timeouts():
    assert account_balance.refused("2001") == BalanceOutcome.BAD_CREDENTIALS
    assert account_balance.refused(None) == BalanceOutcome.REFUSED
    assert account_balance.refused("500.003.02") == BalanceOutcome.REFUSED
    assert account_balance.timed_out() == BalanceOutcome.NO_ANSWER


def test_the_stored_answer_gives_accounts_and_the_time_mpesa_read_them():
    answer = account_balance.balance(
        {"AccountBalance": DOC_EXAMPLE, "BOCompletedTime": 20260412210455}
    )
    assert [a.name for a in answer.accounts] == ["Working Account", "Utility Account"]
    assert answer.completed_at == datetime(2026, 4, 12, 18, 4, 55)  # EAT is UTC+3
    assert account_balance.balance({"BOCompletedTime": "yesterday"}) == account_balance.Balance(
        [], None
    )


def test_a_long_balance_string_is_kept_whole_by_the_result_reader():
    """Five accounts with large figures pass 255 characters: none may be cut off."""
    text = "&".join(
        f"{name} Account|KES|123456789.00|123456789.00|0.00|0.00"
        for name in ("Working", "Float", "Utility", "Charges Paid", "Organization Settlement",
                     "Merchant")
    )  # fmt: skip
    assert len(text) > 255
    body = {"Result": {"ResultCode": 0, "ResultDesc": "ok", "ConversationID": "c",
                       "ResultParameters": {"ResultParameter": [
                           {"Key": "AccountBalance", "Value": text}]}}}  # fmt: skip
    result = read_result(json.loads(json.dumps(body)))
    assert result.parameters["AccountBalance"] == text
    assert len(account_balance.balance(result.parameters).accounts) == 6

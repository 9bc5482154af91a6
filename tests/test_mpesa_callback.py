"""Reading the callbacks Safaricom POSTs, whatever order or shape they come in."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.mpesa import EAT, MalformedCallback, StkCallback, describe, parse_stk_callback
from tests.samples import raw

CHECKOUT_ID = "ws_CO_221120261430001708374149"


def paid(**changes: Any) -> dict[str, Any]:
    """The paid sample, with stkCallback fields changed."""
    body = json.loads(raw("callback_paid.json"))
    body["Body"]["stkCallback"].update(changes)
    return body


def with_items(items: Any) -> dict[str, Any]:
    return paid(CallbackMetadata={"Item": items})


@pytest.mark.parametrize("name", ["callback_paid.json", "callback_paid_reordered_no_balance.json"])
def test_it_reads_a_paid_callback_by_item_name(name):
    callback = parse_stk_callback(raw(name))

    assert callback == StkCallback(
        merchant_request_id="f1e2-4b95-a71d-b30d3cdbb7a7942864",
        checkout_request_id=CHECKOUT_ID,
        result_code="0",
        result_desc="The service request is processed successfully.",
        amount=450,
        receipt="UKM4ABC12D",
        transaction_date=datetime(2026, 11, 22, 14, 31, 12, tzinfo=EAT),
        phone="254708374149",
        items=callback.items,
    )
    assert callback.succeeded
    assert "Balance" not in callback.items
    assert describe(callback.result_code, callback.receipt).sentence == "Paid. Receipt UKM4ABC12D."


def test_it_places_the_transaction_date_in_nairobi_time():
    when = parse_stk_callback(raw("callback_paid.json")).transaction_date
    assert when is not None and when.utcoffset() == timedelta(hours=3)
    assert when.isoformat() == "2026-11-22T14:31:12+03:00"


@pytest.mark.parametrize(
    ("name", "code", "status"),
    [
        ("callback_cancelled.json", "1032", "cancelled"),
        ("callback_insufficient.json", "1", "failed"),
        ("callback_unreachable.json", "1037", "expired"),
    ],
)
def test_it_reads_failure_callbacks_without_metadata(name, code, status):
    callback = parse_stk_callback(raw(name))

    assert (callback.result_code, callback.checkout_request_id) == (code, CHECKOUT_ID)
    assert (callback.amount, callback.receipt, callback.transaction_date) == (None, None, None)
    assert callback.items == {}
    assert not callback.succeeded
    assert describe(callback.result_code).status == status


@pytest.mark.parametrize("body", [raw("callback_paid.json"), raw("callback_paid.json").decode()])
def test_it_accepts_bytes_text_or_a_dict(body):
    from_raw = parse_stk_callback(body)
    assert from_raw == parse_stk_callback(json.loads(body))


@pytest.mark.parametrize("code", [0, "0", 1032, "1032"])
def test_it_reads_the_result_code_as_int_or_string(code):
    assert parse_stk_callback(paid(ResultCode=code)).result_code == str(code)


@pytest.mark.parametrize(("value", "amount"), [(450, 450), (450.0, 450), ("450.00", 450), (1, 1)])
def test_it_reads_whole_shilling_amounts(value, amount):
    callback = parse_stk_callback(with_items([{"Name": "Amount", "Value": value}]))
    assert callback.amount == amount


def test_it_reads_a_callback_whose_items_are_all_missing_but_one():
    callback = parse_stk_callback(
        with_items([{"Name": "MpesaReceiptNumber", "Value": "ukm4abc12d"}])
    )
    assert (callback.receipt, callback.amount, callback.phone) == ("UKM4ABC12D", None, None)


def test_it_keeps_unknown_items_and_a_masked_phone():
    items = [{"Name": "PhoneNumber", "Value": "2547****149"}, {"Name": "Extra", "Value": "x"}]
    callback = parse_stk_callback(with_items(items))
    assert callback.phone == "2547****149"
    assert callback.items == {"PhoneNumber": "2547****149", "Extra": "x"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"<html>hi</html>", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "no Body"),
        ("null", "no Body"),
        ({"Body": "x"}, "no Body"),
        ({"Body": {}}, "stkCallback"),
        ({"Body": {"stkCallback": []}}, "stkCallback"),
        (paid(CheckoutRequestID=None), "CheckoutRequestID"),
        (paid(CheckoutRequestID=""), "CheckoutRequestID"),
        (paid(CheckoutRequestID=123), "CheckoutRequestID must be text"),
        (paid(MerchantRequestID=5), "MerchantRequestID must be text"),
        (paid(ResultCode=None), "ResultCode"),
        (paid(ResultCode=True), "ResultCode"),
        (paid(ResultCode=""), "ResultCode"),
        (paid(ResultCode=[0]), "ResultCode"),
        (paid(ResultCode=0.5), "ResultCode"),
        (paid(CallbackMetadata={"Item": {"Name": "Amount"}}), "must be a list"),
        (paid(CallbackMetadata="items"), "must be a list"),
        (with_items([{"Value": 450}]), "needs a Name"),
        (with_items(["Amount"]), "needs a Name"),
        (with_items([{"Name": "Amount", "Value": 450.5}]), "whole number of shillings"),
        (with_items([{"Name": "Amount", "Value": 0}]), "whole number of shillings"),
        (with_items([{"Name": "Amount", "Value": "lots"}]), "not a number"),
        (with_items([{"Name": "Amount", "Value": True}]), "must be a number"),
        (with_items([{"Name": "Amount", "Value": float("nan")}]), "whole number"),
        (with_items([{"Name": "MpesaReceiptNumber", "Value": 123}]), "must be text"),
        (with_items([{"Name": "TransactionDate", "Value": 2026112214}]), "not a date"),
        (with_items([{"Name": "TransactionDate", "Value": 20261322143112}]), "not a date"),
        (with_items([{"Name": "TransactionDate", "Value": 2.5}]), "yyyyMMddHHmmss"),
        (with_items([{"Name": "PhoneNumber", "Value": {"n": 1}}]), "PhoneNumber"),
        (raw("c2b_confirmation.json"), "no Body"),  # a C2B confirmation sent to the STK hook
        (12345, "bytes, text or a dict"),
    ],
)
def test_it_refuses_malformed_callbacks_with_a_reason(body, reason):
    with pytest.raises(MalformedCallback) as caught:
        parse_stk_callback(body)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


def test_it_refuses_receipts_and_ids_that_are_not_darajas_shape():
    import json

    import pytest

    from app.mpesa import MalformedCallback, parse_stk_callback

    def body(receipt="UKM4ABC12D", checkout="ws_CO_1"):
        return json.dumps(
            {
                "Body": {
                    "stkCallback": {
                        "MerchantRequestID": "m",
                        "CheckoutRequestID": checkout,
                        "ResultCode": 0,
                        "ResultDesc": "ok",
                        "CallbackMetadata": {
                            "Item": [
                                {"Name": "Amount", "Value": 1},
                                {"Name": "MpesaReceiptNumber", "Value": receipt},
                            ]
                        },
                    }
                }
            }
        )

    assert parse_stk_callback(body()).receipt == "UKM4ABC12D"
    for bad in ("X" * 300, "UKM4 ABC12D", "<b>x</b>"):
        with pytest.raises(MalformedCallback):
            parse_stk_callback(body(receipt=bad))
    with pytest.raises(MalformedCallback):
        parse_stk_callback(body(checkout="ws_CO_" + "9" * 80))

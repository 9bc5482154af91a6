"""Safaricom's STK callbacks at `POST /hooks/stk/<token>`: every body stored first, applied once,
always acknowledged.

These tests forge the callbacks from the Daraja samples in tests/fixtures/daraja and post them
with the Flask test client; concurrency and the simulator's own deliveries are in
test_callbacks_concurrency.py.
These tests found nine bugs in the callback path (a deadlock between concurrent deliveries on
PostgreSQL, NUL bytes and over-long fields, junk result codes, over-limit bodies); all are fixed.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from app.extensions import db
from app.models import AuditEvent, CallbackEvent, Payment, utcnow
from app.payments import callbacks, ledger, states
from tests.samples import sample

ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}
ON_POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")
SAFARICOM = "196.201.214.200"  # one of the addresses integrators report Safaricom calling from
RECEIPT = "UKM4ABC12D"
SAME = object()  # "use the payment's own value"


# Building and sending callbacks ----------------------------------------------------------------


def paid_body(
    payment: Payment,
    *,
    receipt: str | None = RECEIPT,
    amount: Any = SAME,
    checkout_id: Any = SAME,
    **stk: Any,
) -> dict[str, Any]:
    """The paid sample for `payment` (its CheckoutRequestID and amount); None drops an item."""
    body = sample("callback_paid.json")
    callback = body["Body"]["stkCallback"]
    callback["CheckoutRequestID"] = (
        payment.checkout_request_id if checkout_id is SAME else checkout_id
    )
    values = {
        "Amount": float(payment.amount) if amount is SAME else amount,
        "MpesaReceiptNumber": receipt,
    }
    items = callback["CallbackMetadata"]["Item"]
    for name, value in values.items():
        (item,) = (i for i in items if i["Name"] == name)
        if value is None:
            items.remove(item)
        else:
            item["Value"] = value
    callback.update(stk)
    return body


def failure_body(payment: Payment, name: str = "callback_cancelled.json") -> dict[str, Any]:
    body = sample(name)
    body["Body"]["stkCallback"]["CheckoutRequestID"] = payment.checkout_request_id
    return body


def post(
    client,
    token: str,
    body: dict | bytes | str,
    *,
    source: str = SAFARICOM,
    headers: dict | None = None,
):
    """POST a callback as Safaricom does: JSON, a Businessshortcode header, no CSRF token."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    return client.post(
        f"/hooks/stk/{token}",
        data=data,
        content_type="application/json;charset=UTF-8",
        headers={"Businessshortcode": "174379", **(headers or {})},
        environ_base={"REMOTE_ADDR": source},
        csrf=False,
    )


def acked(response) -> bool:
    return response.status_code == 200 and response.get_json() == ACK


def reload(payment: Payment) -> Payment:
    db.session.expire_all()
    return db.session.get(Payment, payment.id)


def stored_events() -> list[CallbackEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(CallbackEvent).order_by(CallbackEvent.id)))


def last_event() -> CallbackEvent:
    return stored_events()[-1]


def dispositions() -> list[str]:
    return [event.disposition for event in stored_events()]


def snapshot(payment: Payment) -> dict[str, Any]:
    """Everything a callback could change on a payment."""
    fresh = reload(payment)
    return {c.name: getattr(fresh, c.name) for c in Payment.__table__.columns}


@pytest.fixture
def payment(factory, bar) -> Payment:
    """A tab payment for KES 450 whose push Daraja accepted: the customer has the prompt."""
    return factory.payment(bar, status="sent", amount=450)


# Store first ---------------------------------------------------------------------------------


def test_it_stores_the_body_as_received_then_credits_the_payment(client, payment):
    raw = json.dumps(paid_body(payment), indent=1).encode()

    response = post(
        client, payment.callback_token, raw, headers={"Authorization": "Bearer x", "Cookie": "a=b"}
    )

    assert acked(response)
    (event,) = stored_events()
    assert (event.raw_body, event.body_size, event.truncated) == (raw.decode(), len(raw), False)
    assert (event.source_address, event.known_source) == (SAFARICOM, True)
    assert event.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert event.headers["Businessshortcode"] == "174379"
    assert "Authorization" not in event.headers and "Cookie" not in event.headers
    assert event.received_at <= event.processed_at
    assert (event.disposition, event.attempts, event.payment_id, event.bar_id) == (
        "applied",
        1,
        payment.id,
        payment.bar_id,
    )
    paid = reload(payment)
    assert (paid.status, paid.receipt, paid.paid_amount, paid.paid_phone) == (
        "paid",
        RECEIPT,
        450,
        "254708374149",
    )
    assert paid.transaction_time == datetime(
        2026, 11, 22, 11, 31, 12
    )  # 14:31:12 EAT, stored as UTC
    assert (paid.flagged, paid.message, paid.inflight_key) == (
        False,
        "Paid. Receipt UKM4ABC12D.",
        None,
    )
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "payment.paid"))
    assert audit.details == {"payment_id": payment.id, "source": "callback", "late": False}


def test_the_body_is_committed_before_anything_reads_it(app, client, payment, monkeypatch):
    seen_by_another_connection = []
    real_apply = callbacks.apply

    def apply_after_checking(event):
        with db.engine.connect() as other:
            row = other.execute(
                text("SELECT raw_body, disposition FROM callback_event WHERE id = :id"),
                {"id": event.id},
            )
            seen_by_another_connection.append(tuple(row.one()))
        return real_apply(event)

    monkeypatch.setattr(callbacks, "apply", apply_after_checking)
    body = json.dumps(paid_body(payment))

    assert acked(post(client, payment.callback_token, body))
    assert seen_by_another_connection == [(body, "pending")]
    assert reload(payment).status == "paid"


# Duplicates, replays and late news -----------------------------------------------------------


def test_a_repeated_success_changes_nothing_and_is_marked_duplicate(client, payment):
    body = paid_body(payment)
    assert acked(post(client, payment.callback_token, body))
    before = snapshot(payment)

    assert acked(post(client, payment.callback_token, body))
    assert acked(post(client, payment.callback_token, paid_body(payment, amount=450)))

    assert dispositions() == ["applied", "duplicate", "duplicate"]
    assert snapshot(payment) == before
    assert (
        db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "payment.paid")
        )
        == 1
    )


def test_a_failure_after_the_payment_is_paid_changes_nothing(client, payment):
    post(client, payment.callback_token, paid_body(payment))
    before = snapshot(payment)

    for name in (
        "callback_cancelled.json",
        "callback_insufficient.json",
        "callback_unreachable.json",
    ):
        assert acked(post(client, payment.callback_token, failure_body(payment, name)))

    assert dispositions() == ["applied", "ignored", "ignored", "ignored"]
    assert snapshot(payment) == before


def test_a_repeated_failure_is_marked_duplicate(client, payment):
    for _ in range(2):
        assert acked(post(client, payment.callback_token, failure_body(payment)))

    assert dispositions() == ["applied", "duplicate"]
    cancelled = reload(payment)
    assert (cancelled.status, cancelled.result_code, cancelled.receipt) == (
        "cancelled",
        "1032",
        None,
    )


def test_a_success_after_expiry_is_credited_once_and_flagged_late(client, payment):
    expired = failure_body(payment, "callback_unreachable.json")
    expired["Body"]["stkCallback"]["ResultCode"] = 1019  # final at once (a 1037 waits for a query)
    assert acked(post(client, payment.callback_token, expired))
    assert reload(payment).status == "expired"

    assert acked(post(client, payment.callback_token, paid_body(payment)))
    late = reload(payment)
    assert (late.status, late.receipt, late.flagged, late.flag_reason) == (
        "paid",
        RECEIPT,
        True,
        "late_success",
    )
    assert late.result_code == "0" and late.paid_amount == 450
    before = snapshot(payment)

    assert acked(post(client, payment.callback_token, paid_body(payment)))
    assert acked(
        post(client, payment.callback_token, failure_body(payment, "callback_unreachable.json"))
    )

    assert dispositions() == ["applied", "late_success", "duplicate", "ignored"]
    assert snapshot(payment) == before
    audits = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "payment.paid")).all()
    assert [a.details["late"] for a in audits] == [True]


@pytest.mark.parametrize("settled", ["failed", "cancelled", "expired"])
def test_money_wins_over_any_settled_failure(client, factory, bar, settled):
    payment = factory.payment(bar, status=settled, result_code="1", settled_at=utcnow())

    assert acked(post(client, payment.callback_token, paid_body(payment)))

    assert last_event().disposition == "late_success"
    late = reload(payment)
    assert (late.status, late.receipt, late.flagged, late.flag_reason) == (
        "paid",
        RECEIPT,
        True,
        "late_success",
    )


def test_a_failure_landing_just_before_the_success_still_marks_it_late(
    client, payment, monkeypatch
):
    real_move = states.move

    def failure_wins_the_race(target, new, **values):
        if new == "paid":  # another worker's cancellation commits between our read and our UPDATE
            db.session.execute(
                update(Payment)
                .where(Payment.id == target.id)
                .values(status="cancelled", result_code="1032")
                .execution_options(synchronize_session=False)
            )
        return real_move(target, new, **values)

    monkeypatch.setattr(states, "move", failure_wins_the_race)
    assert acked(post(client, payment.callback_token, paid_body(payment)))

    paid = reload(payment)
    assert (paid.status, paid.flag_reason) == ("paid", "late_success")
    assert last_event().disposition == "late_success"


# Successes that do not add up ------------------------------------------------------------------


@pytest.mark.parametrize("amount", [450, 450.0, "450", "450.00"])
def test_the_amount_asked_in_any_number_form_is_credited(client, payment, amount):
    assert acked(post(client, payment.callback_token, paid_body(payment, amount=amount)))

    assert last_event().disposition == "applied"
    assert (reload(payment).status, reload(payment).paid_amount) == ("paid", 450)


def test_a_success_without_a_receipt_is_not_credited(client, payment):
    assert acked(post(client, payment.callback_token, paid_body(payment, receipt=None)))

    event = last_event()
    assert (event.disposition, event.detail) == (
        "mismatch",
        "a paid result without a receipt number",
    )
    unpaid = reload(payment)
    assert (unpaid.status, unpaid.receipt, unpaid.paid_amount) == ("sent", None, None)


def test_a_success_without_an_amount_is_not_credited_and_is_flagged(client, payment):
    assert acked(post(client, payment.callback_token, paid_body(payment, amount=None)))

    event = last_event()
    assert (event.disposition, event.detail) == (
        "mismatch",
        "a paid result without the amount; not credited until M-Pesa confirms it",
    )
    unpaid = reload(payment)
    assert (unpaid.status, unpaid.receipt, unpaid.paid_amount) == ("sent", None, None)
    assert (unpaid.flagged, unpaid.flag_reason) == (True, "amount_missing")
    assert (
        db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "payment.paid")
        )
        == 0
    )


@pytest.mark.parametrize("amount", [1, 449, 451, 4500])
def test_a_success_for_another_amount_is_not_credited_and_is_flagged(client, payment, amount):
    assert acked(post(client, payment.callback_token, paid_body(payment, amount=amount)))

    event = last_event()
    assert (
        event.disposition == "mismatch"
        and event.detail == f"amount {amount} differs from the 450 asked"
    )
    unpaid = reload(payment)
    assert (unpaid.status, unpaid.receipt, unpaid.flagged, unpaid.flag_reason) == (
        "sent",
        None,
        True,
        "amount_mismatch",
    )
    # The right amount arriving afterwards is still credited; the flag stays for review.
    assert acked(post(client, payment.callback_token, paid_body(payment)))
    assert (reload(payment).status, reload(payment).flag_reason) == ("paid", "amount_mismatch")


def test_a_receipt_already_credited_to_another_payment_is_not_credited_again(
    client, factory, bar, payment
):
    other = factory.payment(bar, status="sent", amount=450)
    post(client, payment.callback_token, paid_body(payment))

    assert acked(post(client, other.callback_token, paid_body(other)))

    assert dispositions() == ["applied", "mismatch"]
    second = reload(other)
    assert (second.status, second.receipt, second.flagged, second.flag_reason) == (
        "sent",
        None,
        True,
        "receipt_reused",
    )
    assert reload(payment).receipt == RECEIPT
    assert (
        db.session.scalar(
            select(func.count()).select_from(Payment).where(Payment.receipt == RECEIPT)
        )
        == 1
    )


def test_a_second_receipt_for_a_paid_payment_is_kept_for_review(client, payment):
    post(client, payment.callback_token, paid_body(payment))

    assert acked(post(client, payment.callback_token, paid_body(payment, receipt="UKM4ZZZ99Z")))

    assert dispositions() == ["applied", "mismatch"]
    paid = reload(payment)
    assert (paid.status, paid.receipt, paid.flagged, paid.flag_reason) == (
        "paid",
        RECEIPT,
        True,
        "second_receipt",
    )


# Forged callbacks ----------------------------------------------------------------------------


def test_an_unknown_token_changes_no_payment(client, payment):
    before = snapshot(payment)

    assert acked(post(client, "f" * 40, paid_body(payment)))

    event = last_event()
    assert (event.disposition, event.token, event.payment_id, event.bar_id) == (
        "unknown_token",
        "f" * 40,
        None,
        None,
    )
    assert snapshot(payment) == before


def test_a_valid_token_with_another_payments_checkout_id_changes_neither(
    client, factory, bar, payment
):
    other = factory.payment(bar, status="sent", amount=450)
    before = (snapshot(payment), snapshot(other))

    assert acked(post(client, payment.callback_token, paid_body(other)))

    event = last_event()
    assert (event.disposition, event.detail) == (
        "mismatch",
        "CheckoutRequestID does not match this payment",
    )
    assert event.payment_id == payment.id
    assert (snapshot(payment), snapshot(other)) == before


def test_a_success_for_a_push_daraja_refused_is_not_credited(client, factory, bar):
    refused = factory.payment(bar, status="rejected", checkout_request_id=None)

    assert acked(
        post(client, refused.callback_token, paid_body(refused, checkout_id="ws_CO_FORGED0001"))
    )

    assert last_event().disposition == "mismatch"
    assert (reload(refused).status, reload(refused).checkout_request_id) == ("rejected", None)


# Malformed and oversized bodies --------------------------------------------------------------


def _with_stk(**changes: Any) -> dict[str, Any]:
    body = sample("callback_paid.json")
    callback = body["Body"]["stkCallback"]
    for key, value in changes.items():
        if value is None:
            callback.pop(key, None)
        else:
            callback[key] = value
    return body


MALFORMED = {
    "empty": b"",
    "not-json": b"ResultCode=0&Receipt=UKM4ABC12D",
    "truncated-json": b'{"Body": {"stkCallback": {"ResultCode": 0',
    "a-list": b"[]",
    "a-string": b'"paid"',
    "a-number": b"0",
    "null": b"null",
    "no-body": b"{}",
    "body-null": b'{"Body": null}',
    "stk-a-list": b'{"Body": {"stkCallback": []}}',
    "no-result-code": _with_stk(ResultCode=None),
    "null-result-code": (
        b'{"Body": {"stkCallback": {"CheckoutRequestID": "%s", "ResultCode": null}}}'
    ),
    "blank-result-code": _with_stk(ResultCode="  "),
    "boolean-result-code": _with_stk(ResultCode=False),
    "fractional-result-code": _with_stk(ResultCode=0.5),
    "no-checkout-id": _with_stk(CheckoutRequestID=None),
    "numeric-checkout-id": _with_stk(CheckoutRequestID=12345),
    "items-not-a-list": _with_stk(CallbackMetadata={"Item": {"Name": "Amount", "Value": 450}}),
    "item-without-name": _with_stk(CallbackMetadata={"Item": [{"Value": 450}]}),
    "amount-not-a-number": _with_stk(
        CallbackMetadata={"Item": [{"Name": "Amount", "Value": "lots"}]}
    ),
    "amount-fractional": _with_stk(CallbackMetadata={"Item": [{"Name": "Amount", "Value": 450.5}]}),
    "receipt-a-number": _with_stk(
        CallbackMetadata={"Item": [{"Name": "MpesaReceiptNumber", "Value": 12}]}
    ),
    "date-not-a-date": _with_stk(
        CallbackMetadata={"Item": [{"Name": "TransactionDate", "Value": 99999999999999}]}
    ),
}


def _for_payment(body: dict | bytes, payment: Payment) -> bytes:
    """The body aimed at `payment`: its CheckoutRequestID wherever the body carries one."""
    if isinstance(body, dict):
        raw = json.dumps(body).encode()
        return raw.replace(b"ws_CO_221120261430001708374149", payment.checkout_request_id.encode())
    return body.replace(b"%s", payment.checkout_request_id.encode())


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_body_is_acknowledged_kept_and_changes_nothing(client, payment, body):
    raw = _for_payment(body, payment)
    before = snapshot(payment)

    assert acked(post(client, payment.callback_token, raw))

    (event,) = stored_events()
    assert (event.raw_body, event.disposition, event.payment_id) == (
        raw.decode(),
        "malformed",
        payment.id,
    )
    assert event.detail
    assert snapshot(payment) == before


@pytest.mark.parametrize("code", ["not a code!", "<b>0</b>", "1" * 40, 10**30])
def test_a_result_code_that_is_not_a_code_is_malformed(client, payment, code):
    body = failure_body(payment)
    body["Body"]["stkCallback"]["ResultCode"] = code
    before = snapshot(payment)

    assert acked(post(client, payment.callback_token, body))

    assert last_event().disposition == "malformed"
    assert snapshot(payment) == before


def test_a_deeply_nested_body_is_malformed_not_an_error_on_our_side(client, payment):
    raw = b'{"Body": ' + b"[" * 5000 + b"]" * 5000 + b"}"

    assert acked(post(client, payment.callback_token, raw))

    event = last_event()
    assert (event.disposition, event.next_attempt_at) == ("malformed", None)


def test_a_body_over_the_limit_answers_413_and_is_kept_truncated(app, client, payment):
    limit = app.config["CALLBACK_MAX_BYTES"]
    raw = json.dumps(paid_body(payment)).encode() + b" " * limit  # valid JSON, but too large
    before = snapshot(payment)

    response = post(client, payment.callback_token, raw)

    assert response.status_code == 413 and response.is_json
    (event,) = stored_events()
    assert (event.truncated, event.body_size, event.disposition) == (True, len(raw), "malformed")
    assert event.raw_body.encode() == raw[:limit]
    assert snapshot(payment) == before


def test_a_body_over_the_app_wide_upload_limit_is_still_kept(app, client, payment):
    app.config["MAX_CONTENT_LENGTH"] = 4 * app.config["CALLBACK_MAX_BYTES"]  # 5 MB by default
    raw = b"{" + b" " * app.config["MAX_CONTENT_LENGTH"] + b"}"

    response = post(client, payment.callback_token, raw)

    assert response.status_code == 413 and response.is_json
    (event,) = stored_events()
    assert (event.truncated, event.body_size, event.disposition) == (True, len(raw), "malformed")


# Errors on our side ----------------------------------------------------------------------------


def test_an_error_on_our_side_leaves_the_event_pending_for_the_replay_job(
    client, payment, monkeypatch
):
    real_record, calls = ledger.record, []

    def fails_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(ledger, "record", fails_once)
    before = snapshot(payment)

    assert acked(post(client, payment.callback_token, paid_body(payment)))

    (event,) = stored_events()
    assert (event.disposition, event.attempts, event.processed_at) == ("pending", 1, None)
    delay = event.next_attempt_at - event.received_at
    assert (
        timedelta(seconds=callbacks.REPLAY_DELAYS[0] - 5)
        < delay
        <= timedelta(seconds=callbacks.REPLAY_DELAYS[0] + 5)
    )
    assert snapshot(payment) == before

    assert callbacks.apply(event) == "applied"  # what the replay job will do
    assert (reload(payment).status, reload(payment).receipt) == ("paid", RECEIPT)
    assert (last_event().disposition, last_event().attempts) == ("applied", 2)


def test_an_event_that_keeps_failing_is_given_up_after_the_last_delay(client, payment, monkeypatch):
    def always_fails(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(ledger, "record", always_fails)
    post(client, payment.callback_token, paid_body(payment))
    event = last_event()

    for _ in callbacks.REPLAY_DELAYS:
        callbacks.apply(event)

    event = last_event()
    assert (event.disposition, event.attempts, event.next_attempt_at) == (
        "error",
        len(callbacks.REPLAY_DELAYS) + 1,
        None,
    )
    assert reload(payment).status == "sent"


def test_replaying_an_applied_event_keeps_its_disposition(client, payment):
    post(client, payment.callback_token, paid_body(payment))
    event = last_event()

    assert callbacks.apply(event) == "applied"

    assert (last_event().disposition, last_event().attempts) == ("applied", 1)


# Source addresses ------------------------------------------------------------------------------


def test_an_unknown_source_is_recorded_and_still_applied(client, payment):
    assert acked(post(client, payment.callback_token, paid_body(payment), source="127.0.0.1"))

    event = last_event()
    assert (event.source_address, event.known_source, event.disposition) == (
        "127.0.0.1",
        False,
        "applied",
    )
    assert reload(payment).status == "paid"


def test_strict_mode_keeps_but_does_not_apply_an_unknown_source(app, client, payment):
    app.config["CALLBACK_STRICT_SOURCES"] = True
    before = snapshot(payment)

    assert acked(post(client, payment.callback_token, paid_body(payment), source="41.90.1.2"))

    event = last_event()
    assert (event.source_address, event.known_source, event.disposition) == (
        "41.90.1.2",
        False,
        "untrusted_source",
    )
    assert event.raw_body == json.dumps(paid_body(payment))
    assert snapshot(payment) == before

    assert acked(post(client, payment.callback_token, paid_body(payment), source=SAFARICOM))
    assert (last_event().disposition, reload(payment).status) == ("applied", "paid")


# No 5xx, whatever arrives ----------------------------------------------------------------------


def _paid_with(**items: Any) -> dict[str, Any]:
    body = sample("callback_paid.json")
    for item in body["Body"]["stkCallback"]["CallbackMetadata"]["Item"]:
        if item["Name"] in items:
            item["Value"] = items[item["Name"]]
    return body


NASTY = [
    pytest.param(b"\x00\x01\x02\xff\xfe binary \x00", 200, None, True, id="binary-with-nul"),
    pytest.param(
        b'{"Body": {"stkCallback": {"ResultDesc": "\x00"}}}', 200, None, True, id="json-with-nul"
    ),
    pytest.param(b"\xff\xfe\xfd{\x80\x81 not utf-8", 200, None, True, id="not-utf8"),
    pytest.param(
        '{"Body": "caf\u00e9 \U0001f4a5"}'.encode("latin-1", "replace"),
        200,
        None,
        True,
        id="latin-1",
    ),
    pytest.param(_with_stk(ResultDesc="\ud800"), 200, None, False, id="lone-surrogate-escape"),
    pytest.param(_with_stk(ResultCode=10**30), 200, None, True, id="huge-result-code"),
    pytest.param(_with_stk(ResultCode=1e308), 200, None, True, id="huge-float-result-code"),
    pytest.param(
        b'{"Body": {"stkCallback": {"ResultCode": 1e999}}}',
        200,
        None,
        True,
        id="infinite-result-code",
    ),
    pytest.param(_paid_with(Amount=1e308), 200, None, True, id="huge-amount"),
    pytest.param(
        b'{"Body": {"stkCallback": {"ResultCode": 0, "x": ' + b"9" * 5000 + b"}}}",
        200,
        None,
        True,
        id="5000-digit-number",
    ),
    pytest.param(_paid_with(PhoneNumber=10**40), 200, 450, True, id="huge-phone"),
    pytest.param(_paid_with(TransactionDate=10**20), 200, None, True, id="huge-date"),
    pytest.param(_paid_with(MpesaReceiptNumber="R" * 300), 200, None, True, id="huge-receipt"),
    pytest.param(
        _with_stk(ResultDesc="x" * 5000, MerchantRequestID="m" * 500),
        200,
        450,
        True,
        id="huge-texts",
    ),
    pytest.param(b"[" * 5000 + b"]" * 5000, 200, None, True, id="deeply-nested-arrays"),
    pytest.param(
        b'{"Body": {"stkCallback": ' + b'{"a": ' * 3000 + b"0" + b"}" * 3000 + b"}}",
        413,
        None,
        True,
        id="deeply-nested-objects",
    ),
    pytest.param(
        _with_stk(ResultCode=None, CallbackMetadata=[[[[]]]]),
        200,
        None,
        True,
        id="null-code-nested-metadata",
    ),
    pytest.param(
        b'{"Body": {"stkCallback": {"ResultCode": 0}}, "Body": 1}',
        200,
        None,
        True,
        id="duplicate-keys",
    ),
    pytest.param(
        b"\xef\xbb\xbf" + json.dumps(sample("callback_paid.json")).encode(),
        200,
        None,
        True,
        id="utf8-bom",
    ),
    pytest.param(b" " * 20_000, 413, None, True, id="oversized-whitespace"),
]


@pytest.mark.parametrize(("body", "status", "credited", "linked"), NASTY)
def test_no_body_gets_a_server_error_and_every_body_is_kept(
    client, payment, body, status, credited, linked
):
    """Each body gets its one right answer: 413 only over the size limit (kept all the same),
    credited only where a whole paid body with the amount asked survives, never another amount."""
    raw = _for_payment(body, payment)

    response = post(client, payment.callback_token, raw)

    assert response.status_code == status and response.is_json
    if status == 200:
        assert response.get_json() == ACK
    (event,) = stored_events()
    assert event.body_size == len(raw)
    assert event.payment_id == (payment.id if linked else None)
    assert reload(payment).paid_amount == credited


def test_a_nul_in_the_token_is_still_acknowledged_and_kept(client, payment):
    response = post(client, "abc%00def", paid_body(payment))

    assert acked(response)
    assert last_event().disposition == "unknown_token"


@pytest.mark.parametrize(
    "stk",
    [
        {"ResultDesc": "The service request is processed successfully. " * 6},
        {
            "CallbackMetadata": {
                "Item": [
                    {"Name": "Amount", "Value": 450},
                    {"Name": "MpesaReceiptNumber", "Value": RECEIPT},
                    {"Name": "PhoneNumber", "Value": "2547*****149#c1f2a0be9d4e7f3a"},
                ]
            }
        },
    ],
    ids=["long-result-desc", "masked-phone"],
)
def test_a_genuine_success_with_a_long_field_is_still_credited(client, payment, stk):
    body = paid_body(payment)
    body["Body"]["stkCallback"].update(stk)

    assert acked(post(client, payment.callback_token, body))

    assert last_event().disposition == "applied"
    assert (reload(payment).status, reload(payment).receipt) == ("paid", RECEIPT)


def test_callback_events_and_their_source_are_visible_to_managers(
    app, client, factory, bar, manager, cashier
):
    from tests.conftest import login_as

    payment = factory.payment(bar, status="sent", amount=450)
    body = json.dumps(
        {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "m",
                    "CheckoutRequestID": payment.checkout_request_id,
                    "ResultCode": 1032,
                    "ResultDesc": "Request cancelled by user",
                }
            }
        }
    )
    client.post(f"/hooks/stk/{payment.callback_token}", data=body, content_type="application/json")
    client.post(f"/hooks/stk/{payment.callback_token}", data=body, content_type="application/json")
    page = login_as(app, manager).get(f"/payments/{payment.id}/status").get_data(as_text=True)
    assert (
        "Callbacks from M-Pesa" in page
        and "127.0.0.1" in page
        and "not on Safaricom's known list" in page
    )
    assert "applied" in page and "duplicate" in page
    assert "Callbacks from M-Pesa" not in login_as(app, cashier).get(
        f"/payments/{payment.id}/status"
    ).get_data(as_text=True)

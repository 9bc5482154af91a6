"""Building the STK callback and delivering it, late, twice, never, or before the push answer.

Each transaction's callback runs in its own daemon thread, with the faults as they were when the
push was accepted. Every attempt is recorded; no exception leaves the thread.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from app.simulator.faults import Faults
from app.simulator.models import Transaction
from app.simulator.outcomes import callback_desc
from app.simulator.state import SimulatorState

CALLBACK_CONTENT_TYPE = "application/json;charset=UTF-8"


def callback_body(txn: Transaction, faults: Faults) -> dict[str, Any]:
    """`{"Body": {"stkCallback": ...}}`; only a success carries CallbackMetadata."""
    result: dict[str, Any] = {
        "MerchantRequestID": txn.merchant_request_id,
        "CheckoutRequestID": txn.checkout_request_id,
        "ResultCode": txn.result_code,
        "ResultDesc": callback_desc(txn.result_code),
    }
    if txn.paid:
        result["CallbackMetadata"] = {"Item": _metadata_items(txn, faults)}
    return {"Body": {"stkCallback": result}}


def _metadata_items(txn: Transaction, faults: Faults) -> list[dict[str, Any]]:
    amount: int | float = (
        txn.amount if faults.amount_in_callback is None else faults.amount_in_callback
    )
    if faults.callback_amount_float:
        amount = float(amount)
    return [
        {"Name": "Amount", "Value": amount},
        {"Name": "MpesaReceiptNumber", "Value": txn.receipt},
        {"Name": "Balance"},
        {"Name": "TransactionDate", "Value": txn.transaction_date},
        {"Name": "PhoneNumber", "Value": int(txn.phone)},
    ]


def dispatch(state: SimulatorState, txn: Transaction, faults: Faults) -> None:
    """Send (or drop) the callback as `faults` say: now, or from a background thread. A later
    outcome's callback (`then_code`) is never sent: it is recorded as dropped."""
    if faults.callback_lost:
        state.add_event(
            "callback_dropped", checkout_request_id=txn.checkout_request_id, url=txn.callback_url
        )
        _drop_later(state, txn)
    elif faults.callback_before_response:
        deliver_all(state, txn, faults)
        _drop_later(state, txn)
    else:
        stop = state.stop_event
        state.start_thread(
            lambda: _deliver_later(state, txn, faults, stop),
            name=f"callback-{txn.checkout_request_id}",
        )


def _deliver_later(state: SimulatorState, txn: Transaction, faults: Faults, stop: Any) -> None:
    try:
        delay = max(0.0, txn.resolves_at + faults.callback_delay - state.clock())
        if not stop.wait(delay):
            deliver_all(state, txn, faults)
        if txn.then_at is not None:
            delay = max(0.0, txn.then_at + faults.callback_delay - state.clock())
            if not stop.wait(delay):
                _drop_later(state, txn)
    except Exception as exc:  # the thread must never die noisily; the record says what happened
        state.add_event(
            "callback_error", checkout_request_id=txn.checkout_request_id, error=repr(exc)
        )


def _drop_later(state: SimulatorState, txn: Transaction) -> None:
    """The callback of the later outcome (a 1037 paid after all) is lost, as it was in
    production."""
    if txn.then_code is not None:
        state.add_event(
            "callback_dropped",
            checkout_request_id=txn.checkout_request_id,
            url=txn.callback_url,
            result_code=txn.then_code,
        )


def deliver_all(state: SimulatorState, txn: Transaction, faults: Faults) -> None:
    """POST the callback `callback_duplicates` times, recording each attempt."""
    body = callback_body(txn, faults)
    for attempt in range(1, faults.callback_duplicates + 1):
        deliver_once(state, txn, body, attempt, faults.callback_timeout)


def deliver_once(
    state: SimulatorState, txn: Transaction, body: dict[str, Any], attempt: int, timeout: float
) -> None:
    """One POST to the CallBackURL; the record gets the HTTP status or the error."""
    headers = {"Content-Type": CALLBACK_CONTENT_TYPE, "Businessshortcode": txn.shortcode}
    outcome: dict[str, Any]
    try:
        reply = requests.post(
            txn.callback_url, data=json.dumps(body).encode(), headers=headers, timeout=timeout
        )
        outcome = {"status": reply.status_code, "response": reply.text[:2000], "error": None}
    except requests.RequestException as exc:
        outcome = {"status": None, "response": None, "error": f"{type(exc).__name__}: {exc}"}
    state.add_event(
        "callback",
        checkout_request_id=txn.checkout_request_id,
        url=txn.callback_url,
        attempt=attempt,
        body=body,
        **outcome,
    )

"""Daraja's Reversal (`POST /mpesa/reversal/v1/request`), as the team's Daraja notes describe
it: validated like Daraja, accepted at once, and the Result POSTed to the ResultURL later.

Money the simulator took (a paid STK push, a menu payment) can be reversed, in whole or in
parts, up to what it was; the rest is refused as M-Pesa would: R000001 "already reversed" once
nothing is left, R000002 for a receipt it does not know, 2001 for a wrong initiator. The
`reversal_answer` fault makes M-Pesa refuse as too old or short of business balance, or call the
QueueTimeOutURL instead. The codes for too old and low balance are not documented; the words
are what PesaTab must show, and they are M-Pesa-like.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from flask import Blueprint, Response, request

from app.simulator import errors, ids, validation
from app.simulator.errors import json_response
from app.simulator.state import SimulatorState
from app.simulator.status import _money, _timeout, envelope, initiator_request, post_result

ALREADY = ("R000001", "The transaction has already been reversed.")
UNKNOWN = ("R000002", "The OriginalTransactionID is invalid.")
TOO_OLD = ("R000003", "The transaction is older than the allowed reversal period.")
LOW_BALANCE = ("1", "The balance is insufficient for the transaction.")
TOO_MUCH = ("R000004", "The amount is more than the original transaction's.")
BAD_INITIATOR = (2001, "The initiator information is invalid.")
_lock = threading.Lock()


def register(bp: Blueprint, state: SimulatorState, bind) -> None:
    bp.add_url_rule(
        "/mpesa/reversal/v1/request", "reversal", bind(reversal, state), methods=["POST"]
    )


def reversed_so_far(state: SimulatorState, receipt: str) -> int:
    """Shillings of `receipt` the simulator has given back."""
    return sum(int(e["amount"]) for e in state.events("reversal_done") if e["receipt"] == receipt)


def reversal(state: SimulatorState) -> Response:
    validation.check_gateway(state, request)
    body = validation.read_json(request)
    if body.get("CommandID") != "TransactionReversal":
        raise errors.bad_request("CommandID")
    receipt = str(body.get("TransactionID") or "").strip().upper()
    if not re.fullmatch(r"[A-Z0-9]{10}", receipt):
        raise errors.bad_request("TransactionID")
    amount = str(body.get("Amount") or "").strip()
    if not re.fullmatch(r"[1-9]\d{0,8}(\.0{1,2})?", amount):
        raise errors.bad_request("Amount")
    party = str(body.get("ReceiverParty") or "").strip()
    if state.shortcode(party) is None:
        raise errors.bad_request("ReceiverParty")
    if str(body.get("RecieverIdentifierType") or "") != "11":
        raise errors.bad_request("RecieverIdentifierType")
    urls, ids_, valid = initiator_request(state, body)
    if valid and state.faults.reversal_answer == "timeout":
        url, result = urls["QueueTimeOutURL"], _timeout(ids_)
    else:
        url = urls["ResultURL"]
        result = _result(state, ids_, receipt, int(amount.split(".")[0]), valid, party)
    state.add_event("reversal_request", receipt=receipt, shortcode=party, valid_initiator=valid)
    state.start_thread(
        lambda: post_result(state, url, result, "reversal_result"), "reversal-result"
    )
    accepted = "Accept the service request successfully."
    return json_response({**ids_, "ResponseCode": "0", "ResponseDescription": accepted})


def _result(state: SimulatorState, ids_: dict, receipt: str, amount: int, valid: bool,
            shortcode: str):  # fmt: skip
    if not valid:
        return envelope(ids_, *BAD_INITIATOR, None)
    found = _money(state, receipt)
    if found is None:
        return envelope(ids_, *UNKNOWN, None)
    answer = state.faults.reversal_answer
    if answer == "too_old":
        return envelope(ids_, *TOO_OLD, None)
    if answer == "low_balance":
        return envelope(ids_, *LOW_BALANCE, None)
    original, payer = found[0], found[1]
    with _lock:  # two reversals of one receipt at once: the second sees the first
        left = original - reversed_so_far(state, receipt)
        if left <= 0:
            return envelope(ids_, *ALREADY, None)
        if amount > left:
            return envelope(ids_, *TOO_MUCH, None)
        state.add_event("reversal_done", receipt=receipt, amount=amount, shortcode=shortcode)
    return envelope(
        ids_,
        0,
        "The service request is processed successfully.",
        _params(state, receipt, amount, payer),
    )


def _params(state: SimulatorState, receipt: str, amount: int, payer: str) -> list[dict[str, Any]]:
    stamp = int(ids.eat_timestamp(state.clock()))
    return [
        {"Key": "DebitAccountBalance", "Value": "Working Account|KES|51661.00|51661.00|0.00|0.00"},
        {"Key": "Amount", "Value": float(amount)},
        {"Key": "TransCompletedTime", "Value": stamp},
        {"Key": "OriginalTransactionID", "Value": receipt},
        {"Key": "Charge", "Value": 0.0},
        {"Key": "CreditPartyPublicName", "Value": payer},
        {"Key": "DebitPartyPublicName", "Value": "PESATAB SIM BAR"},
    ]

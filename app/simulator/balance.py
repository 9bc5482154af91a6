"""Daraja's Account Balance (`POST /mpesa/accountbalance/v1/query`), written from the team's
Daraja notes like the rest of the simulator.

The initiator is checked as Transaction Status checks it (app/simulator/status.py: the
SecurityCredential must decrypt with the simulator's key to SIM_INITIATOR_PASSWORD for
SIM_INITIATOR). The answer is synchronous acceptance, then the Result POSTed to the ResultURL:
`AccountBalance` with the shortcode's accounts as the sandbox lists them (Working, Float,
Utility, Charges Paid, Organization Settlement), each
`name|currency|current|available|reserved|uncleared`, and `BOCompletedTime`; ResultCode 2001
with no parameters for wrong initiator credentials; a POST to the QueueTimeOutURL instead when
the `balance_queue_timeout` fault is on.

The figures are plausible and fixed per shortcode (made from its number), and the working
account also holds the money the simulator took for it: menu payments to the shortcode or its
tills, and paid STK pushes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, request

from app.simulator import errors, ids, validation
from app.simulator.errors import json_response
from app.simulator.state import SimulatorState
from app.simulator.status import envelope, initiator_request, post_result

PATH = "/mpesa/accountbalance/v1/query"
ORGANISATION = "4"
ACCEPTED = "Accept the service request successfully."
SUCCESS = "The service request is processed successfully."
BAD_INITIATOR = "The initiator information is invalid."
QUEUE_TIMEOUT = "The request timed out in the queue."


def register(bp: Blueprint, state: SimulatorState, bind) -> None:
    bp.add_url_rule(PATH, "account_balance", bind(account_balance, state), methods=["POST"])


def account_balance(state: SimulatorState) -> Response:
    """Validate like Daraja, accept, and send the Result (or the queue timeout) later."""
    validation.check_gateway(state, request)
    body = validation.read_json(request)
    if body.get("CommandID") != "AccountBalance":
        raise errors.bad_request("CommandID")
    if str(body.get("IdentifierType") or "") != ORGANISATION:
        raise errors.bad_request("IdentifierType")
    number = str(body.get("PartyA") or "").strip()
    if not number.isdigit() or state.shortcode(number) is None:
        raise errors.bad_request("PartyA")
    remarks = body.get("Remarks")
    if remarks is not None and (not isinstance(remarks, str) or len(remarks) > 100):
        raise errors.bad_request("Remarks")
    urls, ids_, valid = initiator_request(state, body)
    if state.faults.balance_queue_timeout:
        url, result = urls["QueueTimeOutURL"], envelope(ids_, 1, QUEUE_TIMEOUT, None)
    elif not valid:
        url, result = urls["ResultURL"], envelope(ids_, 2001, BAD_INITIATOR, None)
    else:
        url, result = urls["ResultURL"], envelope(ids_, 0, SUCCESS, _parameters(state, number))
    state.add_event("balance_query", shortcode=number, valid_initiator=valid)
    state.start_thread(lambda: post_result(state, url, result, "balance_result"), "balance-result")
    return json_response({**ids_, "ResponseCode": "0", "ResponseDescription": ACCEPTED})


# The figures ----------------------------------------------------------------------------------


def accounts(state: SimulatorState, number: str) -> list[tuple[str, Decimal]]:
    """(account name, balance) of the shortcode now, in the order the sandbox lists them."""
    seed = int(number)
    working = Decimal(40_000 + seed % 50 * 1_000) + Decimal("0.40") + taken(state, number)
    return [
        ("Working Account", working),
        ("Float Account", Decimal("0.00")),
        ("Utility Account", Decimal(12_500 + seed % 7 * 250)),
        ("Charges Paid Account", -Decimal(35 + seed % 9 * 10)),
        ("Organization Settlement Account", Decimal("0.00")),
    ]


def taken(state: SimulatorState, number: str) -> Decimal:
    """The money the simulator took for the shortcode: menu payments (to it or its tills) and
    paid STK pushes, less what its reversals gave back."""
    menu = sum(p["amount"] for p in state.menu_payments() if p.get("shortcode") == number)
    now = state.clock()
    pushes = sum(
        t.amount
        for t in state.transactions()
        if t.shortcode == number and t.resolved(now) and t.code_at(now) == 0
    )
    given_back = sum(
        r["amount"] for r in state.events("reversal_done") if r.get("shortcode") == number
    )
    return Decimal(menu + pushes - given_back)


def balance_text(state: SimulatorState, number: str) -> str:
    """`Working Account|KES|79000.40|79000.40|0.00|0.00&Float Account|KES|...`."""
    zero = Decimal("0.00")
    return "&".join(
        f"{name}|KES|{amount:.2f}|{amount:.2f}|{zero:.2f}|{zero:.2f}"
        for name, amount in accounts(state, number)
    )


# The result -----------------------------------------------------------------------------------


def _parameters(state: SimulatorState, number: str) -> list[dict[str, Any]]:
    return [
        {"Key": "AccountBalance", "Value": balance_text(state, number)},
        {"Key": "BOCompletedTime", "Value": int(ids.eat_timestamp(state.clock()))},
    ]

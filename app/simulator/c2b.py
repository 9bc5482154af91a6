"""Daraja's C2B: registering a shortcode's confirmation and validation URLs, and a customer
paying from the M-Pesa menu (sandbox `simulate`), which POSTs the confirmation to the URL
registered for the shortcode. Written from the team's Daraja notes, as the rest of the
simulator is: refused URL words, v2's masked MSISDN, repeated or lost confirmations by fault.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import requests
from flask import Blueprint, Response, request

from app.simulator import c2b_validate, errors, ids, pull, validation
from app.simulator.errors import json_response
from app.simulator.state import SimulatorState

REFUSED_WORDS = ("mpesa", "m-pesa", "safaricom", "exec", "cmd", "sql", "query")
NO_PRODUCT_CODE = "401.003.01"
NO_PRODUCT_MESSAGE = "Invalid Access Token - Invalid API call as no apiproduct match found"
ALREADY_REGISTERED = "Urls are already registered"
COMMANDS = {"CustomerPayBillOnline": "Pay Bill", "CustomerBuyGoodsOnline": "Buy Goods"}


def register(bp: Blueprint, state: SimulatorState, bind) -> None:
    for version in ("v1", "v2"):
        bp.add_url_rule(
            f"/mpesa/c2b/{version}/registerurl",
            f"c2b_register_{version}",
            bind(register_urls, state),
            methods=["POST"],
        )
    bp.add_url_rule(
        "/mpesa/c2b/v1/simulate", "c2b_simulate", bind(simulate, state), methods=["POST"]
    )


def register_urls(state: SimulatorState) -> Response:
    """`POST /mpesa/c2b/v2/registerurl`: remember where the shortcode's confirmations go.
    Faults: an app without this version's C2B product (`c2b_product`), and production's
    one-time registration (`c2b_register_once`)."""
    validation.check_gateway(state, request)
    version = "v1" if "/c2b/v1/" in request.path else "v2"
    if state.faults.c2b_product not in ("both", version):
        raise errors.DarajaError(401, NO_PRODUCT_CODE, NO_PRODUCT_MESSAGE)
    body = validation.read_json(request)
    number = str(body.get("ShortCode") or "").strip()
    if not number.isdigit() or state.shortcode(number) is None:
        raise errors.bad_request("ShortCode")
    urls = {}
    for key in ("ConfirmationURL", "ValidationURL"):
        url = body.get(key)
        if not isinstance(url, str) or not re.match(r"https?://", url):
            raise errors.bad_request(key)
        if any(word in url.lower() for word in REFUSED_WORDS):
            raise errors.bad_request(key)
        urls[key] = url
    if body.get("ResponseType") not in ("Completed", "Cancelled"):
        raise errors.bad_request("ResponseType")
    if state.faults.c2b_register_once and state.c2b_urls(number) is not None:
        # Integrators report this answer from production; the code is not documented.
        raise errors.DarajaError(500, "500.003.1001", ALREADY_REGISTERED)
    state.register_c2b(number, urls["ConfirmationURL"], urls["ValidationURL"])
    c2b_validate.remember_response_type(state, number, body["ResponseType"])
    return json_response(
        {
            "OriginatorCoversationID": ids.new_merchant_request_id(),  # sic: Daraja's spelling
            "ResponseCode": "0",
            "ResponseDescription": "Success",
        }
    )


def simulate(state: SimulatorState) -> Response:
    """`POST /mpesa/c2b/v1/simulate`: a customer pays the shortcode from the menu; the
    confirmation is POSTed to the registered URL (repeated or lost as the faults say)."""
    validation.check_gateway(state, request)
    body = validation.read_json(request)
    number = str(body.get("ShortCode") or "").strip()
    urls = state.c2b_urls(state.store_of(number))  # a till pays into its store's URLs
    if urls is None:
        raise errors.merchant_error("No ConfirmationURL registered for this ShortCode")
    command = body.get("CommandID")
    amount = body.get("Amount")
    phone = str(body.get("Msisdn") or "")
    if command not in COMMANDS:
        raise errors.bad_request("CommandID")
    if not isinstance(amount, int | str) or not str(amount).isdigit() or int(amount) < 1:
        raise errors.bad_request("Amount")
    if not validation.PHONE_RE.fullmatch(phone):
        raise errors.bad_request("Msisdn")
    pay_from_menu(state, number, command, int(amount), phone, body, urls)
    return json_response(
        {
            "OriginatorCoversationID": ids.new_merchant_request_id(),
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        }
    )


def pay_from_menu(state, number, command, amount, phone, body, urls) -> str | None:
    """A customer pays `number` (a simulate, or a scanned QR: app/simulator/qr.py): asked first
    at the validation URL where validation is on; the receipt, or None when refused (no money
    moved, no confirmation)."""
    receipt = state.new_receipt()
    confirmation = _confirmation(state, number, command, int(amount), phone, body, receipt)
    if not c2b_validate.passes(state, state.store_of(number), urls[1], confirmation):
        return None
    index = state.add_menu_payment(
        {"receipt": receipt, "shortcode": state.store_of(number), "paid_to": number,
         "at": state.clock(), "type": COMMANDS[command], "amount": int(amount),
         "account": confirmation["BillRefNumber"], "msisdn": confirmation["MSISDN"]}
    )  # fmt: skip
    lost, copies = pull.fate(state, index)  # lost ones are still there for Pull to find
    state.add_event("c2b_payment", receipt=receipt, shortcode=number, amount=int(amount),
                    lost=lost, copies=0 if lost else copies)  # fmt: skip
    if not lost:
        state.start_thread(lambda: _post(state, urls[0], confirmation, copies), "c2b-confirm")
    return receipt


def _confirmation(state, number, command, amount, phone, body, receipt) -> dict[str, Any]:
    return {
        "TransactionType": COMMANDS[command],
        "TransID": receipt,
        "TransTime": ids.eat_timestamp(state.clock()),
        "TransAmount": f"{amount}.00",
        "BusinessShortCode": number,
        "BillRefNumber": str(body.get("BillRefNumber") or ""),
        "InvoiceNumber": "",
        "OrgAccountBalance": "",
        "ThirdPartyTransID": "",
        "MSISDN": pull.msisdn_for(state, phone),  # v2 never sends the plain number
        "FirstName": "JANE",
        "MiddleName": "",
        "LastName": "",
    }


def _post(state: SimulatorState, url: str, confirmation: dict, copies: int) -> None:
    for _ in range(copies):
        try:
            sent = time.perf_counter()
            answer = requests.post(url, data=json.dumps(confirmation), timeout=5,
                                   headers={"Content-Type": "application/json"})  # fmt: skip
            state.add_event("c2b_confirmation", url=url, status=answer.status_code,
                            receipt=confirmation["TransID"],
                            seconds=time.perf_counter() - sent)  # fmt: skip
        except requests.RequestException as err:
            state.add_event("c2b_confirmation", url=url, error=type(err).__name__)

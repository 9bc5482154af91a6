"""Daraja's Pull Transactions, and the fates of menu payments' confirmations.

Register (`/pulltransactions/v1/register`) remembers a shortcode's nominated number and callback
URL; query (`/pulltransactions/v1/query`) answers, page by page (`OffSetValue`, `pull_page_size`
a page), the menu payments made to the shortcode or its tills between StartDate and EndDate
(`YYYY-MM-DD HH:MM:SS`, EAT, the last 48 hours only), the ones whose confirmation was lost
included. Daraja's docs do not spell out the answer; this follows what integrators report:
`{ResponseRefID, ResponseCode: "1000", ResponseMessage, Response: [[{transactionId, trxDate,
msisdn, sender, transactiontype, billreference, amount, organizationname}]]}`.

A payment's confirmation is lost or sent twice by `callback_lost`/`callback_duplicates`, or
drawn with `c2b_lost_rate`/`c2b_duplicate_rate`: with `c2b_seed` set, the n-th payment's draw
depends only on the seed and n, so a run is reproducible.
"""

from __future__ import annotations

import hashlib
import random
import re
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, request

from app.simulator import errors, ids, validation
from app.simulator.errors import json_response
from app.simulator.state import SimulatorState

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
WINDOW = timedelta(hours=48)
REFUSED_WORDS = ("mpesa", "m-pesa", "safaricom", "exec", "cmd", "sql", "query")
KINDS = {"Pay Bill": "c2b-pay-bill-debit", "Buy Goods": "c2b-buy-goods-debit"}


def register(bp: Blueprint, state: SimulatorState, bind) -> None:
    bp.add_url_rule(
        "/pulltransactions/v1/register", "pull_register", bind(register_pull, state),
        methods=["POST"],
    )  # fmt: skip
    bp.add_url_rule(
        "/pulltransactions/v1/query", "pull_query", bind(query, state), methods=["POST"]
    )


def fate(state: SimulatorState, index: int) -> tuple[bool, int]:
    """(lost, copies) for the `index`-th menu payment's confirmation."""
    faults = state.faults
    seed = faults.c2b_seed
    draw = random.Random(f"{seed}:{index}").random() if seed is not None else random.random()
    lost = faults.callback_lost or draw < faults.c2b_lost_rate
    twice = faults.c2b_lost_rate <= draw < faults.c2b_lost_rate + faults.c2b_duplicate_rate
    return lost, max(faults.callback_duplicates, 2 if twice else 1)


def msisdn_for(state: SimulatorState, phone: str) -> str:
    """The payer as v2 confirmations and Pull show them: masked, or a SHA-256 hex hash."""
    if state.faults.c2b_msisdn == "hashed":
        return hashlib.sha256(phone.encode()).hexdigest()
    return f"{phone[:4]} ***** {phone[-3:]}"


def register_pull(state: SimulatorState) -> Response:
    """`POST /pulltransactions/v1/register`: the shortcode may be queried from now on."""
    validation.check_gateway(state, request)
    body = validation.read_json(request)
    number = str(body.get("ShortCode") or "").strip()
    if not number.isdigit() or state.shortcode(number) is None:
        raise errors.bad_request("ShortCode")
    if body.get("RequestType") != "Pull":
        raise errors.bad_request("RequestType")
    nominated = str(body.get("NominatedNumber") or "")
    if not validation.PHONE_RE.fullmatch(nominated):
        raise errors.bad_request("NominatedNumber")
    url = body.get("CallBackURL")
    if not isinstance(url, str) or not re.match(r"https?://\S+$", url):
        raise errors.bad_request("CallBackURL")
    if any(word in url.lower() for word in REFUSED_WORDS):
        raise errors.bad_request("CallBackURL")
    state.register_pull(number, nominated, url)
    return json_response(
        {
            "ResponseRefID": ids.new_request_id(),
            "ResponseStatus": "1000",
            "ShortCode": number,
            "ResponseDescription": "Shortcode Registered Successfully",
        }
    )


def _date(body: dict[str, Any], key: str) -> datetime:
    try:
        return datetime.strptime(str(body.get(key) or ""), DATE_FORMAT).replace(tzinfo=ids.EAT)
    except ValueError:
        raise errors.bad_request(key) from None


def query(state: SimulatorState) -> Response:
    """`POST /pulltransactions/v1/query`: one page of the window's transactions."""
    validation.check_gateway(state, request)
    body = validation.read_json(request)
    number = str(body.get("ShortCode") or "").strip()
    if state.pull_registration(number) is None:
        raise errors.merchant_error("ShortCode is not registered for Pull Transactions")
    start, end = _date(body, "StartDate"), _date(body, "EndDate")
    now = ids.eat_datetime(state.clock())
    if start < now - WINDOW or end <= start:
        raise errors.bad_request("StartDate")
    offset = str(body.get("OffSetValue") if body.get("OffSetValue") is not None else "")
    if not offset.isdigit():
        raise errors.bad_request("OffSetValue")
    window = [
        p
        for p in state.menu_payments()
        if p["shortcode"] == number and start <= _second(p["at"]) <= end
    ]
    window.sort(key=lambda p: (p["at"], p["receipt"]))
    size = state.faults.pull_page_size
    page = window[int(offset) : int(offset) + size]
    return json_response(
        {
            "ResponseRefID": ids.new_request_id(),
            "ResponseCode": "1000",
            "ResponseMessage": "Success" if page else "No records found",
            "Response": [[_item(p) for p in page]],
        }
    )


def _second(epoch: float) -> datetime:
    return ids.eat_datetime(epoch).replace(microsecond=0)


def _item(payment: dict[str, Any]) -> dict[str, Any]:
    return {
        "transactionId": payment["receipt"],
        "trxDate": _second(payment["at"]).isoformat(),
        "msisdn": payment["msisdn"],
        "sender": "",
        "transactiontype": KINDS[payment["type"]],
        "billreference": payment["account"],
        "amount": f"{payment['amount']}.00",
        "organizationname": payment["paid_to"],
    }

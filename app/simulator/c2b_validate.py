"""Daraja's C2B validation, as the simulator plays it: where external validation is on for a
shortcode (Safaricom switches it on per shortcode; here the control API does), M-Pesa asks the
registered ValidationURL before the money moves, and a refusal means no money moved and no
confirmation. An answer that does not come within the timeout (~8 s), or is not JSON, is
decided by the ResponseType registered with the URLs: "Completed" pays, "Cancelled" does not.

The simulator asks before it answers `simulate` (or a QR scan), so a test knows the outcome
when that call returns.

    POST /_control/c2b-validation {"shortcode": "174379", "enabled": true, "timeout": 8}
"""

from __future__ import annotations

import json
from typing import Any

import requests
from flask import Response, request

from app.simulator.errors import json_response
from app.simulator.state import SimulatorState

DARAJA_TIMEOUT = 8.0
ACCEPTED_CODES = ("0", 0)


def remember_response_type(state: SimulatorState, shortcode: str, response_type: str) -> None:
    """What M-Pesa does for this shortcode when the validation URL is silent (at registerurl)."""
    state.c2b_validation(shortcode)["response_type"] = response_type


def passes(state: SimulatorState, shortcode: str, url: str, question: dict[str, Any]) -> bool:
    """Ask the validation URL when validation is on for `shortcode`; True when the money may
    move. Every question and its outcome are in the record (`c2b_validation`)."""
    settings = dict(state.c2b_validation(shortcode))
    if not settings.get("enabled"):
        return True
    timeout = float(settings.get("timeout", DARAJA_TIMEOUT))
    silent_pays = settings.get("response_type", "Completed") == "Completed"
    receipt = question["TransID"]
    try:
        answer = requests.post(url, data=json.dumps(question), timeout=timeout,
                               headers={"Content-Type": "application/json"})  # fmt: skip
        code = answer.json().get("ResultCode") if answer.status_code == 200 else None
    except (requests.RequestException, ValueError, AttributeError) as err:
        state.add_event("c2b_validation", receipt=receipt, error=type(err).__name__,
                        paid=silent_pays)  # fmt: skip
        return silent_pays
    if code is None:
        state.add_event("c2b_validation", receipt=receipt, status=answer.status_code,
                        paid=silent_pays)  # fmt: skip
        return silent_pays
    paid = code in ACCEPTED_CODES
    state.add_event("c2b_validation", receipt=receipt, result_code=str(code), paid=paid)
    if not paid:
        state.add_event("c2b_rejected", receipt=receipt, shortcode=shortcode,
                        result_code=str(code), amount=question.get("TransAmount"))  # fmt: skip
    return paid


def control(state: SimulatorState) -> Response:
    """GET `?shortcode=`: the shortcode's validation settings. POST `{"shortcode", "enabled",
    "timeout"?}`: switch external validation on or off for it."""
    if request.method == "GET":
        shortcode = request.args.get("shortcode", "")
        return json_response({"shortcode": shortcode, **state.c2b_validation(shortcode)})
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not str(body.get("shortcode", "")).isdigit():
        return json_response({"error": 'send {"shortcode": "...", "enabled": true}'}, 400)
    timeout = body.get("timeout", DARAJA_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        return json_response({"error": "timeout must be a positive number of seconds"}, 400)
    settings = state.c2b_validation(str(body["shortcode"]))
    settings.update(enabled=bool(body.get("enabled")), timeout=float(timeout))
    return json_response({"shortcode": str(body["shortcode"]), **settings})

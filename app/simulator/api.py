"""Daraja's routes: OAuth, STK push, STK query, the gateway's unknown-path fault, and recording.

Views receive the `SimulatorState` through `functools.partial` (bound in `register`), never
through a global, so several simulators can live in one process.
"""

from __future__ import annotations

import base64
import hmac
import json
from functools import partial, update_wrapper
from typing import Any

from flask import Blueprint, Response, request

from app.simulator import (
    balance,
    c2b,
    callbacks,
    errors,
    ids,
    pull,
    qr,
    reversal,
    status,
    validation,
)
from app.simulator.errors import DarajaError, EmptyBadRequest, json_response
from app.simulator.faults import Faults
from app.simulator.models import PushRequest, Transaction
from app.simulator.outcomes import (
    LATE_CODES,
    PAID,
    callback_desc,
    later_outcome_for,
    outcome_for,
    query_desc,
    setup_outcome,
)
from app.simulator.state import SimulatorState

ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ACCEPTED = "Success. Request accepted for processing"
QUERY_ACCEPTED = "The service request has been accepted successsfully"  # sic: Daraja's spelling
LOCKED = "Unable to lock subscriber, a transaction is already in process for the current subscriber"
STK_PRODUCT = "stk"


def bind(view, state):
    """`view` with the state bound, keeping its name: Flask extensions (Flask-Limiter) read
    `__name__`/`__qualname__` of every view, which a bare functools.partial lacks."""
    return update_wrapper(partial(view, state), view)


def register(bp: Blueprint, state: SimulatorState) -> None:
    """Add the Daraja routes to `bp`, bound to `state`."""
    bp.add_url_rule("/oauth/v1/generate", "oauth", bind(generate_token, state), methods=["GET"])
    bp.add_url_rule(
        "/mpesa/stkpush/v1/processrequest", "stk_push", bind(stk_push, state), methods=["POST"]
    )
    bp.add_url_rule(
        "/mpesa/stkpushquery/v1/query", "stk_query", bind(stk_query, state), methods=["POST"]
    )
    c2b.register(bp, state, bind)
    qr.register(bp, state, bind)
    pull.register(bp, state, bind)
    status.register(bp, state, bind)
    reversal.register(bp, state, bind)
    balance.register(bp, state, bind)
    unknown = bind(unknown_path, state)
    bp.add_url_rule("/", "unknown", unknown, defaults={"path": ""}, methods=ANY_METHOD)
    bp.add_url_rule("/<path:path>", "unknown", unknown, methods=ANY_METHOD)
    bp.register_error_handler(DarajaError, DarajaError.response)
    bp.register_error_handler(EmptyBadRequest, EmptyBadRequest.response)
    bp.after_request(partial(record_exchange, state))


# OAuth -------------------------------------------------------------------------------------


def generate_token(state: SimulatorState) -> Response:
    """`GET /oauth/v1/generate?grant_type=client_credentials` with HTTP Basic."""
    if request.args.get("grant_type") != "client_credentials":
        raise DarajaError(400, "400.008.02", "Invalid grant type passed")
    key, secret = _basic_credentials(request.headers.get("Authorization", ""))
    app = state.app(key)
    if app is None or not hmac.compare_digest(app.secret.encode(), secret.encode()):
        raise EmptyBadRequest()
    if STK_PRODUCT not in app.products:
        raise DarajaError(
            401, "401.003.01", "Error Occurred - Invalid API call as no apiproduct match found"
        )
    expires_in: int | str = 3599 if state.faults.expires_in_number else "3599"
    return json_response({"access_token": state.issue_token(), "expires_in": expires_in})


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError are both ValueErrors
        decoded = ""
    key, colon, secret = decoded.partition(":")
    if scheme != "Basic" or not colon:
        raise DarajaError(400, "400.008.01", "Invalid Authentication passed")
    return key, secret


# STK push ----------------------------------------------------------------------------------


def stk_push(state: SimulatorState) -> Response:
    """`POST /mpesa/stkpush/v1/processrequest`: validate, remember the truth, schedule the
    callback."""
    validation.check_gateway(state, request)
    push = validation.validate_push(state, validation.read_json(request))
    faults = state.faults
    if faults.lock_subscriber:
        raise errors.merchant_error(LOCKED)
    txn = start_transaction(state, push, faults)
    state.add_transaction(txn)
    callbacks.dispatch(state, txn, faults)
    # The push has reached the customer; a slow answer only makes the client time out.
    state.stop_event.wait(faults.push_delay)
    return json_response(_accepted(txn))


def start_transaction(state: SimulatorState, push: PushRequest, faults: Faults) -> Transaction:
    """Decide the outcome and its timing for an accepted push."""
    now = state.clock()
    code, then = _outcome(push, faults)
    resolves_at = now + _time_to_resolve(code, faults)
    return Transaction(
        checkout_request_id=state.new_checkout_request_id(),
        merchant_request_id=ids.new_merchant_request_id(),
        shortcode=push.shortcode.number,
        transaction_type=push.transaction_type,
        party_a=push.party_a,
        party_b=push.party_b,
        phone=push.phone,
        amount=push.amount,
        account_reference=push.account_reference,
        transaction_desc=push.transaction_desc,
        callback_url=push.callback_url,
        result_code=code,
        result_desc=callback_desc(code),
        receipt=state.new_receipt() if PAID in (code, then) else None,
        created_at=now,
        resolves_at=resolves_at,
        transaction_date=int(ids.eat_timestamp(resolves_at)),
        then_code=then,
        then_at=None if then is None else resolves_at + faults.late_payment_delay,
    )


def _outcome(push: PushRequest, faults: Faults) -> tuple[int | str, int | None]:
    """A Till/PayBill set-up error wins; then the phone-number table (or `default_outcome`).
    Also what the outcome turns into later (None: nothing)."""
    setup_error = setup_outcome(push.shortcode, push.transaction_type, push.party_b)
    if setup_error is not None:
        return setup_error, None
    default = faults.default_outcome
    return outcome_for(push.phone, default), later_outcome_for(push.phone, default)


def _time_to_resolve(code: int | str, faults: Faults) -> float:
    if faults.callback_before_response:
        return 0.0
    return faults.prompt_lifetime if code in LATE_CODES else faults.decision_delay


def _accepted(txn: Transaction) -> dict[str, str]:
    return {
        "MerchantRequestID": txn.merchant_request_id,
        "CheckoutRequestID": txn.checkout_request_id,
        "ResponseCode": "0",
        "ResponseDescription": ACCEPTED,
        "CustomerMessage": ACCEPTED,
    }


# STK query ---------------------------------------------------------------------------------


def stk_query(state: SimulatorState) -> Response:
    """`POST /mpesa/stkpushquery/v1/query`: unknown, pending (two forms) or finished."""
    validation.check_gateway(state, request)
    body = validation.read_json(request)
    shortcode = validation.check_credentials(state, body)
    checkout_id = validation.checkout_request_id(body)
    txn = state.transaction(checkout_id)
    if state.consume("query_unknown_calls") or txn is None or txn.shortcode != shortcode.number:
        raise errors.merchant_error("The transaction does not Exist", request_id=checkout_id)
    now = state.clock()
    if state.consume("query_pending_calls") or not txn.resolved(now):
        return _pending(txn, state.faults.query_pending_form)
    code = txn.code_at(now)
    return json_response(_query_answer(txn, str(code), query_desc(code)))


def _pending(txn: Transaction, form: str) -> Response:
    if form == "500":
        raise errors.merchant_error(
            "The transaction is being processed", request_id=txn.checkout_request_id
        )
    return json_response(_query_answer(txn, "4999", "The transaction is still under processing"))


def _query_answer(txn: Transaction, result_code: str, result_desc: str) -> dict[str, str]:
    return {
        "ResponseCode": "0",
        "ResponseDescription": QUERY_ACCEPTED,
        "MerchantRequestID": txn.merchant_request_id,
        "CheckoutRequestID": txn.checkout_request_id,
        "ResultCode": result_code,
        "ResultDesc": result_desc,
    }


# Everything else ---------------------------------------------------------------------------


def unknown_path(state: SimulatorState, path: str) -> Response:
    """Any path Daraja does not route: the gateway's fault shape, 404."""
    return errors.gateway_fault("/" + path)


def record_exchange(state: SimulatorState, response: Response) -> Response:
    """after_request: put every API request and its answer in the record (not control calls)."""
    endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
    if not endpoint.startswith("control_"):
        state.add_event(
            "request",
            api=endpoint or "unknown",
            method=request.method,
            path=request.path,
            args=request.args.to_dict(),
            content_type=request.content_type,
            authorization=request.headers.get("Authorization", "").partition(" ")[0] or None,
            body=_request_body(),
            status=response.status_code,
            response=_parse(response.get_data(as_text=True)),
        )
    return response


def _request_body() -> Any:
    body = _parse(request.get_data(as_text=True))
    if isinstance(body, dict) and "Password" in body:
        body = {**body, "Password": "***"}
    if isinstance(body, dict) and "SecurityCredential" in body:
        body = {**body, "SecurityCredential": "***"}
    return body


def _parse(text: str) -> Any:
    """JSON when it is JSON, the text (cut short) when not, None when empty."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text[:2000]

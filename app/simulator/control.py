"""The control API: drive a simulator in another process (faults, reset, record, truth).

Mounted in the same blueprint as the Daraja routes, under `/_control/`; it only exists when the
simulator is switched on.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from app.simulator.api import bind
from app.simulator.errors import json_response
from app.simulator.state import SimulatorState


def register(bp: Blueprint, state: SimulatorState) -> None:
    """Add the `/_control/...` routes to `bp`, bound to `state`."""
    routes = [
        ("/_control/faults", "control_faults", faults, ["GET", "POST", "DELETE"]),
        ("/_control/reset", "control_reset", reset, ["POST"]),
        ("/_control/revoke-tokens", "control_revoke_tokens", revoke_tokens, ["POST"]),
        ("/_control/record", "control_record", record, ["GET"]),
        ("/_control/transactions", "control_transactions", transactions, ["GET"]),
        ("/_control/apps", "control_apps", add_app, ["POST"]),
        ("/_control/shortcodes", "control_shortcodes", add_shortcode, ["POST"]),
    ]
    for rule, endpoint, view, methods in routes:
        bp.add_url_rule(rule, endpoint, bind(view, state), methods=methods)


def _json_object() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValueError("send a JSON object")
    return body


def _refused(exc: Exception) -> Response:
    return json_response({"error": str(exc)}, 400)


def faults(state: SimulatorState) -> Response:
    """GET: current faults. POST: change the named ones. DELETE: back to the baseline."""
    try:
        if request.method == "POST":
            state.set_faults(**_json_object())
        elif request.method == "DELETE":
            state.clear_faults()
    except (TypeError, ValueError) as exc:
        return _refused(exc)
    return json_response(state.faults.to_dict())


def reset(state: SimulatorState) -> Response:
    """Forget tokens, transactions and the record; faults back to the baseline."""
    state.reset()
    return json_response({"reset": True})


def revoke_tokens(state: SimulatorState) -> Response:
    """Every token issued so far stops working."""
    state.revoke_tokens()
    return json_response({"revoked": True})


def record(state: SimulatorState) -> Response:
    """The record, optionally `?kind=request|callback|callback_dropped|callback_error`."""
    return json_response(state.events(request.args.get("kind")))


def transactions(state: SimulatorState) -> Response:
    """The truth about every accepted push."""
    return json_response([txn.to_dict() for txn in state.transactions()])


def add_app(state: SimulatorState) -> Response:
    """`{"key", "secret", "products": ["stk"]}`: register a Daraja app."""
    try:
        body = _json_object()
        app = state.add_app(str(body["key"]), str(body["secret"]), body.get("products", ["stk"]))
    except (KeyError, TypeError, ValueError) as exc:
        return _refused(exc)
    return json_response({"key": app.key, "products": sorted(app.products)}, 201)


def add_shortcode(state: SimulatorState) -> Response:
    """`{"shortcode", "passkey", "kind": "paybill"|"till", "tills": [...]}`: register a shortcode."""
    try:
        body = _json_object()
        shortcode = state.add_shortcode(
            str(body["shortcode"]),
            str(body["passkey"]),
            body.get("kind", "paybill"),
            body.get("tills", []),
        )
    except (KeyError, TypeError, ValueError) as exc:
        return _refused(exc)
    return json_response(
        {"shortcode": shortcode.number, "kind": shortcode.kind, "tills": sorted(shortcode.tills)},
        201,
    )

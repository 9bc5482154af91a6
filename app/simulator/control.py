"""The control API: drive a simulator in another process (faults, reset, record, truth).

Mounted in the same blueprint as the Daraja routes, under `/_control/`; it only exists when the
simulator is switched on, and it answers only a caller that proves it may drive this simulator:
the `X-Simulator-Secret` header with this simulator's own secret (compared in constant time), or
whatever the host app's `allow()` accepts (PesaTab: a signed-in operator). Anyone else gets the
gateway's 404 for an unknown path, as if the route did not exist.

Over HTTP the record and the transactions never carry a callback URL's secret: a CallBackURL is
how Daraja's callbacks are authenticated (PesaTab's is `/hooks/stk/<token>`), so whoever reads it
can settle a payment. Every URL in what these routes serve has its last path segment, query,
fragment and user:password replaced by `***`, and those parts are blanked wherever else they
appear (an error text naming the path, say). The in-process `SimulatorState` keeps them whole
for tests.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, Response, request

from app.simulator import c2b_validate, qr
from app.simulator.api import bind
from app.simulator.errors import gateway_fault, json_response
from app.simulator.state import SimulatorState

CONTROL_HEADER = "X-Simulator-Secret"
GET_POST = ["GET", "POST"]
CONTROL_ENV = "DARAJA_SIMULATOR_SECRET"  # a standalone simulator's secret (else made at start)
MIN_SECRET_LENGTH = 16
REDACTED = "***"
SECRET_KEYS = frozenset({"access_token", "Password"})  # values always blanked over HTTP
# Parts of a callback URL shorter than this are not looked for in free text (they would blank
# ordinary words); in the URL itself they are always blanked.
MIN_SCRUBBED = 8
_URL = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)


def new_secret(environ: Mapping[str, str] | None = None) -> str:
    """`DARAJA_SIMULATOR_SECRET` if set, else a fresh random secret (standalone simulators)."""
    env = os.environ if environ is None else environ
    return env.get(CONTROL_ENV) or secrets.token_urlsafe(32)


def register(
    bp: Blueprint,
    state: SimulatorState,
    *,
    secret: str | None = None,
    allow: Callable[[], bool] | None = None,
) -> None:
    """Add the `/_control/...` routes to `bp`, bound to `state`.

    A request needs `secret` in the `X-Simulator-Secret` header, or `allow()` true. Neither
    given: the routes refuse everyone over HTTP (use the state in-process).
    """
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"the simulator's control secret needs {MIN_SECRET_LENGTH}+ characters")
    routes = [
        ("/_control/faults", "control_faults", faults, ["GET", "POST", "DELETE"]),
        ("/_control/reset", "control_reset", reset, ["POST"]),
        ("/_control/revoke-tokens", "control_revoke_tokens", revoke_tokens, ["POST"]),
        ("/_control/record", "control_record", record, ["GET"]),
        ("/_control/transactions", "control_transactions", transactions, ["GET"]),
        ("/_control/apps", "control_apps", add_app, ["POST"]),
        ("/_control/shortcodes", "control_shortcodes", add_shortcode, ["POST"]),
        ("/_control/c2b-validation", "control_c2b_validation", c2b_validate.control, GET_POST),
        ("/_control/qr-scan", "control_qr_scan", qr.scan, ["POST"]),
    ]
    for rule, endpoint, view, methods in routes:
        guarded = _guarded(bind(view, state), rule, secret, allow)
        bp.add_url_rule(rule, endpoint, guarded, methods=methods)


def _guarded(
    view: Callable[[], Response], rule: str, secret: str | None, allow: Callable[[], bool] | None
) -> Callable[[], Response]:
    @wraps(view)
    def guarded() -> Response:
        if not (_has_secret(secret) or (allow is not None and allow())):
            return gateway_fault(rule)  # exactly what an unknown path answers
        return view()

    return guarded


def _has_secret(secret: str | None) -> bool:
    given = request.headers.get(CONTROL_HEADER)
    if secret is None or not given:
        return False
    return hmac.compare_digest(given.encode(), secret.encode())


# What the record looks like over HTTP ------------------------------------------------------


SECRET_SEGMENT = 24  # secrets.token_urlsafe(24) is 32 characters; no Daraja path word is 24


def redact_url(url: str) -> str:
    """`url` with its last path segment, query, fragment and user:password replaced by ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:  # e.g. an unclosed IPv6 bracket: keep nothing but the scheme
        return url.partition("://")[0] + "://" + REDACTED
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    segments = parts.path.split("/")
    for i in range(len(segments) - 1, -1, -1):
        if segments[i]:
            segments[i] = REDACTED
            break
    query = REDACTED if parts.query else ""
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, "/".join(segments), query, fragment))


def _secret_parts(url: str) -> set[str]:
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return {url.partition("://")[2]}
    segments = [segment for segment in parts.path.split("/") if segment]
    # A secret can sit inside the path too (C2B and Pull URLs: /hooks/c2b/<secret>/pull):
    # every segment as long as a generated secret is blanked as well.
    inner = [segment for segment in segments if len(segment) >= SECRET_SEGMENT]
    return {parts.query, parts.fragment, netloc.rpartition("@")[0], *segments[-1:], *inner}


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


class Redactor:
    """Blanks, in JSON-ready data, the secret parts of every URL found in `everything`."""

    def __init__(self, everything: Any) -> None:
        parts: set[str] = set()
        for text in _strings(everything):
            for url in _URL.findall(text):
                parts.update(_secret_parts(url))
        long_parts = (part for part in parts if len(part) >= MIN_SCRUBBED)
        self.parts = sorted(long_parts, key=len, reverse=True)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: REDACTED if key in SECRET_KEYS and item is not None else self(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self(item) for item in value]
        if isinstance(value, str):
            text = _URL.sub(lambda match: redact_url(match.group(0)), value)
            for part in self.parts:
                text = text.replace(part, REDACTED)
            return text
        return value


def _public(state: SimulatorState, served: Any) -> Any:
    """`served` as the HTTP routes may show it (secrets looked for in the whole state)."""
    everything = [state.events(), [txn.to_dict() for txn in state.transactions()]]
    return Redactor(everything)(served)


# The routes --------------------------------------------------------------------------------


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
    return json_response(_public(state, state.events(request.args.get("kind"))))


def transactions(state: SimulatorState) -> Response:
    """The truth about every accepted push."""
    return json_response(_public(state, [txn.to_dict() for txn in state.transactions()]))


def add_app(state: SimulatorState) -> Response:
    """`{"key", "secret", "products": ["stk"]}`: register a Daraja app."""
    try:
        body = _json_object()
        app = state.add_app(str(body["key"]), str(body["secret"]), body.get("products", ["stk"]))
    except (KeyError, TypeError, ValueError) as exc:
        return _refused(exc)
    return json_response({"key": app.key, "products": sorted(app.products)}, 201)


def add_shortcode(state: SimulatorState) -> Response:
    """`{"shortcode", "passkey", "kind": "paybill"|"till", "tills": [...]}`: register a
    shortcode."""
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

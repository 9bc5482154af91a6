"""Where Safaricom calls us: `POST /hooks/stk/<token>` and the C2B confirmation and validation
URLs (`/hooks/c2b/<secret>/...`). No login, no CSRF, always acknowledged.

The body is committed first (callbacks.store), then applied: just after the answer, by this
process's applier thread (the default, CALLBACK_APPLY=background), or before it (inline)."""

from __future__ import annotations

import sys

from flask import Blueprint, current_app, jsonify, request

from app.extensions import csrf, db, limiter
from app.payments import c2b, c2b_pull, callbacks, initiator
from app.payments.applier import applier_for
from app.payments.c2b_validation import answer as validation_answer

bp = Blueprint("hooks", __name__, url_prefix="/hooks")
csrf.exempt(bp)
limiter.exempt(bp)


def _is_hook() -> bool:
    return request.blueprint == "hooks"


# Exempt already; the filter also skips the limiter's look-up of that exemption on every
# request (~4% of a callback's CPU: Safaricom's callbacks are the hottest path, issue 16).
limiter.request_filter(_is_hook)

ACK = {"ResultCode": 0, "ResultDesc": "Accepted"}


@bp.post("/stk/<token>")
def stk_callback(token: str):
    limit = current_app.config["CALLBACK_MAX_BYTES"]
    # MAX_CONTENT_LENGTH would refuse a big body before it is stored; we read at most limit + 1
    # bytes ourselves, so lift it here (None would fall back to the config).
    request.max_content_length = sys.maxsize
    body = request.stream.read(limit + 1)
    truncated = len(body) > limit
    size = request.content_length or len(body)
    source = request.remote_addr
    untrusted = (
        current_app.config["CALLBACK_STRICT_SOURCES"] and source not in callbacks.KNOWN_SOURCES
    )
    event = callbacks.store(
        token,
        body[:limit],
        source=source,
        headers=dict(request.headers),
        size=size,
        truncated=truncated,
        untrusted=untrusted,
    )
    if truncated:
        callbacks.apply(event)
        return jsonify(ResultCode=1, ResultDesc="Rejected: body too large"), 413
    if untrusted:  # kept, never applied
        return jsonify(ACK)
    background = current_app.config["CALLBACK_APPLY"] == "background"
    if not (background and applier_for(current_app._get_current_object()).submit(event)):
        callbacks.apply(event)  # inline, or the queue is full: applied before the answer
    return jsonify(ACK)


@bp.post("/c2b/<secret>/confirmation")
def c2b_confirmation(secret: str):
    """Money paid from the M-Pesa menu: stored first, applied once (app/payments/c2b.py),
    always acknowledged as Daraja expects; an error on our side leaves it pending, never a 5xx."""
    limit = current_app.config["CALLBACK_MAX_BYTES"]
    request.max_content_length = sys.maxsize
    body = request.stream.read(limit + 1)
    too_large = len(body) > limit
    record = c2b.store(
        secret[:64],
        body[:limit],
        source=request.remote_addr,
        size=request.content_length or len(body),
        too_large=too_large,
    )
    try:
        c2b.apply(record)
    except Exception:  # stored and pending: nothing is lost, and Safaricom is not told to retry
        current_app.logger.exception("C2B confirmation %s kept pending", record.id)
        db.session.rollback()
    return jsonify(c2b.ACK)


@bp.post("/c2b/<secret>/pull")
def c2b_pull_notice(secret: str):
    """What Safaricom sends to the Pull Transactions callback URL: kept, acknowledged, never
    money (menu money comes from confirmations and from the pull job's queries)."""
    limit = current_app.config["CALLBACK_MAX_BYTES"]
    request.max_content_length = sys.maxsize
    body = request.stream.read(limit + 1)
    c2b_pull.store_notice(
        secret[:64],
        body[:limit],
        source=request.remote_addr,
        size=request.content_length or len(body),
    )
    return jsonify(c2b.ACK)


@bp.post("/c2b/<secret>/validation")
def c2b_validation(secret: str):
    """Asked before the money moves (only where Safaricom enabled validation for the shortcode):
    stored, then answered by the bar's rule within its own deadline (app/payments/
    c2b_validation.py); accepted whenever it cannot decide in time, never a 5xx."""
    limit = current_app.config["CALLBACK_MAX_BYTES"]
    request.max_content_length = sys.maxsize
    try:
        body = request.stream.read(limit + 1)
        size = request.content_length or len(body)
        return jsonify(
            validation_answer(
                secret, body[:limit], source=request.remote_addr, size=size,
                too_large=len(body) > limit,
            )
        )  # fmt: skip
    except Exception:  # a bar that cannot decide must not lose the money
        current_app.logger.exception("C2B validation answered without a decision")
        return jsonify(c2b.ACCEPT)


@bp.post("/result/<secret>")
def initiator_result(secret: str):
    """The answer to a request signed with the bar's initiator credentials (Transaction Status;
    later Reversal and Account Balance): stored first, applied once (app/payments/initiator.py)."""
    return _initiator_hook(secret, initiator.RESULT)


@bp.post("/timeout/<secret>")
def initiator_timeout(secret: str):
    """M-Pesa's queue timed out on such a request: stored first, then the request stops waiting."""
    return _initiator_hook(secret, initiator.TIMEOUT)


def _initiator_hook(secret: str, endpoint: str):
    limit = current_app.config["CALLBACK_MAX_BYTES"]
    request.max_content_length = sys.maxsize
    body = request.stream.read(limit + 1)
    record = initiator.store(
        secret,
        endpoint,
        body[:limit],
        source=request.remote_addr,
        size=request.content_length or len(body),
        too_large=len(body) > limit,
    )
    try:
        initiator.apply(record)
    except Exception:  # stored and pending: nothing is lost, and Safaricom gets its answer
        current_app.logger.exception("Initiator result %s kept pending", record.id)
        db.session.rollback()
    return jsonify(ACK)

"""The views of /api/v1: parse, call one function, answer JSON."""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from app import logging_setup
from app.api import keys, openapi
from app.api import payments as api_payments
from app.api.errors import init_blueprint
from app.api.validation import parse_idempotency_key, parse_list_filters, parse_payment, read_json
from app.extensions import csrf, limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)
init_blueprint(bp)

DEFAULT_RATE_LIMIT = "60 per minute"
PUBLIC_ENDPOINTS = {"api.openapi_document"}


def _rate_limit() -> str:
    return current_app.config.get("API_RATE_LIMIT") or DEFAULT_RATE_LIMIT


def _key_id() -> str:
    return f"api-key:{g.api_key.id}"


# One budget per key across every endpoint, counted after the key is known.
per_key_limit = limiter.shared_limit(_rate_limit, scope="api", key_func=_key_id)


@bp.before_request
def _authenticate():
    if request.endpoint not in PUBLIC_ENDPOINTS:
        g.api_key = keys.authenticate(request.headers.get("Authorization"))
        logging_setup.bind(bar_id=g.api_key.bar_id)  # the logs read this id, never the key


@bp.post("/payments")
@per_key_limit
def create_payment():
    body = read_json(request)
    data = parse_payment(body, current_app.config["MPESA_MAX_AMOUNT"])
    idempotency_key = parse_idempotency_key(request.headers.get("Idempotency-Key"))
    payment, created = api_payments.create_payment(g.api_key, data, idempotency_key)
    return jsonify(api_payments.payment_json(payment)), 201 if created else 200


@bp.get("/payments/<int(max=2147483647):payment_id>")
@per_key_limit
def get_payment(payment_id: int):
    payment = api_payments.find_payment(g.api_key.bar_id, payment_id)
    return jsonify(api_payments.payment_json(payment))


@bp.get("/payments")
@per_key_limit
def list_payments():
    filters = parse_list_filters(request.args)
    found = api_payments.list_payments(g.api_key.bar_id, filters)
    return jsonify(payments=[api_payments.payment_json(p) for p in found])


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(openapi.document())

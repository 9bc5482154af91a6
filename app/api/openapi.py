"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json.

tests/test_api.py checks every response the tests provoke against the schemas here, so the
document cannot drift from what the views answer.
"""

from __future__ import annotations

import copy

from flask import current_app

from app.api.validation import DEFAULT_DESCRIPTION, IDEMPOTENCY_KEY, LIST_LIMIT, MAX_ID, STATUSES

JSON = "application/json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(_ref("Error"), description)


def _nullable(kind: str, **extra) -> dict:
    return {"type": [kind, "null"], **extra}


PAYMENT = {
    "type": "object",
    "required": [
        "id",
        "status",
        "amount",
        "phone",
        "reference",
        "description",
        "tab_id",
        "receipt",
        "result_code",
        "message",
        "created_at",
        "settled_at",
        "flagged",
    ],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "status": {
            "type": "string",
            "enum": list(STATUSES),
            "description": "created, sent and unknown are still in flight; the others are final. "
            "Only paid means money arrived.",
        },
        "amount": {"type": "integer", "minimum": 1, "description": "Whole Kenya shillings."},
        "phone": {
            "type": "string",
            "pattern": "^254[17][0-9]{8}$",
            "description": "The customer's number in Daraja's form.",
        },
        "reference": {"type": "string", "description": "Daraja's AccountReference."},
        "description": {"type": "string", "maxLength": 13},
        "tab_id": _nullable("integer"),
        "receipt": _nullable("string", description="The M-Pesa receipt, once paid."),
        "result_code": _nullable("string", description="Daraja's ResultCode, once settled."),
        "message": {"type": "string", "description": "What the cashier's screen says about it."},
        "created_at": {"type": "string", "format": "date-time", "pattern": "Z$"},
        "settled_at": _nullable("string", format="date-time", pattern="Z$"),
        "flagged": {
            "type": "boolean",
            "description": "Something needs a person to look (late success, mismatch).",
        },
    },
}

PAYMENT_CREATE = {
    "type": "object",
    "required": ["phone", "amount", "reference"],
    "additionalProperties": False,
    "properties": {
        "phone": {
            "type": "string",
            "examples": ["0712 345 678", "254712345678"],
            "description": "A Kenyan mobile number (07…, 01…, +254…).",
        },
        "amount": {
            "type": "integer",
            "minimum": 1,
            "maximum": 250_000,
            "description": "Whole shillings as a JSON integer; not a string, not a "
            "float. The maximum is this deployment's MPESA_MAX_AMOUNT.",
        },
        "reference": {
            "type": "string",
            "pattern": "^[A-Za-z0-9]{1,12}$",
            "description": "Shown to the customer as the account (AccountReference).",
        },
        "description": {
            "type": "string",
            "minLength": 1,
            "maxLength": 13,
            "default": DEFAULT_DESCRIPTION,
        },
        "tab_id": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_ID,
            "description": "An open tab of this bar; the amount may not exceed what is "
            "left to ask for on it.",
        },
    },
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "examples": ["validation_error", "push_in_flight"]},
                "message": {"type": "string", "description": "A sentence saying what to do."},
                "field": {
                    "type": "string",
                    "description": "The body field, query parameter or header at fault.",
                },
                "payment_id": {
                    "type": "integer",
                    "description": "The payment the conflict is about (409).",
                },
            },
        }
    },
}

UNAUTHORIZED = _error("No API key, an unknown one, or a revoked one.")
RATE_LIMITED = _error("Too many requests with this key; see Retry-After.")
INVALID = _error("A field, parameter or header is not acceptable; `field` names it.")

CREATE = {
    "operationId": "createPayment",
    "summary": "Ask a customer's phone for payment (STK push)",
    "description": "The push is sent before this answers; follow the payment's status with "
    "GET /payments/{id}. With an Idempotency-Key, a retry with the same body "
    "returns the same payment (200) and never prompts the customer again; the "
    "same key with another body answers 409. Keys are scoped to the bar. A "
    "payment M-Pesa refused (status rejected) never reached the customer: send "
    "again with a new Idempotency-Key. Without a key, each request is a new "
    "payment, but a phone already being asked answers 409 push_in_flight.",
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": f"^{IDEMPOTENCY_KEY.pattern}$"},
            "description": "Any unique string per payment, like a UUID.",
        }
    ],
    "requestBody": {"required": True, "content": {JSON: {"schema": _ref("PaymentCreate")}}},
    "responses": {
        "201": _json(
            _ref("Payment"),
            "Created, and the push was sent (or refused by M-Pesa: status rejected).",
        ),
        "200": _json(_ref("Payment"), "This Idempotency-Key already made this payment."),
        "400": _error("The body is not JSON."),
        "401": UNAUTHORIZED,
        "404": _error("tab_id names no tab of this bar."),
        "409": _error(
            "push_in_flight (a push already waits on this phone), "
            "idempotency_key_reused (another body), or the bar cannot send pushes "
            "now: bar_disabled, not_live, no_credentials, credentials_unreadable."
        ),
        "413": _error("The body is larger than 16 KiB."),
        "415": _error("The Content-Type is not application/json."),
        "422": INVALID,
        "429": RATE_LIMITED,
        "503": _error("globally_disabled: PesaTab's operators paused all M-Pesa requests."),
    },
}

LIST = {
    "operationId": "listPayments",
    "summary": "The bar's payments, newest first",
    "parameters": [
        {
            "name": "status",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": list(STATUSES)},
        },
        {
            "name": "since",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "format": "date-time"},
            "description": "Only payments created at or after this ISO 8601 time (with its zone).",
        },
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": LIST_LIMIT,
                "default": LIST_LIMIT,
            },
        },
    ],
    "responses": {
        "200": _json(
            {
                "type": "object",
                "required": ["payments"],
                "additionalProperties": False,
                "properties": {
                    "payments": {"type": "array", "items": _ref("Payment"), "maxItems": LIST_LIMIT}
                },
            },
            "At most `limit` payments.",
        ),
        "401": UNAUTHORIZED,
        "422": INVALID,
        "429": RATE_LIMITED,
    },
}

GET = {
    "operationId": "getPayment",
    "summary": "One payment of the bar",
    "parameters": [
        {
            "name": "payment_id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        }
    ],
    "responses": {
        "200": _json(_ref("Payment"), "The payment."),
        "401": UNAUTHORIZED,
        "404": _error("No such payment in this bar."),
        "429": RATE_LIMITED,
    },
}

DOCUMENT_SELF = {
    "operationId": "getOpenApiDocument",
    "summary": "This document",
    "security": [],
    "responses": {
        "200": _json(
            {"type": "object", "required": ["openapi", "paths"]}, "The OpenAPI 3.1 document."
        )
    },
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "PesaTab point-of-sale API",
        "version": "1.0.0",
        "description": "Ask customers' phones for M-Pesa payments and follow them until paid. "
        "Authenticate with a bar's API key (Settings → API keys) as a Bearer "
        'token. Every error is {"error": {"code", "message", "field"?}}.',
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerAuth": []}],
    "paths": {
        "/payments": {"post": CREATE, "get": LIST},
        "/payments/{payment_id}": {"get": GET},
        "/openapi.json": {"get": DOCUMENT_SELF},
    },
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": (
                    "An API key, `pt_live_…` (`pt_test_…` for a sandbox bar), shown once "
                    "when created."
                ),
            },
        },
        "schemas": {"Payment": PAYMENT, "PaymentCreate": PAYMENT_CREATE, "Error": ERROR},
    },
}


def document() -> dict:
    """The document, with this deployment's largest amount."""
    doc = copy.deepcopy(DOCUMENT)
    amount = doc["components"]["schemas"]["PaymentCreate"]["properties"]["amount"]
    amount["maximum"] = current_app.config["MPESA_MAX_AMOUNT"]
    return doc

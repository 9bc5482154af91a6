"""Daraja's answers as exceptions and JSON responses, in the exact shapes Daraja sends.

Responses are serialised here with `json.dumps`, not `jsonify`, so key order and types stay as
Daraja's whatever JSON settings the hosting app uses.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from app.simulator import ids


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response with keys in the order given."""
    return Response(json.dumps(body), status=status, mimetype="application/json")


class DarajaError(Exception):
    """A refusal in Daraja's `{"requestId", "errorCode", "errorMessage"}` shape."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None = None):
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id or ids.new_request_id()

    def body(self) -> dict[str, str]:
        """The JSON body Daraja sends."""
        return {"requestId": self.request_id, "errorCode": self.code, "errorMessage": self.message}

    def response(self) -> Response:
        """The HTTP response Daraja sends."""
        return json_response(self.body(), self.status)


class EmptyBadRequest(Exception):
    """Wrong consumer key or secret: Daraja has answered HTTP 400 with an empty body."""

    def response(self) -> Response:
        """An empty 400."""
        return Response(b"", status=400)


def bad_request(field: str) -> DarajaError:
    """400.002.02 "Bad Request - Invalid <field>"."""
    return DarajaError(400, "400.002.02", f"Bad Request - Invalid {field}")


def bad_payload() -> DarajaError:
    """400.002.05: the body is not a JSON object."""
    return DarajaError(400, "400.002.05", "Invalid Request Payload")


def invalid_token() -> DarajaError:
    """404.001.03: missing, unknown, expired or revoked bearer token."""
    return DarajaError(404, "404.001.03", "Invalid Access Token")


def invalid_auth_header() -> DarajaError:
    """404.001.04: an Authorization header that is not `Bearer <token>`."""
    return DarajaError(404, "404.001.04", "Invalid Authentication passed")


def merchant_error(message: str, request_id: str | None = None) -> DarajaError:
    """500.001.1001, Daraja's catch-all for merchant and transaction problems."""
    return DarajaError(500, "500.001.1001", message, request_id)


def spike_arrest() -> DarajaError:
    """500.003.02: too many calls."""
    return DarajaError(500, "500.003.02", "Error Occurred: Spike Arrest Violation")


def gateway_fault(path: str) -> Response:
    """The API gateway's own 404 shape for a path it does not route."""
    fault = {
        "faultstring": f"Unable to identify proxy for host: default and url: {path}",
        "detail": {"errorcode": "messaging.adaptors.http.flow.ApplicationNotFound"},
    }
    return json_response({"fault": fault}, 404)

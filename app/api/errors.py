"""The API's one error shape: `{"error": {"code", "message", "field"?}}` with a 4xx status."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.exceptions import HTTPException

# Codes for the HTTP errors Flask and its extensions raise inside the API's views.
HTTP_CODES = {
    400: ("bad_request", "The request could not be read."),
    401: ("unauthorized", "Send a valid API key in an Authorization: Bearer header."),
    404: ("not_found", "Nothing with this id in this bar."),
    405: ("method_not_allowed", "This path does not take that method."),
    413: ("body_too_large", "The body is too large; a payment request is a few hundred bytes."),
    415: ("unsupported_media_type", "Send the body as JSON with Content-Type: application/json."),
}


class ApiError(Exception):
    """An answer to the API client: status, a stable code, a sentence, maybe the field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        payment_id: int | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.payment_id, self.headers = field, payment_id, headers or {}

    def response(self):
        error: dict = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.payment_id is not None:
            error["payment_id"] = self.payment_id
        return jsonify(error=error), self.status, self.headers


def invalid(field: str, message: str) -> ApiError:
    """A 422 naming the field at fault."""
    return ApiError(422, "validation_error", message, field=field)


def init_blueprint(bp: Blueprint) -> None:
    bp.register_error_handler(ApiError, lambda error: error.response())
    bp.register_error_handler(HTTPException, _http_error)


def _http_error(error: HTTPException):
    status = error.code or 400
    if status == 429:
        # Flask-Limiter's description is the limit that was hit, e.g. "60 per 1 minute".
        message = (
            f"Too many requests with this API key (limit: {error.description}). "
            "Wait for the number of seconds in Retry-After, then try again."
        )
        return ApiError(429, "rate_limited", message).response()
    code, message = HTTP_CODES.get(status, ("http_error", "The request could not be handled."))
    return ApiError(status, code, message).response()

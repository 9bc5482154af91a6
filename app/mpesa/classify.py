"""Turning whatever Daraja (or the gateway in front of it) answered into one DarajaError.

Network failures are classified here too, on the line that matters most: could the request
have reached Daraja (never resend a push) or did the connection never open (safe to retry)?

Shapes seen: Daraja's `{"requestId", "errorCode", "errorMessage"}`, the gateway's
`{"fault": {"faultstring", "detail": {"errorcode"}}}`, empty bodies, HTML pages and unexpected
JSON. Every one becomes a classified error; nothing raises KeyError or ValueError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from app.mpesa import errors as e
from app.mpesa.errors import DarajaAuthError, DarajaError, DarajaOutcomeUnknown, DarajaUnavailable

# Answers that mean "your access token is stale": drop it, fetch another, retry once.
TOKEN_REFUSED_CODES = frozenset({"404.001.03", "401.002.01", "400.003.01"})
GATEWAY_RETRY_STATUSES = frozenset({502, 503, 504})
# Answers without a Daraja code that a proxy may give after forwarding the request.
MAYBE_FORWARDED_STATUSES = frozenset({500, 502, 504})
_BAD_CONFIG_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)
SUBSCRIBER_LOCK_SECONDS = 60.0
QUOTA_WAIT_SECONDS = 60.0
POLL_SECONDS = 10.0  # ask about a pending push no faster than this
_DARAJA_CODE = re.compile(r"\d{3}\.\d{3}\.\d+")
_INVALID_FIELD = re.compile(r"Invalid\s+([A-Za-z][A-Za-z ]*)", re.IGNORECASE)
_MAX_TEXT = 200

# (kind, transient, retry_after) by Daraja errorCode.
_BY_CODE: dict[str, tuple[str, bool, float | None]] = {
    "400.002.02": (e.INVALID_INPUT, False, None),
    "400.002.05": (e.INVALID_INPUT, False, None),
    "404.001.03": (e.ACCESS_REFUSED, False, None),
    "401.002.01": (e.ACCESS_REFUSED, False, None),
    "400.003.01": (e.ACCESS_REFUSED, False, None),
    "404.001.04": (e.AUTH, False, None),
    "500.003.02": (e.SPIKE_ARREST, True, None),
    "500.003.03": (e.QUOTA, True, QUOTA_WAIT_SECONDS),
    "500.003.1001": (e.INTERNAL, True, None),
}

# 500.001.1001 carries several meanings; the message is all that tells them apart.
# Order matters: "Merchant does not exist" must not read as "transaction does not exist".
_GENERIC_1001: list[tuple[re.Pattern[str], str, bool, float | None]] = [
    (re.compile(r"lock subscriber", re.I), e.SUBSCRIBER_LOCKED, True, SUBSCRIBER_LOCK_SECONDS),
    (re.compile(r"merchant", re.I), e.MERCHANT_MISSING, False, None),
    (re.compile(r"credential", re.I), e.WRONG_CREDENTIALS, False, None),
    (re.compile(r"being processed|under processing", re.I), e.PROCESSING, True, POLL_SECONDS),
    (re.compile(r"not\s+exist|no\s+such|not\s+found", re.I), e.NOT_FOUND, False, None),
]


def decode_json(content: bytes) -> Any:
    """The body as JSON, or None when it is empty or not JSON."""
    if not content or not content.strip():
        return None
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def is_daraja_code(code: str | None) -> bool:
    """True for Daraja's own dotted codes (`500.003.02`), false for gateway fault names."""
    return bool(code and _DARAJA_CODE.fullmatch(code))


def classify(status: int, content: bytes, *, token_endpoint: bool = False) -> DarajaError:
    """The error an answer with HTTP `status` and body `content` stands for."""
    payload = decode_json(content)
    if token_endpoint and status in (400, 401):
        return _auth_error(status, payload, content)
    if isinstance(payload, dict) and payload.get("errorCode") is not None:
        return _daraja_error(status, payload)
    if isinstance(payload, dict) and isinstance(payload.get("fault"), dict):
        return _fault_error(status, payload["fault"])
    return _status_error(status, content)


def _daraja_error(status: int, payload: dict[str, Any]) -> DarajaError:
    code = _text(payload.get("errorCode"))
    message = _text(payload.get("errorMessage")) or "Daraja refused the request"
    kind, transient, retry_after = _BY_CODE.get(code, (e.UNKNOWN, False, None))
    if code == "500.001.1001":
        kind, transient, retry_after = _generic_1001(message)
    field = _invalid_field(message) if kind == e.INVALID_INPUT else None
    return DarajaError(
        message,
        kind=kind,
        http_status=status,
        error_code=code,
        request_id=_text(payload.get("requestId")) or None,
        transient=transient,
        retry_after=retry_after,
        field=field,
    )


def _generic_1001(message: str) -> tuple[str, bool, float | None]:
    for pattern, kind, transient, retry_after in _GENERIC_1001:
        if pattern.search(message):
            return kind, transient, retry_after
    return e.UNKNOWN, False, None


def _invalid_field(message: str) -> str | None:
    """`Bad Request - Invalid Amount` → `Amount`."""
    match = _INVALID_FIELD.search(message)
    return match.group(1).strip() if match else None


def _fault_error(status: int, fault: dict[str, Any]) -> DarajaError:
    detail = fault.get("detail")
    code = _text(detail.get("errorcode")) if isinstance(detail, dict) else ""
    message = _text(fault.get("faultstring")) or "The Daraja gateway refused the request"
    kind = e.ACCESS_REFUSED if "access_token" in code.lower() else e.GATEWAY
    return DarajaError(
        message,
        kind=kind,
        http_status=status,
        error_code=code or None,
        transient=status in GATEWAY_RETRY_STATUSES,
    )


def _status_error(status: int, content: bytes) -> DarajaError:
    """No recognisable body: empty, HTML, or JSON of an unexpected shape."""
    snippet = _snippet(content)
    message = f"Daraja answered HTTP {status}" + (f": {snippet}" if snippet else " with no body")
    if status in GATEWAY_RETRY_STATUSES:
        return DarajaError(message, kind=e.GATEWAY, http_status=status, transient=True)
    if status == 429:
        return DarajaError(message, kind=e.SPIKE_ARREST, http_status=status, transient=True)
    return DarajaError(message, kind=e.UNKNOWN, http_status=status, transient=False)


def _auth_error(status: int, payload: Any, content: bytes) -> DarajaAuthError:
    """Why the OAuth endpoint refused: Daraja's answers here are terse, so read all we get."""
    code = _text(payload.get("errorCode")) if isinstance(payload, dict) else ""
    text = content.decode("utf-8", "replace").lower()
    if status == 401:
        reason = e.PRODUCT_NOT_ENABLED if "product" in text else e.BAD_CREDENTIALS
    elif code in _AUTH_CODES:
        reason = _AUTH_CODES[code]
    elif not text.strip():
        reason = e.BAD_CREDENTIALS  # wrong key/secret has been seen as a bare 400
    else:
        reason = e.BAD_GRANT if "grant" in text else e.UNKNOWN
    request_id = _text(payload.get("requestId")) if isinstance(payload, dict) else ""
    return DarajaAuthError(
        _AUTH_MESSAGES[reason],
        reason=reason,
        http_status=status,
        error_code=code or None,
        request_id=request_id or None,
    )


_AUTH_CODES = {"400.008.01": e.BAD_CREDENTIALS, "400.008.02": e.BAD_GRANT}


_AUTH_MESSAGES = {
    e.BAD_CREDENTIALS: "Daraja refused the consumer key and secret",
    e.BAD_GRANT: "Daraja refused the grant type",
    e.PRODUCT_NOT_ENABLED: "The Daraja app has no API product matching this request",
    e.UNKNOWN: "Daraja refused to issue an access token",
}


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()[:_MAX_TEXT]


def _snippet(content: bytes) -> str:
    """A short, single-line excerpt of an unexpected body, for logs."""
    text = content.decode("utf-8", "replace")
    return " ".join(text.split())[:_MAX_TEXT]


def maybe_acted(err: DarajaError) -> bool:
    """An answer that does not prove Daraja refused: garbled success or a proxy's 500/502/504."""
    if is_daraja_code(err.error_code):
        return False  # Daraja itself refused
    status = err.http_status or 0
    return 200 <= status < 300 or status in MAYBE_FORWARDED_STATUSES


def network_error(exc: requests.RequestException, *, replay_safe: bool) -> DarajaError:
    """The error for a request that got no answer: unavailable, or outcome unknown for a push."""
    if isinstance(exc, _BAD_CONFIG_ERRORS):
        return DarajaError("The Daraja base URL is not usable; check DARAJA_BASE_URL")
    if _failed_before_sending(exc):
        return DarajaUnavailable(f"Could not connect to Daraja ({type(exc).__name__})")
    if replay_safe:
        return DarajaUnavailable(f"Daraja did not answer ({type(exc).__name__})")
    return DarajaOutcomeUnknown(
        f"Daraja did not answer ({type(exc).__name__}); the request may have reached it"
    )


def _failed_before_sending(exc: requests.RequestException) -> bool:
    """True only when the connection never opened, so Daraja cannot have seen the request.

    TLS errors are not on the list: urllib3 reports a TLS failure while reading the answer the
    same way as one during the handshake.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(exc, requests.exceptions.ConnectionError) or not exc.args:
        return False
    reason = exc.args[0]
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def redact(err: DarajaError, secrets: Iterable[str]) -> DarajaError:
    """Blank out any secret an answer echoed back, so the error is safe to log and show."""
    for secret in secrets:
        if len(secret) >= 4 and secret in err.message:
            err.message = err.message.replace(secret, "***")
    err.args = (err.message,)
    return err

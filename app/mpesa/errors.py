"""Errors raised by the Daraja client.

Every refusal, fault or network failure becomes one `DarajaError` that says whether it is
transient, which Daraja code it carried and what `kind` of problem it is, so callers map it to a
sentence (see `catalogue.describe_error`) without reading Daraja's wording. Messages come from
Daraja's answer or from this package, never from request headers, so secrets cannot leak into
`str()` or `repr()`.
"""

from __future__ import annotations

from typing import Any

# What went wrong, in words a caller can switch on.
INVALID_INPUT = "invalid_input"  # 400.002.02 / 400.002.05: fix the request, do not retry
ACCESS_REFUSED = "invalid_token"  # the access token was refused (refreshed once already)
WRONG_CREDENTIALS = "wrong_credentials"  # passkey/shortcode mismatch, STK not enabled
MERCHANT_MISSING = "merchant_missing"  # the shortcode is unknown to Daraja
SUBSCRIBER_LOCKED = "subscriber_locked"  # the customer has another request open: wait 60 s
SPIKE_ARREST = "spike_arrest"  # too many requests per second: retry with back-off
QUOTA = "quota"  # quota used up: retry later, not now
INTERNAL = "internal"  # Daraja's own internal error: retry with back-off
GATEWAY = "gateway"  # the API gateway answered (502/503/504, unknown path fault)
AUTH = "auth"  # the OAuth endpoint refused the consumer key/secret (see DarajaAuthError)
UNAVAILABLE = "unavailable"  # Daraja could not be reached at all (safe to retry)
OUTCOME_UNKNOWN = "outcome_unknown"  # the request may have reached Daraja; settle by query
PROCESSING = "processing"  # STK query: the transaction is still being processed
NOT_FOUND = "not_found"  # STK query: Daraja does not (yet) know the CheckoutRequestID
UNKNOWN = "unknown"  # anything else

KINDS = frozenset(
    {
        INVALID_INPUT,
        ACCESS_REFUSED,
        WRONG_CREDENTIALS,
        MERCHANT_MISSING,
        SUBSCRIBER_LOCKED,
        SPIKE_ARREST,
        QUOTA,
        INTERNAL,
        GATEWAY,
        AUTH,
        UNAVAILABLE,
        OUTCOME_UNKNOWN,
        PROCESSING,
        NOT_FOUND,
        UNKNOWN,
    }
)

# DarajaAuthError.reason values.
BAD_CREDENTIALS = "bad_credentials"
BAD_GRANT = "bad_grant"
PRODUCT_NOT_ENABLED = "product_not_enabled"
AUTH_REASONS = frozenset({BAD_CREDENTIALS, BAD_GRANT, PRODUCT_NOT_ENABLED, UNKNOWN})


class InvalidRequest(ValueError):
    """A request PesaTab refused to send; the message is a sentence a person can act on."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class DarajaError(Exception):
    """Daraja refused a request, or could not be asked.

    `transient` errors may succeed later without changing the request; `retry_after` (seconds)
    says when, for the ones that need a pause longer than an in-line back-off.
    """

    default_kind = UNKNOWN
    default_transient = False

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        http_status: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        transient: bool | None = None,
        retry_after: float | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind if kind in KINDS else self.default_kind
        self.http_status = http_status
        self.error_code = error_code
        self.request_id = request_id
        self.transient = self.default_transient if transient is None else transient
        self.retry_after = retry_after
        self.field = field

    @property
    def permanent(self) -> bool:
        """True when sending the same request again cannot help."""
        return not self.transient

    @property
    def retry_now(self) -> bool:
        """True when a short in-line back-off and retry is worthwhile."""
        return self.transient and self.retry_after is None

    def __str__(self) -> str:
        parts = [self.error_code or self.kind]
        if self.http_status is not None:
            parts.append(f"(HTTP {self.http_status})")
        text = " ".join(parts) + f": {self.message}"
        return f"{text} [request {self.request_id}]" if self.request_id else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind!r}, error_code={self.error_code!r}, "
            f"http_status={self.http_status!r}, transient={self.transient!r}, "
            f"message={self.message!r})"
        )


class DarajaUnavailable(DarajaError):
    """Daraja could not be reached, or did not answer, and asking again is safe."""

    default_kind = UNAVAILABLE
    default_transient = True


class DarajaOutcomeUnknown(DarajaError):
    """The request may have reached Daraja but no usable answer came back.

    For an STK push the customer may already have been prompted: never send it again
    automatically; settle the payment with an STK query instead.
    """

    default_kind = OUTCOME_UNKNOWN
    default_transient = True

    @property
    def retry_now(self) -> bool:
        """Never: sending again could prompt the customer twice."""
        return False


class DarajaAuthError(DarajaError):
    """The OAuth endpoint refused to issue a token; `reason` says why, as far as Daraja tells."""

    default_kind = AUTH

    def __init__(self, message: str, *, reason: str = UNKNOWN, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.reason = reason if reason in AUTH_REASONS else UNKNOWN

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", reason={self.reason!r})"

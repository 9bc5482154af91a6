"""The Daraja HTTP client: OAuth tokens, STK push and STK query.

Every call goes through one path (`_request` → `_call` → `_exchange`): a timeout always, the
token attached and refreshed once when Daraja refuses it, answers classified into DarajaError,
and a bounded back-off only when asking again is safe: Daraja itself answered "busy" (so it did
not act), or the connection never opened.
A push that may have reached Daraja without an answer is never sent again: it raises
DarajaOutcomeUnknown and the payment is settled by STK query.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from app.mpesa import errors as e
from app.mpesa import pull
from app.mpesa.catalogue import normalize_code
from app.mpesa.classify import classify, decode_json, maybe_acted, network_error, redact
from app.mpesa.credentials import Credentials
from app.mpesa.errors import DarajaError, DarajaOutcomeUnknown, InvalidRequest
from app.mpesa.initiator import InitiatorCalls
from app.mpesa.qr import QrCalls
from app.mpesa.stk import (
    DEFAULT_MAX_AMOUNT,
    StkPushAccepted,
    StkQueryResult,
    check_amount,
    check_callback_url,
    check_description,
    check_msisdn,
    check_reference,
    push_body,
    query_body,
    read_push_answer,
    read_query_answer,
)
from app.mpesa.timestamps import daraja_timestamp
from app.mpesa.tokens import TokenCache

logger = logging.getLogger(__name__)

SANDBOX_URL = "https://sandbox.safaricom.co.ke"
PRODUCTION_URL = "https://api.safaricom.co.ke"
OAUTH_PATH = "/oauth/v1/generate?grant_type=client_credentials"
PUSH_PATH = "/mpesa/stkpush/v1/processrequest"
QUERY_PATH = "/mpesa/stkpushquery/v1/query"
C2B_REGISTER_PATHS = {"v2": "/mpesa/c2b/v2/registerurl", "v1": "/mpesa/c2b/v1/registerurl"}
DEFAULT_TOKEN_LIFETIME = 3599.0

Observer = Callable[..., None]


def base_url_for(environment: str, override: str | None = None) -> str:
    """Daraja's host for `environment`; a non-empty `override` (simulator, proxy) wins."""
    if override and override.strip():
        return override.strip().rstrip("/")
    hosts = {"sandbox": SANDBOX_URL, "production": PRODUCTION_URL}
    if environment not in hosts:
        raise ValueError(f"environment must be 'sandbox' or 'production', not {environment!r}")
    return hosts[environment]


def _ignore(name: str, **fields: Any) -> None:
    """The default observer: metrics are optional."""


class DarajaClient(InitiatorCalls, QrCalls):
    """Talks to one Daraja host on behalf of any number of bars (credentials per call).

    `observer(name, **fields)` hears `token_fetch` (ok), `request` (endpoint, status, seconds)
    and `retry` (endpoint, kind, delay) events, for metrics.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 15.0,
        token_cache: TokenCache | None = None,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_amount: int = DEFAULT_MAX_AMOUNT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = (connect_timeout, read_timeout)
        self.tokens = token_cache or TokenCache(clock=clock)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_amount = max_amount
        self._sleep = sleep
        self._clock = clock
        self._observe = observer or _ignore
        # Told every new access token, so the app can keep it out of logs (never logged here).
        self._on_token = on_token

    # -- tokens -------------------------------------------------------------------------------

    def access_token(self, creds: Credentials) -> str:
        """A valid token for `creds`, from the cache or fetched (one fetch at a time)."""
        return self.tokens.get(creds.cache_key, lambda: self._fetch_token(creds))

    def fetch_token(self, creds: Credentials) -> str:
        """Ask Daraja for a new token now, bypassing the cache (e.g. to check credentials).

        Raises DarajaAuthError when the key/secret are refused.
        """
        return self._fetch_token(creds)[0]

    def _fetch_token(self, creds: Credentials) -> tuple[str, float]:
        pair = base64.b64encode(f"{creds.consumer_key}:{creds.consumer_secret}".encode()).decode()
        outbound = _Outbound(
            "GET", OAUTH_PATH, f"Basic {pair}", replay_safe=True, token_endpoint=True
        )
        try:
            payload = self._call(outbound, creds)
            token, lifetime = _read_token(payload)
        except DarajaError:
            self._observe("token_fetch", ok=False)
            raise
        self._observe("token_fetch", ok=True)
        if self._on_token is not None:
            self._on_token(token)
        return token, lifetime

    # -- STK push and query -------------------------------------------------------------------

    def stk_push(
        self,
        creds: Credentials,
        *,
        phone: str,
        amount: int,
        account_reference: str,
        description: str,
        callback_url: str,
        now: datetime | None = None,
    ) -> StkPushAccepted:
        """Prompt `phone` to pay `amount` to the bar in `creds`.

        Raises InvalidRequest (a ValueError) before sending anything when an input is wrong,
        DarajaError when Daraja refuses, and DarajaOutcomeUnknown when the push may have been
        delivered without an answer: then settle with `stk_query`, never push again.
        """
        body = push_body(
            creds,
            phone=check_msisdn(phone),
            amount=check_amount(amount, self.max_amount),
            reference=check_reference(account_reference),
            description=check_description(description),
            callback_url=check_callback_url(callback_url, creds.environment),
            timestamp=daraja_timestamp(now),  # once: Password must carry the same value
        )
        payload = self._request("POST", PUSH_PATH, creds, body)
        try:
            return _accepted(payload)
        except DarajaError as err:
            raise redact(err, self._secrets(creds, body)) from None

    def stk_query(
        self, creds: Credentials, checkout_request_id: str, now: datetime | None = None
    ) -> StkQueryResult:
        """Ask where a push stands: finished (with its result code), pending, or no answer yet.

        Busy answers (spike arrest, quota) raise a transient DarajaError: back off and ask later.
        """
        if not isinstance(checkout_request_id, str) or not checkout_request_id.strip():
            raise InvalidRequest("A CheckoutRequestID is needed.", field="checkout_request_id")
        body = query_body(creds, checkout_request_id.strip(), daraja_timestamp(now))
        try:
            payload = self._request("POST", QUERY_PATH, creds, body, replay_safe=True)
        except DarajaError as err:
            if err.kind == e.PROCESSING:
                return StkQueryResult("pending", None, err.message)
            if err.kind == e.NOT_FOUND:  # also seen briefly for valid ids: not a failure
                return StkQueryResult("no_answer", None, err.message)
            raise
        return _query_result(payload)

    def c2b_register(
        self,
        creds: Credentials,
        *,
        confirmation_url: str,
        validation_url: str,
        response_type: str = "Completed",
        version: str = "v2",
    ) -> dict[str, Any]:
        """Tell Daraja where the shortcode's C2B confirmations and validations go.
        `response_type` is what M-Pesa does when the validation URL does not answer in time."""
        for url in (confirmation_url, validation_url):
            check_callback_url(url, creds.environment)  # refuses the words Daraja refuses
        body = {
            "ShortCode": creds.shortcode,
            "ResponseType": response_type,
            "ConfirmationURL": confirmation_url,
            "ValidationURL": validation_url,
        }
        payload = self._request("POST", C2B_REGISTER_PATHS[version], creds, body)
        if str(payload.get("ResponseCode", "")) != "0":
            raise DarajaError(
                str(payload.get("ResponseDescription") or "C2B registration refused"),
                kind=e.UNKNOWN,
            )
        return payload

    def pull_register(self, creds: Credentials, *, nominated_number: str, callback_url: str):
        """Register the shortcode for Pull Transactions (shapes in app/mpesa/pull.py)."""
        body = pull.register_body(creds, nominated_number, callback_url)
        return pull.read_register_answer(self._request("POST", pull.REGISTER_PATH, creds, body))

    def pull_query(self, creds: Credentials, start: datetime, end: datetime, offset: int = 0):
        """One page of the shortcode's transactions in `start`..`end` (the last 48 h only)."""
        body = pull.query_body(creds, start, end, offset)
        payload = self._request("POST", pull.QUERY_PATH, creds, body, replay_safe=True)
        return pull.read_page(payload)

    # -- the one request path -----------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        creds: Credentials,
        json: dict[str, Any] | None = None,
        *,
        replay_safe: bool = False,
    ) -> dict[str, Any]:
        """Send with a bearer token; on a refused token drop it, fetch another, retry once."""
        refreshed = False
        while True:
            token = self.access_token(creds)
            outbound = _Outbound(method, path, f"Bearer {token}", json, replay_safe=replay_safe)
            try:
                return self._call(outbound, creds)
            except DarajaError as err:
                if refreshed or err.kind != e.ACCESS_REFUSED:
                    raise
                logger.info(
                    "Daraja refused the cached token (%s); fetching another", err.error_code
                )
                self.tokens.invalidate(creds.cache_key, token)
                refreshed = True

    def _call(self, outbound: _Outbound, creds: Credentials) -> dict[str, Any]:
        """One exchange, repeated with bounded back-off while Daraja says "busy, try again"."""
        attempt = 0
        while True:
            try:
                return self._exchange(outbound, creds)
            except DarajaError as err:
                if not err.retry_now or attempt >= self.max_retries:
                    raise
                self._back_off(outbound.endpoint, err, attempt)
            attempt += 1

    def _back_off(self, endpoint: str, err: DarajaError, attempt: int) -> None:
        delay = min(self.backoff * 2**attempt, self.max_backoff)
        self._observe("retry", endpoint=endpoint, kind=err.kind, delay=delay)
        logger.info("Daraja %s on %s; retrying in %.1fs", err.kind, endpoint, delay)
        self._sleep(delay)

    def _exchange(self, outbound: _Outbound, creds: Credentials) -> dict[str, Any]:
        """Exactly one HTTP request, its failure or answer turned into a payload or an error."""
        headers = {
            "Authorization": outbound.authorization,
            "Content-Type": "application/json",  # without it Daraja blames the shortcode
            "Accept": "application/json",
        }
        started, status = self._clock(), None
        try:
            response = self.session.request(
                outbound.method,
                self.base_url + outbound.path,
                headers=headers,
                json=outbound.json,
                timeout=self.timeout,
            )
            status = response.status_code
        except requests.RequestException as exc:
            raise network_error(exc, replay_safe=outbound.replay_safe) from exc
        finally:
            seconds = self._clock() - started
            self._observe("request", endpoint=outbound.endpoint, status=status, seconds=seconds)
        try:
            return _payload(response, outbound)
        except DarajaError as err:
            raise redact(err, self._secrets(creds, outbound.json)) from None

    def _secrets(self, creds: Credentials, body: dict[str, Any] | None = None) -> list[str]:
        """Every secret a Daraja answer could echo back for these credentials."""
        basic = base64.b64encode(f"{creds.consumer_key}:{creds.consumer_secret}".encode())
        found = [creds.consumer_key, creds.consumer_secret, creds.passkey, basic.decode()]
        found.append(self.tokens.peek(creds.cache_key) or "")
        found.append(str((body or {}).get("Password", "")))  # base64 of the passkey
        return found


@dataclass(frozen=True)
class _Outbound:
    """One request as the client means to send it."""

    method: str
    path: str
    authorization: str
    json: dict[str, Any] | None = None
    replay_safe: bool = False  # safe to send again when unsure it arrived (token, query)
    token_endpoint: bool = False

    @property
    def endpoint(self) -> str:
        """The path without its query string, for metrics and logs."""
        return self.path.partition("?")[0]


def _payload(response: requests.Response, outbound: _Outbound) -> dict[str, Any]:
    """A 2xx JSON object, or the classified error the answer stands for."""
    status = response.status_code
    if 200 <= status < 300:
        payload = decode_json(response.content)
        if isinstance(payload, dict):
            return payload
        err = DarajaError(
            f"Daraja answered HTTP {status} without a JSON object",
            http_status=status,
            transient=True,
        )
    else:
        err = classify(status, response.content, token_endpoint=outbound.token_endpoint)
    if not outbound.replay_safe and maybe_acted(err):
        raise DarajaOutcomeUnknown(
            f"No clear answer from Daraja ({err.message}); the request may have been accepted",
            http_status=err.http_status,
            error_code=err.error_code,
            request_id=err.request_id,
        )
    raise err


def _read_token(payload: dict[str, Any]) -> tuple[str, float]:
    """The token and its lifetime; `expires_in` arrives as "3599" or 3599."""
    token = payload.get("access_token")
    if not isinstance(token, str) or not token.strip():
        raise DarajaError(
            "Daraja's token answer had no access_token",
            http_status=200,
            transient=True,
            retry_after=60.0,
        )
    try:
        lifetime = float(payload.get("expires_in", DEFAULT_TOKEN_LIFETIME))
    except (TypeError, ValueError):
        lifetime = DEFAULT_TOKEN_LIFETIME
    if not math.isfinite(lifetime) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return token.strip(), lifetime


def _accepted(payload: dict[str, Any]) -> StkPushAccepted:
    code = normalize_code(payload.get("ResponseCode"))
    if code and code != "0":  # a 200 that says no
        message = str(payload.get("ResponseDescription") or "Daraja did not accept the push")
        raise DarajaError(message, http_status=200, error_code=code)
    accepted = read_push_answer(payload)
    if accepted is None:
        raise DarajaOutcomeUnknown(
            "Daraja's answer to the push had no CheckoutRequestID", http_status=200
        )
    return accepted


def _query_result(payload: dict[str, Any]) -> StkQueryResult:
    result = read_query_answer(payload)
    if result is None:
        raise DarajaError(
            "Daraja's query answer had no ResultCode",
            http_status=200,
            transient=True,
            retry_after=10.0,
        )
    return result

"""Prometheus metrics: what the payment flow did, counted where it happens, served at /metrics.

Every label takes a value from a small fixed set (an outcome, a job name, a Daraja endpoint, a
result code from the catalogue or "other"): never a bar, a phone or a token, so the number of
series stays the same however many bars sign up.

Under gunicorn each worker counts in its own process; with PROMETHEUS_MULTIPROC_DIR set (by
gunicorn.conf.py, before the workers fork) prometheus_client keeps the values in files there and
`exposition()` adds up every worker's. Payments in flight and job heartbeats are read from the
database at scrape time, so they are the same whichever worker answers.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

from flask import Flask, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app import enums
from app.enums import PaymentStatus
from app.mpesa import errors as daraja_errors
from app.mpesa.catalogue import KNOWN_CODES

log = logging.getLogger(__name__)

# What a push led to: the status it left the payment in, or refused before reaching Daraja.
PUSH_OUTCOMES = frozenset(
    {PaymentStatus.SENT, PaymentStatus.REJECTED, PaymentStatus.UNKNOWN, "refused"}
)
REFUSALS = frozenset(
    {
        "globally_disabled",
        "bar_disabled",
        "not_live",
        "no_credentials",
        "credentials_unreadable",
        "over_asked",
    }
)
SETTLED = frozenset(enums.SETTLED)
VERIFY_OUTCOMES = frozenset(enums.VerifyOutcome)
BALANCE_OUTCOMES = frozenset(enums.BalanceOutcome)
DISPOSITIONS = frozenset(
    {
        "applied",
        "late_success",
        "duplicate",
        "ignored",
        "mismatch",
        "malformed",
        "unknown_token",
        "pending",
        "error",
    }
)
JOB_OUTCOMES = frozenset({"ok", "failed", "skipped", "error"})
ENDPOINTS = {
    "/oauth/v1/generate": "oauth",
    "/mpesa/stkpush/v1/processrequest": "stk_push",
    "/mpesa/stkpushquery/v1/query": "stk_query",
    "/mpesa/transactionstatus/v1/query": "transaction_status",
}

PUSHES = Counter(
    "pesatab_pushes",
    "STK pushes asked for: sent (Daraja accepted), rejected (Daraja refused), unknown (no clear "
    "answer; settled later by query) or refused (PesaTab did not send); kind says why.",
    ["outcome", "kind"],
)
SETTLEMENTS = Counter(
    "pesatab_payments_settled",
    "Payments settled, by status and result code (codes outside the catalogue: other; "
    "code none: PesaTab expired it without word from M-Pesa).",
    ["status", "code"],
)
CALLBACKS = Counter(
    "pesatab_callbacks",
    "Safaricom callbacks applied, by disposition (pending: an error on our side, retried later).",
    ["disposition"],
)
CALLBACK_APPLY_SECONDS = Histogram(
    "pesatab_callback_apply_seconds",
    "Time to apply one stored callback to its payment.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
DARAJA_REQUEST_SECONDS = Histogram(
    "pesatab_daraja_request_seconds",
    "Daraja HTTP requests by endpoint and HTTP status (none: no answer at all).",
    ["endpoint", "status"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 30.0),
)
DARAJA_RETRIES = Counter(
    "pesatab_daraja_retries",
    "Daraja requests sent again after a busy answer.",
    ["endpoint", "kind"],
)
TOKEN_FETCHES = Counter(
    "pesatab_daraja_token_fetches", "OAuth tokens fetched from Daraja, by result.", ["result"]
)
RATE_LIMIT_HITS = Counter(
    "pesatab_rate_limit_hits",
    "Requests refused with 429, by the limit's scope (the endpoint, or api for the POS API).",
    ["scope"],
)
JOB_RUNS = Counter(
    "pesatab_job_runs",
    "Periodic job runs: ok, failed, skipped (another process holds the lease or ran this "
    "tick) or error (the run could not start).",
    ["job", "outcome"],
)
JOB_SECONDS = Histogram(
    "pesatab_job_seconds",
    "Time a job's body took.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
C2B_DISPOSITIONS = frozenset(
    {
        "applied",
        "duplicate",
        "linked",
        "foreign_shortcode",
        "unknown_url",
        "malformed",
        "too_large",
        "pending",
    }
)
C2B_CLAIM_ACTIONS = frozenset({"claimed", "moved"})
C2B_CONFIRMATIONS = Counter(
    "pesatab_c2b_confirmations",
    "C2B confirmations (money paid from the M-Pesa menu) by what became of them: applied, "
    "duplicate, linked (an STK receipt), foreign_shortcode, unknown_url, malformed, too_large, "
    "or pending (an error on our side; kept for another try).",
    ["disposition"],
)
C2B_CLAIMS = Counter(
    "pesatab_c2b_claims",
    "Menu money put on a tab by a cashier (claimed) or taken to another tab by a manager (moved).",
    ["action"],
)
VERIFY_ANSWERS = Counter(
    "pesatab_verify_answers",
    "Answers to a cashier's 'is this M-Pesa code real?', by outcome (app.enums.VerifyOutcome): "
    "from the bar's own records or M-Pesa's Transaction Status result.",
    ["outcome"],
)
BALANCE_ANSWERS = Counter(
    "pesatab_balance_answers",
    "Account Balance requests (the owner's 'Check balance') by what they came to "
    "(app.enums.BalanceOutcome): shown, bad_credentials, refused, no_answer.",
    ["outcome"],
)
HTTP_REQUESTS = Counter(
    "pesatab_http_requests",
    "Requests answered, by Flask endpoint (unmatched for 404s outside any route) and status.",
    ["endpoint", "status"],
)


def _one_of(value: str | None, allowed: frozenset[str], fallback: str = "other") -> str:
    return value if value in allowed else fallback


def count_push(outcome: str, kind: str | None = None) -> None:
    """One push: what Daraja answered (or why PesaTab refused to send it)."""
    kinds = REFUSALS if outcome == "refused" else daraja_errors.KINDS
    PUSHES.labels(_one_of(outcome, PUSH_OUTCOMES), _one_of(kind, kinds) if kind else "").inc()


def count_settled(status: str, code: str | None) -> None:
    """A payment moved to a final status: on M-Pesa's word (callback or query), or with code
    None when PesaTab expired it itself (never sent, or never confirmed)."""
    SETTLEMENTS.labels(
        _one_of(status, SETTLED), "none" if code is None else _one_of(code, KNOWN_CODES)
    ).inc()


def count_callback(disposition: str) -> None:
    CALLBACKS.labels(_one_of(disposition, DISPOSITIONS)).inc()


def count_c2b(disposition: str) -> None:
    """One C2B confirmation whose disposition was just settled (or kept pending)."""
    C2B_CONFIRMATIONS.labels(_one_of(disposition, C2B_DISPOSITIONS)).inc()


def count_c2b_claim(action: str) -> None:
    """Menu money claimed to a tab, or moved from one tab to another."""
    C2B_CLAIMS.labels(_one_of(action, C2B_CLAIM_ACTIONS)).inc()


def count_verify(outcome: str) -> None:
    """One answer given to a cashier verifying a code."""
    VERIFY_ANSWERS.labels(_one_of(outcome, VERIFY_OUTCOMES)).inc()


def count_balance(outcome: str) -> None:
    """One Account Balance request settled: M-Pesa's answer, a refusal, or no answer."""
    BALANCE_ANSWERS.labels(_one_of(outcome, BALANCE_OUTCOMES)).inc()


def observe_daraja(name: str, **fields) -> None:
    """The Daraja client's observer (app/mpesa/client.py): request times, retries, tokens."""
    if name == "request":
        status = fields.get("status")
        endpoint = ENDPOINTS.get(fields.get("endpoint") or "", "other")
        label = str(status) if isinstance(status, int) and 100 <= status < 600 else "none"
        DARAJA_REQUEST_SECONDS.labels(endpoint, label).observe(
            max(fields.get("seconds") or 0.0, 0.0)
        )
    elif name == "token_fetch":
        TOKEN_FETCHES.labels("ok" if fields.get("ok") else "failed").inc()
    elif name == "retry":
        endpoint = ENDPOINTS.get(fields.get("endpoint") or "", "other")
        DARAJA_RETRIES.labels(endpoint, _one_of(fields.get("kind"), daraja_errors.KINDS)).inc()


def count_rate_limit_hit(limit) -> None:
    """Flask-Limiter's on_breach callback (RATELIMIT_ON_BREACH_CALLBACK): one breached limit.
    The label is the limit's scope, never its key (the key names a person, a bar or an address)."""
    args = getattr(limit, "request_args", None) or ["", ""]
    scope = str(args[1]) if len(args) > 1 and args[1] else "other"
    RATE_LIMIT_HITS.labels(scope[:60]).inc()


def count_job(name: str, outcome: str, seconds: float | None = None) -> None:
    JOB_RUNS.labels(name, _one_of(outcome, JOB_OUTCOMES)).inc()
    if seconds is not None:
        JOB_SECONDS.labels(name).observe(seconds)


def _count_request(response):
    rule = request.url_rule
    HTTP_REQUESTS.labels(
        rule.endpoint if rule is not None else "unmatched", str(response.status_code)
    ).inc()
    return response


class DatabaseGauges:
    """Read at scrape time from the database, so every worker answers the same: payments in
    flight by status, the oldest one's age, and when each job last ran."""

    def describe(self):
        return []

    def collect(self):
        from app.extensions import db
        from app.models import JobStatus, Payment, utcnow
        from app.payments.states import IN_FLIGHT

        try:
            counts = dict(
                db.session.execute(
                    select(Payment.status, func.count())
                    .where(Payment.status.in_(IN_FLIGHT))
                    .group_by(Payment.status)
                ).all()
            )
            oldest = db.session.scalar(
                select(func.min(Payment.created_at)).where(Payment.status.in_(IN_FLIGHT))
            )
            jobs = db.session.execute(
                select(JobStatus.name, JobStatus.last_run_at, JobStatus.last_success_at)
            ).all()
        except SQLAlchemyError as err:
            db.session.rollback()
            log.warning("metrics: the database gauges could not be read (%s)", type(err).__name__)
            return
        in_flight = GaugeMetricFamily(
            "pesatab_payments_in_flight",
            "Payments waiting on M-Pesa, by status.",
            labels=["status"],
        )
        for status in IN_FLIGHT:
            in_flight.add_metric([status], counts.get(status, 0))
        yield in_flight
        age = (utcnow() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "pesatab_payment_oldest_in_flight_seconds",
            "Age of the oldest payment still waiting on M-Pesa (0 when none).",
            value=age,
        )
        yield from _job_gauges(jobs)


def _job_gauges(rows):
    ran = GaugeMetricFamily(
        "pesatab_job_last_run_timestamp_seconds",
        "When each job last started (Unix time).",
        labels=["job"],
    )
    succeeded = GaugeMetricFamily(
        "pesatab_job_last_success_timestamp_seconds",
        "When each job last succeeded (Unix time).",
        labels=["job"],
    )
    for name, last_run, last_success in rows:
        if last_run is not None:
            ran.add_metric([name], _unix(last_run))
        if last_success is not None:
            succeeded.add_metric([name], _unix(last_success))
    yield ran
    yield succeeded


def _unix(naive_utc: datetime) -> float:
    return naive_utc.replace(tzinfo=UTC).timestamp()


class _ThisProcess:
    """The default registry (this process's counters), when there is no multiprocess directory."""

    def describe(self):
        return []

    def collect(self):
        return REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> tuple[bytes, str]:
    """The text /metrics serves: every worker's counters plus the database gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseGauges())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def init_app(app: Flask) -> None:
    """Count every request, and every 429 Flask-Limiter gives (its one global breach hook)."""
    app.after_request(_count_request)
    app.config.setdefault("RATELIMIT_ON_BREACH_CALLBACK", count_rate_limit_hit)

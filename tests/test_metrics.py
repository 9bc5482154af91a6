"""/metrics: the counts operators alert on move as pushes, callbacks, jobs and limits happen.

The suite runs in one process without PROMETHEUS_MULTIPROC_DIR, so values are read from the
default registry before and after (the counters are process-wide and never reset); the
multiprocess sums are checked for real in test_gunicorn.py.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app import jobs
from app.api import keys
from app.extensions import db
from app.models import Payment
from app.mpesa import DarajaAuthError
from app.payments.daraja import client_for
from app.payments.push import PushRefused, PushRequest, start_push
from app.settings import vault

PAYS, CANCELS = "254708374149", "254711001032"
TOKEN = "metrics-token-0123456789abcdef"


def snapshot() -> dict[tuple, float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in REGISTRY.collect()
        for s in family.samples
    }


@pytest.fixture
def grown():
    """How much a sample has grown since the test started: `grown(name, **labels)`."""
    start = snapshot()

    def since(name: str, **labels) -> float:
        now = REGISTRY.get_sample_value(name, labels) or 0.0
        return now - start.get((name, frozenset(labels.items())), 0.0)

    return since


def push(bar, phone: str = PAYS, amount: int = 10) -> Payment:
    return start_push(
        bar,
        PushRequest(
            phone=phone,
            amount=amount,
            purpose="api",
            account_reference="TAB1",
            description="Bar tab",
        ),
    )


def wait_for(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def scraped(client, name: str, **labels) -> float | None:
    """One sample's value as /metrics serves it (None when it is not there)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


@pytest.fixture
def live_bar(factory, bar, live):
    factory.live_credentials(bar)
    return bar


def test_a_paid_push_counts_sent_then_paid_with_its_callback_and_daraja_times(
    live_bar, sim_state, grown
):
    payment = push(live_bar)
    # The simulator's instant callback may land before start_push reads the row back.
    assert payment.status in ("sent", "paid")
    assert grown("pesatab_pushes_total", outcome="sent", kind="") == 1
    assert grown("pesatab_daraja_request_seconds_count", endpoint="stk_push", status="200") == 1
    assert grown("pesatab_daraja_request_seconds_count", endpoint="oauth", status="200") == 1
    assert grown("pesatab_daraja_token_fetches_total", result="ok") == 1
    assert wait_for(lambda: grown("pesatab_callbacks_total", disposition="applied") == 1)
    assert grown("pesatab_payments_settled_total", status="paid", code="0") == 1
    assert grown("pesatab_callback_apply_seconds_count") == 1
    push(live_bar, amount=11)  # the token is cached: one fetch for both pushes
    assert grown("pesatab_daraja_token_fetches_total", result="ok") == 1


def test_a_cancelled_push_settles_under_its_result_code(live_bar, sim_state, grown):
    push(live_bar, phone=CANCELS)
    assert wait_for(
        lambda: grown("pesatab_payments_settled_total", status="cancelled", code="1032") == 1
    )


def test_a_code_outside_the_catalogue_is_counted_as_other(live_bar, sim_state, grown):
    push(live_bar, phone="254711000777")  # the simulator answers ResultCode 777
    assert wait_for(
        lambda: grown("pesatab_payments_settled_total", status="failed", code="other") == 1
    )


def test_a_duplicate_callback_is_counted_as_duplicate(live_bar, sim_state, grown):
    sim_state.set_faults(callback_duplicates=2)
    push(live_bar)
    assert wait_for(lambda: grown("pesatab_callbacks_total", disposition="duplicate") == 1)
    assert grown("pesatab_callbacks_total", disposition="applied") == 1


def test_a_malformed_callback_is_counted(client, factory, bar, grown):
    payment = factory.payment(bar)
    response = client.post(
        f"/hooks/stk/{payment.callback_token}",
        data=b"{not json",
        csrf=False,
        content_type="application/json",
    )
    assert response.status_code == 200
    assert grown("pesatab_callbacks_total", disposition="malformed") == 1


def test_refused_and_rejected_pushes_say_why(live_bar, sim_state, factory, grown):
    sim_state.set_faults(lock_subscriber=True)
    assert push(live_bar).status == "rejected"
    assert grown("pesatab_pushes_total", outcome="rejected", kind="subscriber_locked") == 1
    with pytest.raises(PushRefused):
        push(factory.bar("Not Yet Live"))
    assert grown("pesatab_pushes_total", outcome="refused", kind="not_live") == 1


def test_a_refused_token_counts_a_failed_fetch(bar, factory, live, sim_state, grown):
    factory.live_credentials(bar)
    creds = vault.open_credentials(vault.credential_for(bar))
    wrong = dataclasses.replace(creds, consumer_secret="not-the-secret")
    with pytest.raises(DarajaAuthError):
        client_for("sandbox").fetch_token(wrong)
    assert grown("pesatab_daraja_token_fetches_total", result="failed") == 1


def test_rate_limit_hits_are_counted_by_scope_not_by_key(app, client, bar, grown):
    app.config["API_RATE_LIMIT"] = "1 per minute"
    secret = keys.create_key(bar, "POS").secret
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/payments", headers=headers).status_code == 200
    assert client.get("/api/v1/payments", headers=headers).status_code == 429
    assert grown("pesatab_rate_limit_hits_total", scope="api") == 1


def test_job_runs_are_counted_by_outcome_and_a_second_tick_is_skipped(app, grown):
    assert jobs.run("expire", tick=True) == 0
    assert jobs.run("expire", tick=True) is None  # another worker's tick a moment later
    assert jobs.run("expire") == 0  # by hand (flask jobs run): always runs
    assert grown("pesatab_job_runs_total", job="expire", outcome="ok") == 2
    assert grown("pesatab_job_runs_total", job="expire", outcome="skipped") == 1
    assert grown("pesatab_job_seconds_count", job="expire") == 2


def test_a_failed_job_is_counted_as_failed(app, monkeypatch, grown):
    def broken(now=None):
        raise RuntimeError("boom")

    monkeypatch.setitem(jobs.JOBS, "expire", jobs.Job("expire", broken, seconds=60))
    assert jobs.run("expire") is None
    assert grown("pesatab_job_runs_total", job="expire", outcome="failed") == 1


def test_payments_in_flight_are_read_from_the_database_at_scrape_time(client, factory, bar):
    from app.models import utcnow

    now = utcnow()
    factory.payment(bar, status="sent", created_at=now - timedelta(seconds=90))
    factory.payment(bar, status="sent", created_at=now - timedelta(seconds=30))
    factory.payment(bar, status="unknown", checkout_request_id=None, created_at=now)
    factory.payment(bar, status="paid", created_at=now - timedelta(hours=5))  # settled: not waiting
    assert scraped(client, "pesatab_payments_in_flight", status="sent") == 2
    assert scraped(client, "pesatab_payments_in_flight", status="unknown") == 1
    assert scraped(client, "pesatab_payments_in_flight", status="created") == 0
    # The oldest waiting payment is the 90 s one (the paid one is older but not waiting);
    # the scrape happens a moment later, never a minute.
    assert 90 <= scraped(client, "pesatab_payment_oldest_in_flight_seconds") < 150


def test_the_oldest_in_flight_gauge_is_zero_when_nothing_waits(client, factory, bar):
    from app.models import utcnow

    factory.payment(bar, status="paid", created_at=utcnow() - timedelta(hours=5))
    assert scraped(client, "pesatab_payment_oldest_in_flight_seconds") == 0


def test_requests_are_counted_by_endpoint(client, grown):
    client.get("/healthz")
    client.get("/no/such/page")
    assert grown("pesatab_http_requests_total", endpoint="health.healthz", status="200") == 1
    assert grown("pesatab_http_requests_total", endpoint="unmatched", status="404") == 1


def test_no_label_names_a_bar_a_phone_or_a_token(live_bar, client, sim_state):
    payment = push(live_bar)
    assert wait_for(lambda: db.session.get(Payment, payment.id) and sim_state.events("callback"))
    text = client.get("/metrics").get_data(as_text=True)
    for secret in (live_bar.slug, PAYS, payment.callback_token):
        assert secret not in text
    ours = [f for f in text_string_to_metric_families(text) if f.name.startswith("pesatab_")]
    labels = {name for family in ours for s in family.samples for name in s.labels}
    assert labels <= {
        "outcome",
        "kind",
        "status",
        "code",
        "disposition",
        "endpoint",
        "result",
        "scope",
        "job",
        "action",  # a C2B claim: claimed or moved, nothing else (metrics._one_of)
        "le",
    }


def test_the_token_guards_metrics(app, client):
    app.config["METRICS_TOKEN"] = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics").headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert (
        'pesatab_http_requests_total{endpoint="health.metrics",status="401"}'
        in response.get_data(as_text=True)
    )


def test_production_without_a_token_hides_metrics(app, client):
    app.config.update(PESATAB_ENV="production", METRICS_TOKEN=None)
    assert client.get("/metrics").status_code == 404


def test_development_without_a_token_serves_metrics(app, client):
    app.config.update(PESATAB_ENV="development", METRICS_TOKEN=None)
    assert client.get("/metrics").status_code == 200


def test_payments_the_expire_job_settles_are_counted_with_code_none(factory, bar, grown):
    from datetime import timedelta

    from app.models import utcnow
    from app.payments import recovery

    stuck = factory.payment(bar, status="created", checkout_request_id=None)
    silent = factory.payment(bar, status="unknown", checkout_request_id=None)
    stuck.created_at = silent.created_at = utcnow() - timedelta(minutes=30)
    db.session.commit()

    assert recovery.expire_stuck() == 2
    assert recovery.expire_stuck() == 0  # settled once, counted once
    assert grown("pesatab_payments_settled_total", status="expired", code="none") == 2

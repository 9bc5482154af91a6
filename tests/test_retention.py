"""Retention: old raw callback bodies are blanked by a job; the rows, payments and audit stay."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.config import ConfigError, load_config
from app.extensions import db
from app.models import AuditEvent, CallbackEvent, Payment, utcnow
from app.payments import retention
from app.payments.retention import PRUNED, prune_callback_bodies

NOW = datetime(2025, 6, 30, 12, 0)
BODY = json.dumps(
    {
        "Body": {
            "stkCallback": {
                "ResultCode": 0,
                "CallbackMetadata": {"Item": [{"Name": "PhoneNumber", "Value": 254708374149}]},
            }
        }
    }
)


def callback(payment, *, days_old: float, disposition: str = "applied") -> CallbackEvent:
    event = CallbackEvent(
        token=payment.callback_token,
        payment_id=payment.id,
        bar_id=payment.bar_id,
        raw_body=BODY,
        body_size=len(BODY),
        source_address="196.201.214.200",
        known_source=True,
        headers={"Content-Type": "application/json"},
        disposition=disposition,
        detail="paid",
        received_at=NOW - timedelta(days=days_old),
        processed_at=NOW - timedelta(days=days_old),
    )
    db.session.add(event)
    db.session.commit()
    return event


def reload(event: CallbackEvent) -> CallbackEvent:
    db.session.expire_all()
    return db.session.get(CallbackEvent, event.id)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def payment(factory, bar):
    return factory.payment(bar, status="paid", receipt="TEST000001")


def test_bodies_past_the_retention_period_are_blanked_and_the_rows_kept(payment):
    old = callback(payment, days_old=181)
    recent = callback(payment, days_old=179)
    db.session.add(
        AuditEvent(bar_id=payment.bar_id, action="payment.paid", details={"payment_id": payment.id})
    )
    db.session.commit()
    before = (count(CallbackEvent), count(Payment), count(AuditEvent))

    assert prune_callback_bodies(now=NOW) == 1

    old, recent = reload(old), reload(recent)
    assert old.raw_body == PRUNED
    assert (
        old.disposition,
        old.detail,
        old.body_size,
        old.source_address,
        old.payment_id,
        old.headers,
    ) == (
        "applied",
        "paid",
        len(BODY),
        "196.201.214.200",
        payment.id,
        {"Content-Type": "application/json"},
    )
    assert recent.raw_body == BODY
    assert (count(CallbackEvent), count(Payment), count(AuditEvent)) == before
    assert db.session.get(Payment, payment.id).receipt == "TEST000001"


def test_running_it_again_changes_nothing(payment):
    callback(payment, days_old=400)
    assert prune_callback_bodies(now=NOW) == 1
    assert prune_callback_bodies(now=NOW) == 0
    assert prune_callback_bodies(now=NOW + timedelta(days=1)) == 0


def test_a_body_still_waiting_to_be_applied_is_kept(payment):
    waiting = callback(payment, days_old=365, disposition="pending")
    assert prune_callback_bodies(now=NOW) == 0
    assert reload(waiting).raw_body == BODY


def test_it_works_through_many_events_in_batches(factory, bar):
    payments = [factory.payment(bar, status="paid") for _ in range(3)]
    old = [callback(p, days_old=200 + n) for n, p in enumerate(payments * 3)]
    keep = callback(payments[0], days_old=1)
    assert prune_callback_bodies(now=NOW, batch_size=2) == len(old)
    assert {reload(e).raw_body for e in old} == {PRUNED}
    assert reload(keep).raw_body == BODY


def test_the_period_comes_from_the_setting(app, payment):
    app.config["CALLBACK_RETENTION_DAYS"] = 30
    month_old = callback(payment, days_old=31)
    assert prune_callback_bodies(now=NOW) == 1
    assert reload(month_old).raw_body == PRUNED


def test_it_defaults_to_now(app, factory, bar):
    payment = factory.payment(bar, status="paid")
    event = callback(payment, days_old=0)
    event.received_at = utcnow() - timedelta(days=181)
    db.session.commit()
    assert prune_callback_bodies() == 1


@pytest.mark.parametrize(("raw", "days"), [(None, 180), ("30", 30)])
def test_the_setting_defaults_to_180_days(tmp_path, raw, days):
    environ = {} if raw is None else {"CALLBACK_RETENTION_DAYS": raw}
    assert load_config(environ, instance_path=str(tmp_path))["CALLBACK_RETENTION_DAYS"] == days


@pytest.mark.parametrize("raw", ["0", "six months"])
def test_a_bad_retention_setting_stops_start_up(tmp_path, raw):
    with pytest.raises(ConfigError, match="CALLBACK_RETENTION_DAYS"):
        load_config({"CALLBACK_RETENTION_DAYS": raw}, instance_path=str(tmp_path))


def test_an_unknown_token_event_is_pruned_too(bar):
    stray = CallbackEvent(
        token=secrets.token_hex(20),
        raw_body=BODY,
        body_size=len(BODY),
        disposition="unknown_token",
        received_at=NOW - timedelta(days=200),
    )
    db.session.add(stray)
    db.session.commit()
    assert prune_callback_bodies(now=NOW) == 1
    assert reload(stray).raw_body == PRUNED


def test_the_prune_job_drops_token_rows_of_credentials_nobody_uses(app):
    from app import jobs
    from app.models import DarajaToken

    db.session.add_all(
        [
            DarajaToken(
                cache_key="a" * 64,
                sealed_token="sealed",
                expires_at=NOW - timedelta(days=3),
                updated_at=NOW - timedelta(days=3),
            ),  # old credentials: gone
            DarajaToken(
                cache_key="b" * 64,
                sealed_token="sealed",
                expires_at=NOW + timedelta(minutes=50),
                updated_at=NOW - timedelta(minutes=10),
            ),  # in use: kept
        ]
    )
    db.session.commit()

    assert jobs.JOBS["prune"].body is retention.prune
    assert retention.prune(now=NOW) == 1
    assert retention.prune(now=NOW) == 0
    assert db.session.scalars(select(DarajaToken.cache_key)).all() == ["b" * 64]

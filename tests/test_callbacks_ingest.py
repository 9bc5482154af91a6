"""What a callback costs, and applying it just after the answer (CALLBACK_APPLY=background).

The statement budgets below are what keeps the callback path cheap (issue 8, benchmark 1): a
paid callback is one autocommitted INSERT, then one transaction that locks the payment,
updates it (its receipt check and its refreshed row ride in the same UPDATE), writes the audit
entry and finishes the event. Run on SQLite and on PostgreSQL (TEST_DATABASE_URL).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, text, update

from app import jobs
from app.config import ConfigError, load_config
from app.extensions import db
from app.models import CallbackEvent, Payment, utcnow
from app.payments import applier, callbacks, ledger, states
from tests.test_callbacks import (
    RECEIPT,
    SAFARICOM,
    acked,
    failure_body,
    paid_body,
    post,
    reload,
    stored_events,
)
from tests.test_callbacks_concurrency import body_for, deliver_at_once, hook

_TABLE = re.compile(r"^\s*(?:INSERT INTO|UPDATE|SELECT\b.*?\bFROM)\s+\"?(\w+)", re.S)


class Seen:
    def __init__(self) -> None:
        self.trail: list[str] = []

    @property
    def statements(self) -> list[str]:
        return [s for s in self.trail if s != "COMMIT"]


@contextlib.contextmanager
def counting():
    """Every SQL statement the app sends (verb and table) and every COMMIT, in order."""
    seen = Seen()

    def statement(conn, cursor, sql, params, context, executemany):
        seen.trail.append(f"{sql.split()[0].upper()} {_TABLE.match(sql).group(1)}")

    def commit(conn):
        seen.trail.append("COMMIT")

    sa_event.listen(db.engine, "before_cursor_execute", statement)
    sa_event.listen(db.engine, "commit", commit)
    try:
        yield seen
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", statement)
        sa_event.remove(db.engine, "commit", commit)


@pytest.fixture
def payment(factory, bar) -> Payment:
    return factory.payment(bar, status="sent", amount=450)


def store(payment: Payment, body: dict) -> CallbackEvent:
    raw = json.dumps(body).encode()
    return callbacks.store(payment.callback_token, raw, source=SAFARICOM, headers={}, size=len(raw))


# What one callback costs --------------------------------------------------------------------


def test_a_paid_callback_is_five_statements_and_one_transaction(client, payment):
    token, body = payment.callback_token, paid_body(payment)

    with counting() as seen:
        assert acked(post(client, token, body))

    assert seen.trail == [
        # the body, autocommitted before anything reads it (no BEGIN/COMMIT round trips;
        # tests/test_callback_fast_path.py proves it is durable before applying starts)
        "INSERT callback_event",
        "SELECT payment",
        "UPDATE payment",
        "INSERT audit_event",
        "UPDATE callback_event",
        "COMMIT",
    ]
    assert (reload(payment).status, reload(payment).receipt) == ("paid", RECEIPT)


def test_the_payment_row_is_locked_before_anything_writes(client, payment):
    token, body, statements = payment.callback_token, paid_body(payment), []
    listener = lambda conn, cursor, sql, *args: statements.append(sql)  # noqa: E731
    sa_event.listen(db.engine, "before_cursor_execute", listener)
    try:
        post(client, token, body)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", listener)

    lock = statements[1]
    assert lock.startswith("SELECT") and "callback_token" in lock
    if db.engine.dialect.name == "postgresql":
        assert lock.rstrip().endswith("FOR UPDATE")


def test_a_duplicate_is_three_statements_and_one_transaction(client, payment):
    token, body = payment.callback_token, paid_body(payment)
    post(client, token, body)

    with counting() as seen:
        assert acked(post(client, token, body))

    assert seen.trail == [
        "INSERT callback_event",  # autocommitted
        "SELECT payment",
        "UPDATE callback_event",
        "COMMIT",
    ]
    assert [e.disposition for e in stored_events()] == ["applied", "duplicate"]


def test_a_cancelled_callback_is_five_statements_too(client, payment):
    token, body = payment.callback_token, failure_body(payment)

    with counting() as seen:
        assert acked(post(client, token, body))

    assert seen.statements == [
        "INSERT callback_event",
        "SELECT payment",
        "UPDATE payment",
        "INSERT audit_event",
        "UPDATE callback_event",
    ]
    assert reload(payment).status == "cancelled"


def test_a_reused_receipt_is_caught_by_the_update_then_explained(client, factory, bar, payment):
    other = factory.payment(bar, status="sent", amount=450)
    post(client, payment.callback_token, paid_body(payment))
    token, body = other.callback_token, paid_body(other)

    with counting() as seen:
        assert acked(post(client, token, body))

    # The UPDATE refuses the receipt; only then does a SELECT say why.
    assert seen.statements == [
        "INSERT callback_event",
        "SELECT payment",
        "UPDATE payment",
        "SELECT payment",
        "SELECT payment",
        "UPDATE payment",
        "UPDATE callback_event",
    ]
    second = reload(other)
    assert (second.status, second.receipt, second.flag_reason) == ("sent", None, "receipt_reused")


# states.move: one UPDATE, the payment refreshed from what it returned ---------------------------


def test_a_move_refreshes_the_payment_without_reading_it_back(factory, bar):
    payment = factory.payment(bar, status="expired", amount=450)
    assert payment.status == "expired"  # loaded

    with counting() as seen:
        assert states.move(payment, "paid", receipt="QX1", result_code="0", paid_amount=450)
        values = (
            payment.status,
            payment.receipt,
            payment.flagged,
            payment.flag_reason,
            payment.inflight_key,
        )

    assert seen.trail == ["UPDATE payment"]
    assert values == ("paid", "QX1", True, "late_success", None)  # decided in SQL, seen here
    db.session.commit()
    assert reload(payment).flag_reason == "late_success"


def test_a_refused_move_leaves_the_payment_showing_the_row_as_it_is(factory, bar):
    payment = factory.payment(bar, status="sent", amount=450)
    assert payment.status == "sent"
    with db.engine.begin() as other:  # another worker settles it meanwhile
        other.execute(
            update(Payment)
            .where(Payment.id == payment.id)
            .values(status="cancelled", result_code="1032")
        )

    assert not states.move(payment, "sent", checkout_request_id="ws_CO_OTHER")

    assert (payment.status, payment.result_code) == ("cancelled", "1032")


def test_a_move_to_paid_never_takes_a_receipt_another_payment_holds(factory, bar):
    first = factory.payment(bar, status="sent", amount=450)
    second = factory.payment(bar, status="sent", amount=450)
    assert states.move(first, "paid", receipt="QSAME1")
    db.session.commit()

    assert not states.move(second, "paid", receipt="QSAME1")  # no IntegrityError: simply refused

    db.session.commit()
    assert (reload(second).status, reload(second).receipt) == ("sent", None)
    assert (
        ledger.record(reload(second), ledger.Outcome(code="0", receipt="QSAME1", amount=450))
        == "mismatch"
    )
    db.session.commit()
    assert reload(second).flag_reason == "receipt_reused"


# Finishing an event ---------------------------------------------------------------------------


def test_an_event_finished_meanwhile_by_someone_else_keeps_their_outcome(app, payment, monkeypatch):
    event = store(payment, paid_body(payment))
    real_record = ledger.record

    def replay_job_finishes_it_first(target, outcome):
        with db.engine.begin() as other:
            other.execute(
                text("UPDATE callback_event SET disposition = 'duplicate' WHERE id = :id"),
                {"id": event.id},
            )
        return real_record(target, outcome)

    monkeypatch.setattr(ledger, "record", replay_job_finishes_it_first)

    assert callbacks.apply(event) == "duplicate"

    (stored,) = stored_events()
    assert (stored.disposition, stored.attempts) == ("duplicate", 0)
    assert reload(payment).status == "sent"  # this run's work was rolled back, not committed twice


def test_the_stored_event_comes_back_whole_and_detached(app, payment):
    body = paid_body(payment)

    with counting() as seen:
        event = store(payment, body)
        loaded = (
            event.id,
            event.token,
            event.disposition,
            event.attempts,
            event.truncated,
            event.raw_body,
        )

    assert seen.trail == ["INSERT callback_event"]  # autocommitted; nothing read back
    assert loaded == (
        stored_events()[0].id,
        payment.callback_token,
        "pending",
        0,
        False,
        json.dumps(body),
    )
    assert event not in db.session


# Several events in one transaction (the background applier's batches) --------------------------


def test_a_batch_is_applied_in_one_transaction_in_arrival_order_per_payment(
    app, factory, bar, payment
):
    other = factory.payment(bar, status="sent", amount=300)
    events = [
        store(payment, failure_body(payment)),  # cancelled first ...
        store(other, paid_body(other, receipt="QOTHER1")),
        store(payment, paid_body(payment)),  # ... then the money: a late success
        store(other, paid_body(other, receipt="QOTHER1")),  # Daraja's resend
    ]

    with counting() as seen:
        dispositions = callbacks.apply_many(events)

    assert dispositions == ["applied", "applied", "late_success", "duplicate"]
    assert seen.trail.count("COMMIT") == 1
    assert [e.disposition for e in stored_events()] == dispositions
    late, paid = reload(payment), reload(other)
    assert (late.status, late.flag_reason, paid.status, paid.receipt) == (
        "paid",
        "late_success",
        "paid",
        "QOTHER1",
    )


def test_a_batch_that_fails_is_applied_one_event_at_a_time(app, factory, bar, payment, monkeypatch):
    broken = factory.payment(bar, status="sent", amount=300)
    real_record = ledger.record

    def fails_for_one_payment(target, outcome):
        if target.id == broken.id:
            raise RuntimeError("database hiccup")
        return real_record(target, outcome)

    monkeypatch.setattr(ledger, "record", fails_for_one_payment)
    events = [
        store(payment, paid_body(payment)),
        store(broken, paid_body(broken, receipt="QBROKEN1")),
    ]

    assert callbacks.apply_many(events) == ["applied", "pending"]

    assert reload(payment).status == "paid" and reload(broken).status == "sent"
    retry = stored_events()[1]
    assert (retry.disposition, retry.attempts) == (
        "pending",
        1,
    ) and retry.next_attempt_at is not None


# CALLBACK_APPLY=background ----------------------------------------------------------------------


@pytest.fixture
def background(app):
    app.config["CALLBACK_APPLY"] = "background"
    yield app
    running = app.extensions.get(applier.EXTENSION)
    if running is not None:
        running.stop(timeout=10)


def wait_applied(app) -> None:
    assert applier.applier_for(app).wait(timeout=10), "the applier did not finish in time"


def test_background_answers_before_applying_then_applies(background, client, payment, monkeypatch):
    release, real_apply_many = threading.Event(), callbacks.apply_many

    def held(events):
        assert release.wait(timeout=10)
        return real_apply_many(events)

    monkeypatch.setattr(callbacks, "apply_many", held)

    assert acked(post(client, payment.callback_token, paid_body(payment)))

    # Answered: the body is committed, the payment not yet touched.
    (event,) = stored_events()
    assert (event.disposition, reload(payment).status) == ("pending", "sent")
    release.set()
    wait_applied(background)
    (event,) = stored_events()
    assert (event.disposition, event.payment_id, event.attempts) == ("applied", payment.id, 1)
    assert (reload(payment).status, reload(payment).receipt) == ("paid", RECEIPT)


def test_background_credits_five_deliveries_once(background, client, payment):
    for _ in range(5):
        assert acked(post(client, payment.callback_token, paid_body(payment)))

    wait_applied(background)
    assert Counter(e.disposition for e in stored_events()) == {"applied": 1, "duplicate": 4}
    assert reload(payment).receipt == RECEIPT


def test_background_credits_concurrent_deliveries_once(background, live, payment):
    answers = deliver_at_once([(hook(live, payment), body_for(payment))] * 5)

    assert all(a.status_code == 200 for a in answers), answers
    wait_applied(background)
    assert Counter(e.disposition for e in stored_events()) == {"applied": 1, "duplicate": 4}
    assert reload(payment).status == "paid"


def test_background_events_lost_with_their_process_are_replayed(
    background, client, payment, monkeypatch
):
    # Queued, then the worker died with it.
    monkeypatch.setattr(applier.Applier, "submit", lambda self, event: True)

    assert acked(post(client, payment.callback_token, paid_body(payment)))
    assert stored_events()[0].disposition == "pending"

    assert jobs.replay_pending(now=utcnow() + timedelta(seconds=61)) == 1
    assert (stored_events()[0].disposition, reload(payment).status) == ("applied", "paid")


def test_background_still_never_applies_an_untrusted_source(background, client, payment):
    background.config["CALLBACK_STRICT_SOURCES"] = True

    assert acked(post(client, payment.callback_token, paid_body(payment), source="41.90.1.2"))

    wait_applied(background)
    assert stored_events()[0].disposition == "untrusted_source" and reload(payment).status == "sent"


def test_an_oversized_body_is_still_settled_before_the_answer_in_background(
    background, client, payment
):
    raw = json.dumps(paid_body(payment)).encode() + b" " * background.config["CALLBACK_MAX_BYTES"]

    assert post(client, payment.callback_token, raw).status_code == 413

    assert stored_events()[0].disposition == "malformed"


def test_callback_apply_is_read_strictly(tmp_path):
    assert load_config({}, instance_path=str(tmp_path))["CALLBACK_APPLY"] == "background"
    assert (
        load_config({"CALLBACK_APPLY": "Background"}, instance_path=str(tmp_path))["CALLBACK_APPLY"]
        == "background"
    )
    with pytest.raises(ConfigError, match="CALLBACK_APPLY"):
        load_config({"CALLBACK_APPLY": "later"}, instance_path=str(tmp_path))


def test_the_lock_reads_the_row_as_it_is_now_even_if_loaded_before(app, payment):
    assert payment.status == "sent"  # this session holds it as sent
    with db.engine.begin() as other:
        other.execute(update(Payment).where(Payment.id == payment.id).values(status="cancelled"))

    locked = db.session.scalar(callbacks._LOCK_PAYMENT, {"token": payment.callback_token})

    assert locked is payment and locked.status == "cancelled"
    db.session.rollback()
    assert db.session.scalar(select(Payment.status).where(Payment.id == payment.id)) == "cancelled"

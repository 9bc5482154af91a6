"""Store-first across a PostgreSQL restart (issue 16): the callback path pings no connection it
used a moment ago, so a restart leaves the pool holding connections whose server side is gone.
A callback must still never be lost: its body is stored (the INSERT retried once on a fresh
connection) and acknowledged, or the answer is not a 2xx and Safaricom sends it again.

The restart is real where it matters: the server side of every pooled connection is terminated
with pg_terminate_backend (what a restart does to them; the client notices only on next use).
Those run on PostgreSQL only (TEST_DATABASE_URL); tests/test_callback_fast_path.py has their
monkeypatched equivalents for SQLite.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, exc, select, text
from sqlalchemy.pool import NullPool

from app import extensions, jobs
from app.extensions import db
from app.models import CallbackEvent, utcnow
from app.payments import callbacks
from tests.test_callbacks import RECEIPT, acked, paid_body, post, reload, stored_events

on_postgres = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="terminates PostgreSQL backends",
)


@pytest.fixture
def payment(factory, bar):
    return factory.payment(bar, status="sent", amount=450)


@pytest.fixture
def never_pinged(monkeypatch):
    """Every pooled connection counts as used a moment ago: the hot path's real case under
    load, where nothing checks a connection before it is used."""
    monkeypatch.setattr(extensions, "IDLE_PING_SECONDS", 10**6)


def restart_under_the_pool() -> list[int]:
    """Terminate the server side of every connection the app's pool holds (and one more, so
    none is left alive), leave them all checked in, and wait until the server has let them go.
    Only this pool's own backends: other sessions on the server are left alone."""
    db.session.rollback()  # the session's connection, if any, back into the pool
    held = [db.engine.raw_connection() for _ in range(db.engine.pool.checkedin() + 1)]
    pids = [conn.driver_connection.info.backend_pid for conn in held]
    for conn in held:
        conn.close()  # back into the pool, still looking alive
    admin = create_engine(db.engine.url, poolclass=NullPool)
    try:
        with admin.connect() as conn:
            kill = text("SELECT pg_terminate_backend(pid) FROM unnest(:p) AS pid")
            conn.execute(kill, {"p": pids})
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                left = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:p)"), {"p": pids}
                ).scalar()
                if not left:
                    break
                conn.rollback()
                time.sleep(0.02)
    finally:
        admin.dispose()
    return pids


@on_postgres
def test_a_callback_after_a_restart_is_stored_acknowledged_and_credited(
    client, payment, never_pinged
):
    token, body = payment.callback_token, paid_body(payment)
    restart_under_the_pool()

    assert acked(post(client, token, body))

    (event,) = stored_events()
    assert (event.disposition, event.attempts) == ("applied", 1)
    assert (reload(payment).status, reload(payment).receipt) == ("paid", RECEIPT)


@on_postgres
def test_a_restart_between_storing_and_applying_keeps_the_body_for_the_replay(
    client, payment, never_pinged, monkeypatch
):
    real_store = callbacks.store

    def store_then_restart(*args, **kwargs):
        event = real_store(*args, **kwargs)  # committed: durable before the restart
        restart_under_the_pool()
        return event

    monkeypatch.setattr(callbacks, "store", store_then_restart)

    assert acked(post(client, payment.callback_token, paid_body(payment)))

    (event,) = stored_events()
    assert (event.disposition, event.attempts) == ("pending", 1)  # the apply met a dead link
    assert event.next_attempt_at is not None and reload(payment).status == "sent"
    monkeypatch.setattr(callbacks, "store", real_store)
    assert jobs.replay_pending(now=utcnow() + timedelta(minutes=5)) == 1
    assert (stored_events()[0].disposition, reload(payment).status) == ("applied", "paid")
    # Safaricom's resend of the same callback, later: stored, and changes nothing.
    assert acked(post(client, payment.callback_token, paid_body(payment)))
    assert [e.disposition for e in stored_events()] == ["applied", "duplicate"]


@on_postgres
def test_a_background_apply_after_a_restart_still_credits_once(app, client, payment, never_pinged):
    from app.payments import applier

    app.config["CALLBACK_APPLY"] = "background"
    token, body = payment.callback_token, paid_body(payment)
    try:
        assert acked(post(client, token, body))
        assert applier.applier_for(app).wait(timeout=10)
        restart_under_the_pool()
        for _ in range(2):  # two resends, queued together: a batch on a dead pool
            assert acked(post(client, token, body))
        assert applier.applier_for(app).wait(timeout=10)
    finally:
        running = app.extensions.get(applier.EXTENSION)
        if running is not None:
            running.stop(timeout=10)
    db.session.rollback()
    dispositions = sorted(e.disposition for e in stored_events())
    assert dispositions.count("applied") == 1 and reload(payment).receipt == RECEIPT
    assert set(dispositions) <= {"applied", "duplicate", "pending"}
    if "pending" in dispositions:  # a batch that met the dead pool: the replay finishes it
        jobs.replay_pending(now=utcnow() + timedelta(minutes=5))
    assert sorted(e.disposition for e in stored_events()) == ["applied", "duplicate", "duplicate"]


def test_a_body_that_cannot_be_stored_is_not_acknowledged(client, payment, monkeypatch):
    """The database is down for good (the INSERT fails on the fresh connection too): the hook
    answers 500, so Safaricom sends the callback again; it never says Accepted unstored."""

    def down(values):
        raise exc.OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(callbacks, "_insert_durably", down)

    answer = post(client, payment.callback_token, paid_body(payment))

    assert answer.status_code >= 500 and not acked(answer)
    db.session.rollback()
    assert db.session.scalars(select(CallbackEvent)).all() == []

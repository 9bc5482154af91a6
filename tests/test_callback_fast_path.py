"""The callback's cheaper request (issue 16): the body autocommitted in one statement before
anything can fail, the audit row through Core with no look-up of a signed-in person, and no
pool ping on a connection used a moment ago (one idle for a while is still pinged)."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import exc, select, text

from app import extensions
from app.config import load_config
from app.extensions import db, login_manager
from app.models import AuditEvent, CallbackEvent
from app.payments import callbacks
from tests.test_callbacks import SAFARICOM, acked, paid_body, post, reload


@pytest.fixture
def payment(factory, bar):
    return factory.payment(bar, status="sent", amount=450)


def test_a_failure_while_applying_leaves_the_body_stored_and_acknowledged(
    client, payment, monkeypatch
):
    def broken(event):
        raise RuntimeError("a bug after the lock")

    monkeypatch.setattr(callbacks, "_apply", broken)
    body = json.dumps(paid_body(payment))
    assert acked(post(client, payment.callback_token, body))
    db.session.rollback()
    event = db.session.scalars(select(CallbackEvent)).one()
    assert (event.raw_body, event.disposition, event.attempts) == (body, "pending", 1)
    assert event.next_attempt_at is not None  # the replay job takes it from here
    assert reload(payment).status == "sent"


def test_a_dead_pooled_connection_does_not_lose_the_body(client, payment, monkeypatch):
    """The first INSERT meets a connection the server dropped: it is retried once, fresh."""
    real_connect, inserts = db.engine.connect, []

    class Dead:
        def __init__(self, conn):
            self.conn = conn

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self.conn.close()

        def execute(self, *a, **k):
            raise exc.OperationalError("INSERT", {}, Exception("gone"), connection_invalidated=True)

    class Watched:
        def __init__(self, conn):
            self.conn = conn

        def execution_options(self, **options):
            if options.get("isolation_level") == "AUTOCOMMIT":  # callbacks.store's INSERT
                inserts.append(1)
                if len(inserts) == 1:
                    return Dead(self.conn)
            return self.conn.execution_options(**options)

        def __getattr__(self, name):
            return getattr(self.conn, name)

    monkeypatch.setattr(db.engine, "connect", lambda: Watched(real_connect()))
    monkeypatch.setattr(callbacks.db.engine, "connect", lambda: Watched(real_connect()))
    assert acked(post(client, payment.callback_token, paid_body(payment)))
    assert inserts == [1, 1]
    assert reload(payment).status == "paid"


def test_other_database_errors_are_not_retried(app, payment, monkeypatch):
    calls = []

    def connect():
        calls.append(1)
        raise exc.OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(db.engine, "connect", connect)
    with pytest.raises(exc.OperationalError):
        callbacks.store(payment.callback_token, b"{}", source=SAFARICOM, headers={}, size=2)
    assert calls == [1]


def test_the_audit_row_is_written_without_loading_anyone(client, payment, monkeypatch, cashier):
    loaded = []
    real = login_manager._user_callback
    monkeypatch.setattr(
        login_manager, "_user_callback", lambda uid: loaded.append(uid) or real(uid)
    )
    client.login(cashier)  # even a request carrying a session names no person on the entry
    loaded.clear()
    assert acked(post(client, payment.callback_token, paid_body(payment)))
    assert loaded == []  # Flask-Login never asked: the audit entry is Safaricom's doing
    entry = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "payment.paid")).one()
    assert (entry.user_id, entry.bar_id, entry.address) == (None, payment.bar_id, SAFARICOM)
    assert entry.details == {"payment_id": payment.id, "source": "callback", "late": False}


def test_production_settings_do_not_pre_ping_every_checkout(tmp_path):
    config = load_config({"PESATAB_ENV": "development"}, instance_path=str(tmp_path))
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is False


class FakeConnection:
    def __init__(self, fail: bool = False):
        self.autocommit, self.fail, self.sent = False, fail, []

    def execute(self, sql):
        self.sent.append((sql, self.autocommit))
        if self.fail:
            raise OSError("server closed the connection")


class Record:
    def __init__(self):
        self.info = {}


def test_a_connection_used_a_moment_ago_is_not_pinged():
    conn, record = FakeConnection(), Record()
    extensions._note_checkin(conn, record)
    extensions._ping_if_idle(conn, record, None)
    assert conn.sent == []


def test_a_new_or_idle_connection_is_pinged_outside_a_transaction():
    conn, record = FakeConnection(), Record()
    extensions._ping_if_idle(conn, record, None)  # never checked in: new
    record.info[extensions._CHECKED_IN] = time.monotonic() - extensions.IDLE_PING_SECONDS - 1
    extensions._ping_if_idle(conn, record, None)
    assert conn.sent == [("SELECT 1", True), ("SELECT 1", True)]
    assert conn.autocommit is False  # as it was


def test_a_dead_idle_connection_is_replaced_before_use():
    conn, record = FakeConnection(fail=True), Record()
    with pytest.raises(exc.DisconnectionError):
        extensions._ping_if_idle(conn, record, None)


def test_the_pool_still_hands_out_working_connections(app):
    for _ in range(3):
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1

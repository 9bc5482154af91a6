"""The background applier's batches share their round trips (issue 16): one SELECT locks every
payment of the batch, the audit entries go in one INSERT, the events are finished by one
executemany; and a batch still credits each payment exactly once, or is rolled back whole and
applied one event at a time. Run on SQLite and on PostgreSQL (TEST_DATABASE_URL)."""

from __future__ import annotations

import threading
import time
from collections import Counter

from sqlalchemy import select, text

from app import audit
from app.extensions import db
from app.models import AuditEvent
from app.payments import applier, callbacks, ledger
from tests.test_callbacks import acked, paid_body, post, reload, stored_events
from tests.test_callbacks_ingest import counting, store


def test_a_batch_locks_audits_and_finishes_in_one_statement_each(app, factory, bar):
    payments = [factory.payment(bar, status="sent", amount=100 + i) for i in range(3)]
    bodies = [paid_body(p, receipt=f"QBATCH{i}") for i, p in enumerate(payments)]
    events = [store(p, body) for p, body in zip(payments, bodies, strict=True)]
    events.append(store(payments[0], bodies[0]))  # Daraja's resend, in the same batch

    with counting() as seen:
        dispositions = callbacks.apply_many(events)

    assert dispositions == ["applied", "applied", "applied", "duplicate"]
    assert seen.trail == [
        "SELECT payment",  # all three, locked in callback-token order
        "UPDATE payment",
        "UPDATE payment",
        "UPDATE payment",
        "INSERT audit_event",  # three entries, one statement
        "UPDATE callback_event",  # four events, one executemany
        "COMMIT",
    ]
    assert [e.disposition for e in stored_events()] == dispositions
    assert [reload(p).receipt for p in payments] == ["QBATCH0", "QBATCH1", "QBATCH2"]
    entries = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert sorted((e.action, e.bar_id, e.details["payment_id"]) for e in entries) == sorted(
        ("payment.paid", bar.id, p.id) for p in payments
    )
    assert {e.details["source"] for e in entries} == {"callback"}


def test_an_unknown_token_in_a_batch_changes_nothing_else(app, factory, bar):
    payment = factory.payment(bar, status="sent", amount=450)
    stranger = factory.payment(bar, status="sent", amount=450)
    body = paid_body(stranger)
    events = [store(payment, paid_body(payment))]
    unknown = callbacks.store("no-such-token", b"{}", source=None, headers={}, size=2)
    events.append(unknown)

    assert callbacks.apply_many(events) == ["applied", "unknown_token"]
    assert reload(payment).status == "paid" and reload(stranger).status == "sent"
    assert body  # the stranger's callback never came


def test_a_batch_with_an_event_finished_elsewhere_is_rolled_back_whole(
    app, factory, bar, monkeypatch, caplog
):
    first = factory.payment(bar, status="sent", amount=450)
    second = factory.payment(bar, status="sent", amount=300)
    events = {
        first.id: store(first, paid_body(first)),
        second.id: store(second, paid_body(second, receipt="QSEC1")),
    }
    real_record, finished = ledger.record, []

    def replay_job_finishes_the_other_one_first(target, outcome):
        if not finished:  # the batch's first payment, before the batch has written anything
            other_id = second.id if target.id == first.id else first.id
            finished.append(other_id)
            with db.engine.begin() as other:
                other.execute(
                    text("UPDATE callback_event SET disposition = 'duplicate' WHERE id = :id"),
                    {"id": events[other_id].id},
                )
        return real_record(target, outcome)

    monkeypatch.setattr(ledger, "record", replay_job_finishes_the_other_one_first)

    dispositions = callbacks.apply_many(list(events.values()))

    (taken,) = finished
    kept = first.id if taken == second.id else second.id
    expected = {kept: "applied", taken: "duplicate"}
    assert dispositions == [expected[first.id], expected[second.id]]
    assert "one by one" not in caplog.text  # seen at the finish, not as an error
    payments = {first.id: first, second.id: second}
    assert reload(payments[kept]).status == "paid"
    assert reload(payments[taken]).status == "sent"  # the batch's work on it: rolled back
    entries = db.session.scalars(select(AuditEvent)).all()
    assert [(e.action, e.details["payment_id"]) for e in entries] == [("payment.paid", kept)]


def test_audit_entries_held_in_a_batch_are_dropped_if_it_fails(app, bar):
    try:
        with audit.batched():
            audit.record_system("payment.paid", bar_id=bar.id, payment_id=1)
            raise RuntimeError("the batch failed")
    except RuntimeError:
        db.session.rollback()
    audit.record_system("payment.paid", bar_id=bar.id, payment_id=2)  # outside: written at once
    db.session.commit()

    entries = db.session.scalars(select(AuditEvent)).all()
    assert [e.details["payment_id"] for e in entries] == [2]


def test_two_workers_batches_over_the_same_payments_credit_each_once(
    app, factory, bar, monkeypatch
):
    """Two batches holding the same two payments in opposite orders, at once: each locks them
    in one statement in token order, so one waits for the other instead of deadlocking."""
    first = factory.payment(bar, status="sent", amount=450)
    second = factory.payment(bar, status="sent", amount=300)
    bodies = {first.id: paid_body(first, receipt="QTWO1"), second.id: paid_body(second)}
    batches = [
        [store(first, bodies[first.id]), store(second, bodies[second.id])],
        [store(second, bodies[second.id]), store(first, bodies[first.id])],
    ]
    real_record = ledger.record

    def slowly(target, outcome):
        time.sleep(0.05)  # long enough for the other batch to reach its lock
        return real_record(target, outcome)

    monkeypatch.setattr(ledger, "record", slowly)
    barrier, results, errors = threading.Barrier(2), [None, None], []

    def worker(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                results[i] = callbacks.apply_many(batches[i])
            except Exception as err:  # reported below
                errors.append(err)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == [] and None not in results
    assert Counter(d for r in results for d in r) == {"applied": 2, "duplicate": 2}
    assert (reload(first).receipt, reload(second).status) == ("QTWO1", "paid")
    assert Counter(e.disposition for e in stored_events()) == {"applied": 2, "duplicate": 2}


def test_with_the_queue_full_the_hook_applies_before_answering(
    app, client, factory, bar, monkeypatch
):
    """CALLBACK_APPLY=background, BACKLOG_LIMIT events already waiting: the next callback is
    applied before the answer, as inline mode does, instead of growing the queue."""
    payment = factory.payment(bar, status="sent", amount=450)
    app.config["CALLBACK_APPLY"] = "background"
    monkeypatch.setattr(applier, "BACKLOG_LIMIT", 0)
    try:
        assert acked(post(client, payment.callback_token, paid_body(payment)))
        assert applier.applier_for(app).backlog == 0  # nothing was queued
    finally:
        running = app.extensions.get(applier.EXTENSION)
        if running is not None:
            running.stop(timeout=10)

    assert [e.disposition for e in stored_events()] == ["applied"]  # at the answer already
    assert reload(payment).status == "paid"

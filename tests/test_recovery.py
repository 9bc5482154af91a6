"""The periodic jobs, called directly with the clock in the test's hands (no sleeps)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import jobs
from app.extensions import db
from app.jobs.scheduler import build, should_run_here
from app.models import AuditEvent, CallbackEvent, JobStatus, Payment, utcnow
from app.payments import callbacks, ledger, recovery
from app.payments.push import PushRequest, start_push

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
def live_bar(factory, bar, live):
    factory.live_credentials(bar)
    return bar


def push(bar, phone="254708374149", amount=450) -> Payment:
    return start_push(
        bar,
        PushRequest(
            phone=phone,
            amount=amount,
            purpose="api",
            account_reference="POS1",
            description="Bar tab",
        ),
    )


def later(seconds: float):
    return utcnow() + timedelta(seconds=seconds)


def fresh(payment: Payment) -> Payment:
    db.session.expire_all()
    return db.session.get(Payment, payment.id)


def callback_body(checkout_id: str, code: int, items: list | None = None) -> str:
    callback = {
        "MerchantRequestID": "m",
        "CheckoutRequestID": checkout_id,
        "ResultCode": code,
        "ResultDesc": "x",
    }
    if items:
        callback["CallbackMetadata"] = {"Item": items}
    return json.dumps({"Body": {"stkCallback": callback}})


def near(actual, expected, seconds: float = 2.0) -> bool:
    return abs((actual - expected).total_seconds()) <= seconds


def queries(sim_state) -> list[dict]:
    return [e for e in sim_state.events("request") if e["path"].endswith("stkpushquery/v1/query")]


@pytest.mark.parametrize(
    ("phone", "status", "code"),
    [
        ("254708374149", "paid", "0"),
        ("254711001032", "cancelled", "1032"),
        ("254711001019", "expired", "1019"),  # a 1037 waits for a second query: test_unconfirmed.py
        ("254711000001", "failed", "1"),
    ],
)
def test_a_lost_callback_is_settled_by_query(live_bar, sim_state, phone, status, code):
    sim_state.set_faults(callback_lost=True)
    payment = push(live_bar, phone)
    assert payment.status == "sent"
    assert recovery.recover_due(now=later(30)).queried == 0  # not before a minute has passed
    result = recovery.recover_due(now=later(61))
    assert (result.queried, result.settled) == (1, 1)
    payment = fresh(payment)
    assert (payment.status, payment.result_code) == (status, code)
    if (
        status == "paid"
    ):  # the query carries no receipt: paid, receipt to follow, for a person to see
        assert (
            payment.receipt is None and payment.flagged and payment.flag_reason == "receipt_pending"
        )
    assert (
        db.session.scalar(
            select(AuditEvent.details).where(AuditEvent.action == f"payment.{status}")
        )["source"]
        == "query"
    )


@pytest.mark.parametrize("form", ["4999", "500"])
def test_still_processing_means_wait_then_the_final_answer_settles(live_bar, sim_state, form):
    sim_state.set_faults(callback_lost=True, query_pending_form=form, query_pending_calls=2)
    payment = push(live_bar)
    first = recovery.recover_due(now=later(61))
    assert (first.still_waiting, fresh(payment).status) == (1, "sent")
    assert near(fresh(payment).next_query_at, later(61) + timedelta(seconds=15))
    recovery.recover_due(now=later(77))
    assert fresh(payment).status == "sent"
    recovery.recover_due(now=later(108))
    assert fresh(payment).status == "paid"
    assert len(queries(sim_state)) == 3


def test_does_not_exist_for_a_while_is_no_answer_yet(live_bar, sim_state):
    sim_state.set_faults(callback_lost=True, query_unknown_calls=2)
    payment = push(live_bar, "254711001032")
    for seconds in (61, 77, 108):
        recovery.recover_due(now=later(seconds))
    assert fresh(payment).status == "cancelled"


def test_the_back_off_schedule_is_honoured(live_bar, sim_state):
    sim_state.set_faults(callback_lost=True, query_pending_calls=100)
    payment = push(live_bar)
    now, gaps = later(61), []
    for _ in range(7):
        recovery.recover_due(now=now)
        due = fresh(payment).next_query_at
        gaps.append(round((due - now).total_seconds()))
        assert recovery.recover_due(now=due - timedelta(seconds=1)).queried == 0  # not early
        now = due
    assert gaps == [15, 30, 60, 120, 300, 300, 300]


def test_unknown_after_30_minutes_is_flagged_for_a_person(live_bar, sim_state):
    sim_state.set_faults(callback_lost=True, query_pending_calls=100)
    payment = push(live_bar)
    recovery.recover_due(now=later(29 * 60))
    assert not fresh(payment).flagged
    result = recovery.recover_due(now=later(31 * 60))
    assert result.flagged == 1 and fresh(payment).flag_reason == "unknown_30m"


def test_spike_arrest_slows_the_job_down_without_failing_anything(live_bar, sim_state):
    sim_state.set_faults(callback_lost=True)
    payments = [push(live_bar, f"25471100{n:04d}") for n in (1032, 1019, 1)]
    sim_state.set_faults(spike_arrest_calls=1)
    assert jobs.run("recover", now=later(61)) is not None
    assert [fresh(p).status for p in payments] == ["sent", "sent", "sent"]
    status = db.session.get(JobStatus, "recover")
    assert status.last_success_at is not None and status.failures == 0
    assert len(queries(sim_state)) == 1  # stopped after the refusal: slowed down
    assert near(fresh(payments[0]).next_query_at, later(61) + timedelta(seconds=120))
    recovery.recover_due(now=later(62))  # the others are still due; the refused one waits
    assert [fresh(p).status for p in payments] == ["sent", "expired", "failed"]
    recovery.recover_due(now=later(200))
    assert fresh(payments[0]).status == "cancelled"


def test_a_failed_callback_event_is_replayed_once(live_bar, sim_state, monkeypatch, client):
    sim_state.set_faults(callback_lost=True)
    payment = push(live_bar)
    body = callback_body(
        payment.checkout_request_id,
        0,
        [{"Name": "Amount", "Value": 450}, {"Name": "MpesaReceiptNumber", "Value": "UKM4ABC12D"}],
    )
    real_record = ledger.record
    monkeypatch.setattr(
        ledger, "record", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("db hiccup"))
    )
    response = client.post(
        f"/hooks/stk/{payment.callback_token}", data=body, content_type="application/json"
    )
    assert response.get_json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    event = db.session.scalar(select(CallbackEvent))
    assert (event.disposition, event.attempts) == ("pending", 1)
    monkeypatch.setattr(ledger, "record", real_record)
    assert jobs.replay_pending(now=later(10)) == 0  # not due yet
    assert jobs.replay_pending(now=later(31)) == 1
    assert jobs.replay_pending(now=later(600)) == 0
    db.session.expire_all()
    assert db.session.get(CallbackEvent, event.id).disposition == "applied"
    assert fresh(payment).receipt == "UKM4ABC12D"


def test_an_event_left_pending_by_a_crash_is_replayed(live_bar, sim_state):
    sim_state.set_faults(callback_lost=True)
    payment = push(live_bar, "254711001032")
    body = callback_body(payment.checkout_request_id, 1032)
    callbacks.store(
        payment.callback_token, body.encode(), source="196.201.214.200", headers={}, size=len(body)
    )
    assert jobs.replay_pending(now=later(30)) == 0  # give the request a chance to finish first
    assert jobs.replay_pending(now=later(61)) == 1
    assert fresh(payment).status == "cancelled"


def test_stuck_created_payments_settle_as_not_sent(factory, bar):
    stuck = factory.payment(bar, status="created", checkout_request_id=None, inflight_key="x")
    stuck.created_at = utcnow() - timedelta(minutes=6)
    young = factory.payment(bar, status="created", checkout_request_id=None)
    silent = factory.payment(bar, status="unknown", checkout_request_id=None)
    silent.created_at = utcnow() - timedelta(minutes=10)
    db.session.commit()
    assert recovery.expire_stuck() == 2
    stuck, young, silent = fresh(stuck), fresh(young), fresh(silent)
    assert (stuck.status, stuck.error_kind, stuck.inflight_key) == ("expired", "not_sent", None)
    assert "Not sent" in stuck.message and young.status == "created"
    assert (silent.status, silent.flag_reason) == ("expired", "never_confirmed")


def test_every_payment_settles_with_every_callback_dropped(live_bar, sim_state):
    sim_state.set_faults(callback_lost=True)
    phones = {
        "254708374149": "paid",
        "254711001032": "cancelled",
        "254711001037": "expired",
        "254711002001": "failed",
        "254711000001": "failed",
        "254110123456": "paid",
    }
    payments = {phone: push(live_bar, phone, amount=100) for phone in phones}
    now = later(61)
    for _ in range(3):
        jobs.run("recover", now=now)
        now += timedelta(minutes=5)
    assert {phone: fresh(p).status for phone, p in payments.items()} == phones
    assert db.session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.action.like("payment.%"))
    ) == len(phones)


def test_a_lease_lets_one_holder_run_a_job_at_a_time():
    assert jobs.take_lease("recover", "worker-a", 60)
    assert not jobs.take_lease("recover", "worker-b", 60)
    assert jobs.take_lease("recover", "worker-a", 60)  # renewing is fine
    assert jobs.take_lease("recover", "worker-b", 60, now=later(61))  # expired: b takes it over
    jobs.release_lease("recover", "worker-b")
    assert jobs.take_lease("recover", "worker-a", 60)


def test_a_job_held_elsewhere_is_skipped():
    jobs.take_lease("expire", "another-host", 60)
    assert jobs.run("expire") is None
    assert db.session.get(JobStatus, "expire") is None


def test_job_health_is_recorded(factory, bar):
    assert jobs.run("expire") == 0
    status = db.session.get(JobStatus, "expire")
    assert status.runs == 1 and status.last_success_at and status.last_items == 0


def test_a_failing_job_is_recorded_and_releases_its_lease(monkeypatch):
    monkeypatch.setitem(jobs.JOBS, "expire", jobs.Job("expire", lambda now=None: 1 / 0, seconds=60))
    assert jobs.run("expire") is None
    status = db.session.get(JobStatus, "expire")
    assert (
        status.failures == 1
        and status.last_error == "ZeroDivisionError"
        and status.last_success_at is None
    )
    assert jobs.take_lease("expire", "someone-else", 60)


def test_the_scheduler_is_built_for_single_runs_and_stays_off_in_tests(app):
    assert not should_run_here(app)
    scheduler = build(app)
    names = {job.id for job in scheduler.get_jobs()}
    assert names == set(jobs.JOBS)
    assert scheduler._job_defaults == {
        "max_instances": 1,
        "coalesce": True,
        "misfire_grace_time": 30,
    }


def test_the_scheduler_runs_only_where_it_should(app, monkeypatch):
    app.config.update(TESTING=False, SCHEDULER_ENABLED=True)
    assert should_run_here(app)
    app.debug = True
    monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
    assert not should_run_here(app)  # the reloader's watcher process
    monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")
    assert should_run_here(app)
    app.config["SCHEDULER_ENABLED"] = False
    assert not should_run_here(app)


def test_check_now_settles_one_payment_at_once(app, live_bar, sim_state, manager):
    from tests.conftest import login_as

    sim_state.set_faults(callback_lost=True)
    payment = push(live_bar, "254711001032")
    boss = login_as(app, manager)
    html = boss.get(f"/payments/{payment.id}/status", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "Check now" in html
    html = boss.post(f"/payments/{payment.id}/check", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "The customer cancelled." in html and "Check now" not in html
    assert fresh(payment).status == "cancelled"


def test_check_now_says_when_m_pesa_is_still_waiting(app, live_bar, sim_state, owner):
    from tests.conftest import login_as

    sim_state.set_faults(callback_lost=True, query_pending_calls=5)
    payment = push(live_bar)
    html = (
        login_as(app, owner)
        .post(f"/payments/{payment.id}/check", headers={"HX-Request": "true"})
        .get_data(as_text=True)
    )
    assert "M-Pesa says it is still waiting for the customer." in html
    assert fresh(payment).status == "sent"


def test_job_health_shows_on_the_operators_page_not_the_bars(app, owner):
    from app.ops.operators import create_operator
    from tests.conftest import login_as
    from tests.test_ops import OPERATOR_PASSWORD, login_as_operator

    jobs.run("expire")
    operator = create_operator("Nuru Operator", "nuru@ops.pesatab.example.com", OPERATOR_PASSWORD)
    html = login_as_operator(app, operator).get("/ops/").get_data(as_text=True)
    assert "Background checks" in html and 'id="job-expire"' in html and "Not yet" in html
    dashboard = login_as(app, owner).get("/dashboard").get_data(as_text=True)
    assert "Background checks" not in dashboard


def test_a_late_callback_fills_the_receipt_a_query_could_not_give(live_bar, sim_state, client):
    sim_state.set_faults(callback_lost=True)
    payment = push(live_bar)
    recovery.recover_due(now=later(61))
    assert fresh(payment).flag_reason == "receipt_pending"
    items = [
        {"Name": "Amount", "Value": 450},
        {"Name": "MpesaReceiptNumber", "Value": "UKM4LATE01"},
    ]
    client.post(
        f"/hooks/stk/{payment.callback_token}",
        data=callback_body(payment.checkout_request_id, 0, items),
        content_type="application/json",
    )
    payment = fresh(payment)
    assert (payment.status, payment.receipt, payment.flagged, payment.flag_reason) == (
        "paid",
        "UKM4LATE01",
        False,
        None,
    )


def test_daily_jobs_run_at_their_own_time_in_nairobi(app):
    jobs_by_id = {job.id: job.trigger for job in build(app).get_jobs()}
    assert "hour='0', minute='20'" in str(jobs_by_id["reconcile"])
    assert "hour='7', minute='0'" in str(jobs_by_id["summaries"])
    assert str(jobs_by_id["summaries"].timezone) == "Africa/Nairobi"

"""Alerts: each fires on its condition and clears by itself when the condition is gone."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import event

from app.extensions import db
from app.models import Bar, CallbackEvent, utcnow
from app.ops import alerts
from app.payments import recovery
from app.payments.push import PushRequest, start_push
from app.settings import onboarding, vault
from app.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET
from tests.conftest import login_as

NOW = datetime(2026, 3, 10, 17, 0)  # 20:00 in Nairobi: a busy evening


def kinds(bar, now=NOW) -> list[str]:
    return [a.kind for a in alerts.bar_alerts(bar.id, now)]


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def settled(factory, bar, status, minutes_ago=10, purpose="tab", *, heard=True):
    """A payment pushed `minutes_ago` and settled 20 s later, by its callback when `heard`."""
    at = ago(minutes=minutes_ago)
    payment = factory.payment(
        bar,
        status=status,
        purpose=purpose,
        created_at=at,
        sent_at=at,
        settled_at=at + timedelta(seconds=20),
    )
    if heard:
        callback(bar, at + timedelta(seconds=20))
    return payment


def callback(bar, received_at, disposition="applied"):
    db.session.add(
        CallbackEvent(
            token="t" * 40,
            bar_id=bar.id if bar else None,
            raw_body="{}",
            body_size=2,
            disposition=disposition,
            received_at=received_at,
        )
    )
    db.session.commit()


def test_it_has_nothing_to_say_about_a_quiet_bar(bar):
    assert alerts.bar_alerts(bar.id, NOW) == []
    assert alerts.all_alerts(NOW) == {}


# -- success rate ------------------------------------------------------------------------------


def test_it_warns_when_most_requests_in_the_last_hour_fail(factory, bar):
    for status in ("paid", "paid", "failed", "cancelled", "failed"):
        settled(factory, bar, status)
    (alert,) = alerts.bar_alerts(bar.id, NOW)
    assert alert.kind == "low_success_rate" and alert.severity == "warning"
    assert (
        "Only 2 of the 5 M-Pesa requests settled in the last hour were paid (40%, below 50%)"
        in alert.sentence
    )
    assert "Reconciliation" in alert.what_to_do


def test_the_success_rate_alert_clears_when_the_hour_moves_on(factory, bar):
    for status in ("paid", "failed", "failed", "rejected", "expired"):
        settled(factory, bar, status)
    assert kinds(bar) == ["low_success_rate"]
    assert kinds(bar, NOW + timedelta(hours=1)) == []


def test_it_clears_when_enough_requests_are_paid_again(factory, bar):
    for status in ("paid", "paid", "failed", "failed", "failed"):
        settled(factory, bar, status)
    assert kinds(bar) == ["low_success_rate"]
    for _ in range(2):
        settled(factory, bar, "paid", minutes_ago=1)
    assert kinds(bar) == []  # 4 of 7


@pytest.mark.parametrize("extra", ["test_pushes", "in_flight", "older"])
def test_it_needs_enough_settled_tab_or_api_requests_in_the_hour(factory, bar, extra):
    for status in ("failed", "failed", "cancelled", "paid"):
        settled(factory, bar, status, purpose="api")
    if extra == "test_pushes":
        settled(factory, bar, "failed", purpose="test")
    elif extra == "in_flight":
        factory.payment(bar, status="sent", created_at=ago(minutes=1), sent_at=ago(minutes=1))
    else:
        settled(factory, bar, "failed", minutes_ago=61)
    assert "low_success_rate" not in kinds(bar)


def test_the_threshold_and_minimum_are_settings(app, factory, bar):
    for status in ("paid", "paid", "failed"):
        settled(factory, bar, status)
    assert kinds(bar) == []
    app.config.update(ALERT_SUCCESS_RATE=80, ALERT_MIN_PUSHES=3)
    assert kinds(bar) == ["low_success_rate"]


# -- callbacks not arriving --------------------------------------------------------------------


def silent_pushes(factory, bar, count=3, minutes_ago=10):
    for _ in range(count):
        settled(factory, bar, "paid", minutes_ago=minutes_ago, heard=False)


def test_it_says_when_accepted_pushes_get_no_callback_at_all(app, factory, bar):
    silent_pushes(factory, bar)
    (alert,) = alerts.bar_alerts(bar.id, NOW)
    assert alert.kind == "no_callbacks" and alert.severity == "danger"
    assert (
        "M-Pesa accepted 3 requests in the last hour but not one callback reached PesaTab"
        in alert.sentence
    )
    assert "Payments still settle" in alert.what_to_do
    assert app.config["PUBLIC_BASE_URL"] + "/hooks/stk/" in alert.what_to_do
    assert "PUBLIC_BASE_URL" in alert.what_to_do


def test_one_callback_in_the_hour_clears_it(factory, bar, outsider):
    silent_pushes(factory, bar)
    callback(outsider.bar, ago(minutes=5))  # another bar's callback says nothing about ours
    callback(None, ago(minutes=5), "unknown_token")
    assert kinds(bar) == ["no_callbacks"]
    callback(bar, ago(minutes=5))
    assert kinds(bar) == []


def test_a_callback_from_before_the_hour_does_not_count(factory, bar):
    silent_pushes(factory, bar)
    callback(bar, ago(minutes=61))
    assert kinds(bar) == ["no_callbacks"]


@pytest.mark.parametrize(("count", "minutes_ago"), [(2, 10), (3, 1), (3, 61)])
def test_it_waits_for_three_pushes_old_enough_to_have_had_a_callback(
    factory, bar, count, minutes_ago
):
    silent_pushes(factory, bar, count, minutes_ago)
    assert kinds(bar) == []


# -- token fetches failing ---------------------------------------------------------------------


def test_a_refused_token_raises_an_alert_until_one_is_issued(bar):
    alerts.note_token_failure(bar.id, "bad_credentials")
    alerts.note_token_failure(bar.id, "bad_credentials")
    db.session.commit()
    (alert,) = alerts.bar_alerts(bar.id, NOW)
    assert alert.kind == "token_failing" and alert.severity == "danger"
    assert (
        "Safaricom refused to sign PesaTab in with this bar's M-Pesa keys (2 times in a row)"
        in alert.sentence
    )
    assert "changed or revoked on the Daraja portal" in alert.what_to_do
    alerts.note_token_ok(bar.id)
    db.session.commit()
    assert kinds(bar) == []


def test_a_product_no_longer_enabled_says_so(bar):
    alerts.note_token_failure(bar.id, "product_not_enabled")
    db.session.commit()
    assert "M-Pesa Express enabled" in alerts.bar_alerts(bar.id, NOW)[0].what_to_do


def use_secret(bar, secret: str) -> None:
    """The bar's set in use now holds `secret` (as when the secret is changed on the Daraja
    portal behind PesaTab's back). A save on a live bar would wait as a pending set, so the
    save is made while the bar is briefly not live."""
    state, bar.setup_state = bar.setup_state, "verified"
    vault.save(
        bar,
        vault.CredentialInput(
            environment="sandbox",
            kind="paybill",
            shortcode=SANDBOX_SHORTCODE,
            till_number=None,
            consumer_key=SIM_CONSUMER_KEY,
            consumer_secret=secret,
            passkey=SANDBOX_PASSKEY,
        ),
    )
    bar.setup_state = state
    db.session.commit()


def token_failures(bar) -> int:
    db.session.expire_all()
    return db.session.get(Bar, bar.id).token_failures


def test_a_credentials_check_records_a_refused_token_and_a_good_one(bar, live):
    use_secret(bar, "RevokedSecret123456")
    assert not onboarding.check_credentials(bar).ok
    assert token_failures(bar) == 1 and kinds(bar) == ["token_failing"]
    use_secret(bar, SIM_CONSUMER_SECRET)
    assert onboarding.check_credentials(bar).ok
    assert token_failures(bar) == 0 and kinds(bar) == []


def test_pushes_and_recovery_queries_record_token_fetches(factory, bar, live, sim_state):
    factory.live_credentials(bar)
    sim_state.set_faults(callback_lost=True)  # the push stays "sent": no instant callback race
    waiting = factory.payment(bar, status="sent", sent_at=ago(minutes=5), created_at=ago(minutes=5))
    use_secret(bar, "RevokedSecret123456")
    request = PushRequest(
        phone="254708374149",
        amount=1,
        purpose="test",
        account_reference="PESATABTEST",
        description="Test push",
    )
    assert start_push(bar, request).status == "rejected"
    assert token_failures(bar) == 1
    recovery.check_payment(waiting)
    assert token_failures(bar) == 2 and kinds(bar) == ["token_failing"]
    use_secret(bar, SIM_CONSUMER_SECRET)
    assert start_push(bar, request).status == "sent"
    assert token_failures(bar) == 0 and kinds(bar) == []


# -- payments unknown for 30 minutes -----------------------------------------------------------


def test_it_warns_about_requests_without_an_answer_for_30_minutes(factory, bar):
    factory.payment(
        bar, status="sent", amount=450, created_at=ago(minutes=31), sent_at=ago(minutes=31)
    )
    factory.payment(bar, status="unknown", amount=1200, created_at=ago(minutes=40))  # never sent_at
    factory.payment(
        bar, status="sent", amount=99, created_at=ago(minutes=29), sent_at=ago(minutes=29)
    )
    (alert,) = [a for a in alerts.bar_alerts(bar.id, NOW) if a.kind == "unsettled"]
    assert alert.severity == "warning"
    assert (
        alert.sentence
        == "2 M-Pesa requests have had no answer for more than 30 minutes (KES 1,650)."
    )
    assert "M-Pesa statement" in alert.what_to_do


def test_the_unsettled_alert_clears_when_the_payment_settles(factory, bar):
    payment = factory.payment(
        bar, status="sent", created_at=ago(minutes=45), sent_at=ago(minutes=45)
    )
    assert kinds(bar) == ["unsettled"]
    payment.status, payment.settled_at = "paid", NOW
    db.session.commit()
    assert kinds(bar) == []


# -- every bar at once -------------------------------------------------------------------------


def count_queries(fn) -> tuple[object, int]:
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        result = fn()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return result, len(statements)


def test_all_alerts_are_grouped_by_bar_in_a_fixed_number_of_queries(factory, bar, outsider):
    silent_pushes(factory, bar)
    alerts.note_token_failure(outsider.bar_id)
    db.session.commit()
    found, few = count_queries(lambda: alerts.all_alerts(NOW))
    assert {bar_id: [a.kind for a in found_alerts] for bar_id, found_alerts in found.items()} == {
        bar.id: ["no_callbacks"],
        outsider.bar_id: ["token_failing"],
    }
    for n in range(5):
        more = factory.bar(f"Extra {n}")
        silent_pushes(factory, more)
    found, many = count_queries(lambda: alerts.all_alerts(NOW))
    assert len(found) == 7 and many == few == 4


# -- who sees them -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_owners_and_managers_see_alerts_and_what_to_do_on_the_dashboard(app, factory, bar, role):
    now = utcnow()
    factory.payment(
        bar, status="sent", created_at=now - timedelta(hours=2), sent_at=now - timedelta(hours=2)
    )
    page = login_as(app, factory.user(bar, role)).get("/dashboard").get_data(as_text=True)
    assert 'id="alerts"' in page and f'id="alert-{bar.id}-unsettled"' in page
    assert "Check the M-Pesa statement or the customer&#39;s SMS" in page


def test_cashiers_do_not_get_the_alerts(app, factory, bar, cashier):
    now = utcnow()
    factory.payment(
        bar, status="sent", created_at=now - timedelta(hours=2), sent_at=now - timedelta(hours=2)
    )
    page = login_as(app, cashier).get("/dashboard").get_data(as_text=True)
    assert 'id="alerts"' not in page


def test_a_bar_without_alerts_shows_no_alert_section(app, owner):
    page = login_as(app, owner).get("/dashboard").get_data(as_text=True)
    assert 'id="alerts"' not in page

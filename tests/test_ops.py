"""Operators: PesaTab's own people. No bar, every bar's state on /ops/, the global switch."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import AuditEvent, Bar, CallbackEvent, User, utcnow
from app.ops import alerts, overview, system
from app.ops.operators import create_operator
from app.payments.push import PushRefused, check_allowed
from app.reconciliation import periods
from app.simulator import SANDBOX_PASSKEY, SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET
from tests.conftest import Client, login_as
from tests.factories import Factory

OPERATOR_PASSWORD = "a long operator passphrase"


@pytest.fixture
def operator(app):
    return create_operator("Nuru Operator", "nuru@ops.pesatab.example.com", OPERATOR_PASSWORD)


@pytest.fixture
def ops_client(app, operator):
    return login_as_operator(app, operator)


def new_client(app) -> Client:
    app.test_client_class = Client
    return app.test_client()


def login_as_operator(app, operator):
    client = new_client(app)
    response = client.login(operator, OPERATOR_PASSWORD)
    assert response.status_code == 302
    return client


def today_start(timezone="Africa/Nairobi"):
    return periods.day_start(periods.local_today(timezone, utcnow()), timezone)


# -- creating operators ------------------------------------------------------------------------


def test_it_creates_an_operator_from_the_cli(runner):
    result = runner.invoke(
        args=["operators", "create", "--email", "Nuru@Ops.Example.com", "--name", "Nuru"],
        env={"PESATAB_OPERATOR_PASSWORD": OPERATOR_PASSWORD},
    )
    assert result.exit_code == 0, result.output
    assert "nuru@ops.example.com created" in result.output
    user = db.session.scalar(select(User).where(User.email == "nuru@ops.example.com"))
    assert (
        user.role == "operator" and user.bar_id is None and user.check_password(OPERATOR_PASSWORD)
    )
    assert user.role_label == "Operator"
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "operator.created"))
    assert audit.user_id == user.id and audit.bar_id is None
    assert OPERATOR_PASSWORD not in str(audit.details)
    listed = runner.invoke(args=["operators", "list"])
    assert "nuru@ops.example.com" in listed.output and "active" in listed.output


def test_the_password_can_be_typed_at_a_prompt(runner):
    result = runner.invoke(
        args=["operators", "create", "--email", "a@ops.example.com", "--name", "A"],
        input=f"{OPERATOR_PASSWORD}\n{OPERATOR_PASSWORD}\n",
        env={"PESATAB_OPERATOR_PASSWORD": None},
    )
    assert result.exit_code == 0, result.output
    assert OPERATOR_PASSWORD not in result.output


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("new@ops.example.com", "too short", "at least 12 characters"),
        ("owner@taken.example.com", OPERATOR_PASSWORD, "already exists"),
    ],
)
def test_it_refuses_a_short_password_or_a_taken_email(
    runner, factory, bar, email, password, message
):
    factory.user(bar, "owner", email="owner@taken.example.com")
    result = runner.invoke(
        args=["operators", "create", "--email", email, "--name", "X"],
        env={"PESATAB_OPERATOR_PASSWORD": password},
    )
    assert result.exit_code != 0 and message in result.output
    assert db.session.scalar(select(User).where(User.role == "operator")) is None


def test_a_deactivated_operator_is_signed_out_and_cannot_sign_in(app, runner, operator):
    client = login_as_operator(app, operator)
    result = runner.invoke(args=["operators", "deactivate", "--email", operator.email])
    assert result.exit_code == 0, result.output
    assert client.get("/ops/").headers["Location"].startswith("/login")
    assert new_client(app).login(operator, OPERATOR_PASSWORD).status_code == 200


def test_only_operators_go_without_a_bar_in_the_database(bar):
    db.session.add(User(bar=bar, name="X", email="x@ops.example.com", role="operator"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    db.session.add(User(bar=None, name="Y", email="y@bar.example.com", role="cashier"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


# -- signing in and where operators may go -----------------------------------------------------


def test_an_operator_signs_in_on_the_same_page_and_lands_on_ops(app, operator):
    response = new_client(app).post(
        "/login",
        data={"email": operator.email, "password": OPERATOR_PASSWORD},
        follow_redirects=True,
    )
    assert response.status_code == 200 and response.request.path == "/ops/"
    page = response.get_data(as_text=True)
    assert "Every bar" in page and "Sign out" in page
    assert "/tabs/" not in page and "/settings/mpesa/" not in page  # no bar's nav


def test_the_home_page_and_login_page_send_a_signed_in_operator_to_ops(ops_client):
    assert ops_client.get("/", follow_redirects=True).request.path == "/ops/"
    assert ops_client.get("/login", follow_redirects=True).request.path == "/ops/"


@pytest.mark.parametrize(
    "path",
    [
        "/settings/mpesa/",
        "/settings/staff/",
        "/settings/api-keys/",
        "/tabs/",
        "/payments/",
        "/reconciliation/",
    ],
)
def test_an_operator_gets_403_on_bar_pages_and_the_page_still_renders(ops_client, path):
    response = ops_client.get(path)
    assert response.status_code == 403
    assert "Operators" in response.get_data(as_text=True)  # the operator's nav, not a bar's


def test_an_operator_can_sign_out(ops_client):
    assert ops_client.post("/logout").status_code == 302
    assert ops_client.get("/ops/").headers["Location"].startswith("/login")


# -- the page of every bar ---------------------------------------------------------------------


def test_it_lists_every_bar_with_its_state_switch_and_todays_volume(
    ops_client, factory, bar, outsider
):
    start = today_start()
    at = start + timedelta(minutes=1) if utcnow() - start > timedelta(minutes=2) else utcnow()
    factory.payment(bar, status="paid", amount=450, created_at=at)
    factory.payment(bar, status="failed", amount=1000, created_at=at)
    factory.payment(bar, status="paid", amount=5, purpose="test", created_at=at)  # not counted
    factory.payment(
        bar, status="paid", amount=777, created_at=start - timedelta(minutes=5)
    )  # yesterday
    other = outsider.bar
    other.mpesa_enabled, other.setup_state = False, "live"
    db.session.commit()
    page = ops_client.get("/ops/").get_data(as_text=True)
    assert f'id="bar-{bar.id}"' in page and f'id="bar-{other.id}"' in page
    assert "Kwa Mama Pub" in page and "Other Side Lounge" in page
    row = page.split(f'id="bar-{bar.id}"')[1].split("</tr>")[0]
    assert "No credentials yet" in row and "On" in row
    assert "2 · KES 1,450" in row and "1 · KES 450" in row
    other_row = page.split(f'id="bar-{other.id}"')[1].split("</tr>")[0]
    assert "Live" in other_row and "Off (bar's switch)" in other_row and "0 · KES 0" in other_row


def test_each_bar_is_counted_on_its_own_calendar_day(factory):
    now = datetime(2026, 3, 10, 22, 30)  # 01:30 on the 11th in Nairobi; 22:30 on the 10th in London
    nairobi, london = (
        factory.bar("Nairobi Bar"),
        factory.bar("London Bar", timezone="Europe/London"),
    )
    for bar in (nairobi, london):
        factory.payment(bar, status="paid", amount=100, created_at=datetime(2026, 3, 10, 20, 0))
        factory.payment(bar, status="paid", amount=200, created_at=datetime(2026, 3, 10, 22, 0))
    volumes = overview.today_volumes({"Africa/Nairobi", "Europe/London"}, now)
    assert volumes[nairobi.id] == overview.Volume(1, 200, 1, 200)
    assert volumes[london.id] == overview.Volume(2, 300, 2, 300)


def test_it_shows_each_bars_alerts_and_the_callbacks_nobody_could_place(
    ops_client, factory, bar, outsider
):
    alerts.note_token_failure(bar.id, "bad_credentials")
    db.session.add_all(
        [
            CallbackEvent(token="f" * 40, raw_body="{}", body_size=2, disposition="unknown_token"),
            CallbackEvent(token="f" * 40, raw_body="{}", body_size=2, disposition="unknown_token"),
            CallbackEvent(
                token="f" * 40,
                raw_body="{}",
                body_size=2,
                disposition="unknown_token",
                received_at=today_start() - timedelta(minutes=1),
            ),
        ]
    )
    db.session.commit()
    page = ops_client.get("/ops/").get_data(as_text=True)
    assert f'id="alert-{bar.id}-token_failing"' in page
    assert "Safaricom refused to sign PesaTab in" in page and "Check credentials" in page
    assert f'id="bar-{outsider.bar_id}-alerts"' not in page
    assert '<strong id="alerting-count">1</strong>' in page
    assert '<strong id="unknown-callbacks">2</strong>' in page


def count_statements(fn) -> tuple[object, list[str]]:
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        return fn(), statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def busy_bar(factory, name):
    bar = factory.bar(name)
    factory.live_credentials(bar)
    now = utcnow()
    factory.payment(bar, status="paid", created_at=now, sent_at=now)
    factory.payment(
        bar, status="sent", created_at=now - timedelta(hours=1), sent_at=now - timedelta(hours=1)
    )
    alerts.note_token_failure(bar.id)
    db.session.commit()
    return bar


def test_the_page_costs_the_same_few_queries_for_two_bars_or_ten(ops_client, factory):
    for n in range(2):
        busy_bar(factory, f"Bar {n}")
    response, few = count_statements(lambda: ops_client.get("/ops/"))
    assert response.status_code == 200 and response.get_data(as_text=True).count('-unsettled"') == 2
    for n in range(2, 10):
        busy_bar(factory, f"Bar {n}")
    response, many = count_statements(lambda: ops_client.get("/ops/"))
    assert response.get_data(as_text=True).count('-token_failing"') == 10
    assert len(many) == len(few) <= 10
    # Operators never see credentials: the page does not even read them.
    assert not any("mpesa_credential" in statement for statement in many)
    page = response.get_data(as_text=True)
    assert all(
        secret not in page for secret in (SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET, SANDBOX_PASSKEY)
    )


# -- the global switch -------------------------------------------------------------------------


def test_the_switch_needs_a_ticked_confirmation(ops_client):
    response = ops_client.post("/ops/mpesa/disable", data={})
    assert response.status_code == 400
    assert "Tick the box to confirm" in response.get_data(as_text=True)
    assert not system.pushes_disabled()


def test_an_operator_stops_every_push_from_the_page_and_starts_them_again(
    ops_client, operator, factory, bar
):
    bar.setup_state = "live"
    db.session.commit()
    response = ops_client.post("/ops/mpesa/disable", data={"confirm": "y"}, follow_redirects=True)
    assert "New M-Pesa requests are stopped for every bar" in response.get_data(as_text=True)
    assert system.pushes_disabled()
    with pytest.raises(PushRefused) as refused:
        check_allowed(db.session.get(Bar, bar.id), "tab")
    assert refused.value.code == "globally_disabled"
    audit = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "mpesa.global_disabled")
    )
    assert audit.user_id == operator.id and audit.bar_id is None

    assert ops_client.post("/ops/mpesa/enable", data={}).status_code == 400
    assert system.pushes_disabled()
    response = ops_client.post("/ops/mpesa/enable", data={"confirm": "y"}, follow_redirects=True)
    assert "M-Pesa requests are allowed again" in response.get_data(as_text=True)
    db.session.expire_all()
    assert not system.pushes_disabled()
    check_allowed(db.session.get(Bar, bar.id), "tab")
    enabled = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "mpesa.global_enabled")
    )
    assert enabled.user_id == operator.id


def test_the_page_says_when_the_environment_holds_pushes_off(app, ops_client):
    app.config["MPESA_PUSHES_DISABLED"] = True
    page = ops_client.get("/ops/").get_data(as_text=True)
    assert "New M-Pesa requests are stopped for every bar." in page
    assert "MPESA_PUSHES_DISABLED is set in the environment" in page


@pytest.mark.parametrize("role", ["owner", "manager", "cashier"])
def test_bar_people_cannot_touch_the_switch(app, factory, bar, role):
    client = login_as(app, factory.user(bar, role, password=Factory.PASSWORD))
    assert client.post("/ops/mpesa/disable", data={"confirm": "y"}).status_code == 403
    assert not system.pushes_disabled()

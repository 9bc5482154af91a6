"""The owners' daily summary: a Yesterday card on the dashboard, and one email a day with SMTP."""

from __future__ import annotations

import itertools
import smtplib
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app.config import ConfigError, load_config
from app.extensions import db
from app.models import AuditEvent, utcnow
from app.ops import notify
from app.reconciliation import periods
from tests.conftest import login_as

NOW = datetime(2026, 3, 11, 4, 0)  # 07:00 on the 11th in Nairobi
YESTERDAY = datetime(2026, 3, 10, 9, 0)  # 12:00 on the 10th in Nairobi
SMTP = {
    "SMTP_HOST": "mail.example.com",
    "SMTP_PORT": 587,
    "SMTP_USER": "pesatab",
    "SMTP_PASSWORD": "smtp-secret-value",
    "SMTP_FROM": "PesaTab <summaries@pesatab.example.com>",
    "SMTP_STARTTLS": True,
}
_receipts = itertools.count(1)


class FakeSMTP:
    """Stands in for smtplib.SMTP and records what would have gone out."""

    sent: list = []
    calls: list = []
    refuse: bool = False

    def __init__(self, host, port, timeout=None):
        FakeSMTP.calls.append(("connect", host, port))

    def starttls(self, context=None):
        FakeSMTP.calls.append(("starttls",))

    def login(self, user, password):
        FakeSMTP.calls.append(("login", user, password))

    def send_message(self, message):
        if FakeSMTP.refuse:
            raise smtplib.SMTPRecipientsRefused({message["To"]: (550, b"no such mailbox")})
        FakeSMTP.sent.append(message)

    def quit(self):
        FakeSMTP.calls.append(("quit",))


@pytest.fixture
def mailbox(monkeypatch):
    FakeSMTP.sent, FakeSMTP.calls, FakeSMTP.refuse = [], [], False
    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    return FakeSMTP


@pytest.fixture
def smtp(app, mailbox):
    app.config.update(SMTP)
    return mailbox


def receipt() -> str:
    return f"SKA{next(_receipts):07d}"


def busy_yesterday(factory, bar, at=YESTERDAY):
    factory.payment(
        bar,
        status="paid",
        amount=1200,
        created_at=at,
        sent_at=at,
        settled_at=at + timedelta(seconds=30),
        receipt=receipt(),
    )
    factory.payment(
        bar,
        status="paid",
        amount=800,
        created_at=at,
        sent_at=at,
        settled_at=at + timedelta(seconds=40),
        receipt=receipt(),
    )
    factory.payment(
        bar,
        status="cancelled",
        amount=500,
        created_at=at,
        sent_at=at,
        settled_at=at,
        result_code="1032",
    )
    factory.payment(
        bar,
        status="paid",
        amount=1,
        purpose="test",
        created_at=at,
        sent_at=at,
        settled_at=at,
        receipt=receipt(),
    )
    factory.payment(bar, status="sent", amount=300, created_at=at, sent_at=at)  # a break by now


# -- in the app --------------------------------------------------------------------------------


def test_the_owner_sees_yesterday_on_the_dashboard(app, factory, bar, owner):
    yesterday = periods.local_today(bar.timezone, utcnow()) - timedelta(days=1)
    start, _ = periods.window(yesterday, yesterday, bar.timezone)
    busy_yesterday(factory, bar, at=start + timedelta(hours=12))
    page = login_as(app, owner).get("/dashboard").get_data(as_text=True)
    assert f"Yesterday, {yesterday.strftime('%A %d %B')}" in page
    assert '<strong id="yesterday-requested">4</strong>' in page
    assert '<strong id="yesterday-paid">KES 2,000</strong>' in page
    assert '<strong id="yesterday-rate">66.7%</strong>' in page
    assert '<strong id="yesterday-breaks">1</strong>' in page and "1 began yesterday" in page
    assert f"/reconciliation/?day={yesterday.isoformat()}" in page


def test_a_quiet_yesterday_still_shows_the_card(app, owner):
    page = login_as(app, owner).get("/dashboard").get_data(as_text=True)
    assert 'id="yesterday"' in page and '<strong id="yesterday-rate">—</strong>' in page


@pytest.mark.parametrize("role", ["manager", "cashier"])
def test_the_card_is_for_owners(app, factory, bar, role):
    page = login_as(app, factory.user(bar, role)).get("/dashboard").get_data(as_text=True)
    assert 'id="yesterday"' not in page


def test_the_summary_reads_the_nightly_figures_when_they_are_written(factory, bar):
    from app.reconciliation.report import write_daily_summaries

    busy_yesterday(factory, bar)
    write_daily_summaries(now=NOW)
    summary = notify.yesterday(bar, NOW)
    assert summary.day.isoformat() == "2026-03-10" and summary.figures.written_at == NOW
    assert summary.figures.requested == 4 and summary.figures.kes["paid"] == 2000


# -- by email ----------------------------------------------------------------------------------


def test_without_smtp_settings_nothing_is_sent_and_nothing_fails(mailbox, factory, bar, owner):
    busy_yesterday(factory, bar)
    assert notify.send_daily_summaries(NOW) == 0
    assert mailbox.calls == [] and mailbox.sent == []


def test_each_bars_active_owners_get_one_email_a_day(smtp, factory, bar, owner, manager):
    second_owner = factory.user(bar, "owner", email="second@kwa-mama.example.com")
    factory.user(bar, "owner", email="gone@kwa-mama.example.com", active=False)
    busy_yesterday(factory, bar)
    assert notify.send_daily_summaries(NOW) == 1
    (message,) = smtp.sent
    assert message["To"] == f"{owner.email}, {second_owner.email}"
    assert message["From"] == SMTP["SMTP_FROM"]
    assert message["Subject"] == "Kwa Mama Pub: Tue 10 Mar, KES 2,000 paid by M-Pesa"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert "Tuesday 10 March 2026" in body and "KES 2,000" in body and "66.7%" in body
        assert "The customer cancelled." in body
        assert "http://127.0.0.1:5000/reconciliation/?day=2026-03-10" in body
    assert "Breaks to look at: 1" in text
    assert ("starttls",) in smtp.calls and ("login", "pesatab", "smtp-secret-value") in smtp.calls
    assert smtp.calls[-1] == ("quit",)
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "summary.emailed"))
    assert audit.bar_id == bar.id and audit.details == {"day": "2026-03-10", "recipients": 2}
    assert "smtp-secret-value" not in str(audit.details)

    assert notify.send_daily_summaries(NOW) == 0  # run again the same morning
    assert notify.send_daily_summaries(NOW + timedelta(hours=5)) == 0
    assert len(smtp.sent) == 1


def test_the_next_day_brings_the_next_email(smtp, factory, bar, owner):
    busy_yesterday(factory, bar)
    busy_yesterday(factory, bar, at=YESTERDAY + timedelta(days=1))
    assert notify.send_daily_summaries(NOW) == 1
    assert notify.send_daily_summaries(NOW + timedelta(days=1)) == 1
    assert [m["Subject"][:20] for m in smtp.sent] == [
        "Kwa Mama Pub: Tue 10",
        "Kwa Mama Pub: Wed 11",
    ]


def test_a_quiet_day_sends_nothing(smtp, bar, owner):
    assert notify.send_daily_summaries(NOW) == 0
    assert smtp.sent == [] and smtp.calls == []  # not even a connection


def test_each_bar_gets_its_own_email(smtp, factory, bar, owner, outsider):
    busy_yesterday(factory, bar)
    busy_yesterday(factory, outsider.bar)
    assert notify.send_daily_summaries(NOW) == 2
    assert sorted(m["To"] for m in smtp.sent) == sorted([owner.email, outsider.email])
    assert [c for c in smtp.calls if c[0] == "connect"] == [("connect", "mail.example.com", 587)]


def test_a_refused_message_is_not_recorded_so_a_later_run_sends_it(smtp, factory, bar, owner):
    busy_yesterday(factory, bar)
    smtp.refuse = True
    assert notify.send_daily_summaries(NOW) == 0
    assert (
        db.session.scalar(select(AuditEvent).where(AuditEvent.action == "summary.emailed")) is None
    )
    smtp.refuse = False
    assert notify.send_daily_summaries(NOW) == 1


def test_a_mail_server_that_cannot_be_reached_fails_the_job(app, monkeypatch, factory, bar, owner):
    app.config.update(SMTP)

    def unreachable(*args, **kwargs):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(smtplib, "SMTP", unreachable)
    busy_yesterday(factory, bar)
    with pytest.raises(ConnectionRefusedError):
        notify.send_daily_summaries(NOW)
    assert (
        db.session.scalar(select(AuditEvent).where(AuditEvent.action == "summary.emailed")) is None
    )


# -- settings ----------------------------------------------------------------------------------


def test_smtp_and_alert_settings_are_read_strictly(tmp_path):
    config = load_config({}, instance_path=str(tmp_path))
    assert config["SMTP_HOST"] is None and config["SMTP_PORT"] == 587 and config["SMTP_STARTTLS"]
    assert config["ALERT_SUCCESS_RATE"] == 50 and config["ALERT_MIN_PUSHES"] == 5
    config = load_config(
        {
            "SMTP_HOST": "mail",
            "SMTP_FROM": "a@b.example",
            "SMTP_PORT": "465",
            "SMTP_STARTTLS": "no",
            "ALERT_SUCCESS_RATE": "70",
        },
        instance_path=str(tmp_path),
    )
    assert (config["SMTP_PORT"], config["SMTP_STARTTLS"], config["ALERT_SUCCESS_RATE"]) == (
        465,
        False,
        70,
    )
    for bad, named in [
        ({"SMTP_HOST": "mail"}, "SMTP_FROM"),
        ({"SMTP_USER": "u"}, "SMTP_USER"),
        ({"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS"),
        ({"ALERT_SUCCESS_RATE": "150"}, "ALERT_SUCCESS_RATE"),
        ({"ALERT_MIN_PUSHES": "0"}, "ALERT_MIN_PUSHES"),
    ]:
        with pytest.raises(ConfigError, match=named):
            load_config(bad, instance_path=str(tmp_path))

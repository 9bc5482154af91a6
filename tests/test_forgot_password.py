"""Forgot password: owners get a mailed set-password link (with SMTP), everyone else is sent to
their owner or manager's Staff page, and the page never says whether an account exists."""

from __future__ import annotations

import re
import smtplib

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEvent, SetPasswordLink
from tests.conftest import Client
from tests.factories import Factory

SMTP = {
    "SMTP_HOST": "mail.example.com",
    "SMTP_PORT": 587,
    "SMTP_USER": "pesatab",
    "SMTP_PASSWORD": "smtp-secret-value",
    "SMTP_FROM": "PesaTab <accounts@pesatab.example.com>",
    "SMTP_STARTTLS": True,
    "PUBLIC_BASE_URL": "https://pay.pesatab.example.com",
}
STAFF_PAGE = "give you a new set-password link from the Staff page"


class FakeSMTP:
    """Stands in for smtplib.SMTP and keeps what would have gone out."""

    sent: list = []
    fail: bool = False

    def __init__(self, host, port, timeout=None):
        if FakeSMTP.fail:
            raise ConnectionRefusedError("mail server down")

    def starttls(self, context=None):
        pass

    def login(self, user, password):
        pass

    def send_message(self, message):
        FakeSMTP.sent.append(message)

    def quit(self):
        pass


@pytest.fixture
def mailbox(monkeypatch):
    FakeSMTP.sent, FakeSMTP.fail = [], False
    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    return FakeSMTP


@pytest.fixture
def smtp(app, mailbox):
    app.config.update(SMTP)
    return mailbox


def ask(client: Client, typed: str, **kwargs):
    return client.post("/forgot-password", data={"email": typed}, **kwargs)


def main_text(response) -> str:
    """The page's own words (the CSRF token in the page's head changes with each request)."""
    html = response.get_data(as_text=True)
    return re.search(r"<main.*?</main>", html, re.S).group(0)


def links() -> int:
    return db.session.scalar(select(func.count(SetPasswordLink.id)))


def test_the_sign_in_page_links_to_forgot_password(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<a href="/forgot-password">Forgot your password?</a>' in page
    form = client.get("/forgot-password")
    assert (
        form.status_code == 200 and b"Enter the email or phone number you sign in with" in form.data
    )


def test_an_owner_is_mailed_a_link_that_sets_a_new_password(app, client, smtp, owner):
    response = ask(client, owner.email.upper())
    assert response.status_code == 200
    assert b"we have emailed its owner a link to choose a new password" in response.data
    (message,) = smtp.sent
    assert message["To"] == owner.email and message["From"] == SMTP["SMTP_FROM"]
    body = message.get_content()
    link = re.search(r"https://pay\.pesatab\.example\.com(/set-password/\S+)", body).group(1)
    assert "smtp-secret-value" not in body

    app.test_client_class = Client
    browser = app.test_client()
    assert b"Welcome, Wanjiru Owner" in browser.get(link).data
    new = "a new owner password"
    assert browser.post(link, data={"password": new, "confirm": new}).status_code == 302
    assert client.login(owner, password=new).status_code == 302
    issued = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "staff.link_issued"))
    assert issued.bar_id == owner.bar_id and issued.details["by"] == "email"


def test_asking_changes_nothing_until_the_link_is_used(client, smtp, owner):
    ask(client, owner.email)
    assert len(smtp.sent) == 1  # a link is on its way, and the password is still the old one
    assert client.login(owner, password=Factory.PASSWORD).status_code == 302


def test_the_page_answers_the_same_whatever_was_typed(app, smtp, owner, manager, cashier):
    answers = set()
    for typed in (owner.email, manager.email, cashier.email, "nobody@example.com", "0712345678"):
        app.test_client_class = Client
        answers.add(main_text(ask(app.test_client(), typed)))
    assert len(answers) == 1
    (answer,) = answers
    assert STAFF_PAGE in answer
    assert [m["To"] for m in smtp.sent] == [owner.email]  # only the owner got mail


def test_without_smtp_everyone_is_sent_to_the_staff_page_and_nothing_is_issued(
    app, mailbox, owner, cashier
):
    answers = set()
    for typed in (owner.email, cashier.email, "nobody@example.com"):
        app.test_client_class = Client
        response = ask(app.test_client(), typed)
        assert response.status_code == 200
        answers.add(main_text(response))
    assert len(answers) == 1
    assert "Ask your bar&#39;s owner or manager to " + STAFF_PAGE in answers.pop()
    assert mailbox.sent == [] and links() == 0


def test_managers_and_cashiers_get_no_mail_and_no_link(client, smtp, manager, cashier):
    for person in (manager, cashier):
        assert STAFF_PAGE.encode() in ask(client, person.email).data
    assert smtp.sent == [] and links() == 0


def test_a_deactivated_owner_gets_no_mail(client, smtp, owner):
    owner.active = False
    db.session.commit()
    assert STAFF_PAGE.encode() in ask(client, owner.email).data
    assert smtp.sent == []


def test_the_link_goes_to_the_public_address_not_the_requests_host(app, client, smtp, owner):
    app.config["WTF_CSRF_ENABLED"] = False  # the session cookie is not sent to another host
    response = ask(client, owner.email, headers={"Host": "evil.example"}, csrf=False)
    assert response.status_code == 200
    body = smtp.sent[0].get_content()
    assert "evil.example" not in body and "https://pay.pesatab.example.com/set-password/" in body


def test_an_owner_is_mailed_at_most_once_in_ten_minutes(app, smtp, owner):
    for _ in range(3):
        app.test_client_class = Client
        ask(app.test_client(), owner.email)
    assert len(smtp.sent) == 1


def test_a_mail_server_that_fails_is_not_shown(client, smtp, owner, caplog):
    smtp.fail = True
    response = ask(client, owner.email)
    assert response.status_code == 200 and STAFF_PAGE.encode() in response.data
    assert "smtp-secret-value" not in caplog.text


def test_the_form_is_rate_limited_per_address(app, client, mailbox):
    app.config["FORGOT_PASSWORD_LIMIT_PER_ADDRESS"] = "3 per hour"
    for n in range(3):
        assert ask(client, f"guess{n}@example.com").status_code == 200
    response = ask(client, "guess@example.com")
    assert response.status_code == 429 and b"Too many attempts" in response.data


@pytest.mark.parametrize(
    ("typed", "sentence"),
    [
        ("", b"Enter your email or phone number."),
        ("o" * 300 + "@example.com", b"An email address has at most 254 characters."),
        ("not an account name", b"Enter your email, or your phone number like 0712 345 678."),
    ],
)
def test_what_cannot_be_an_account_name_gets_a_sentence(client, mailbox, typed, sentence):
    response = ask(client, typed)
    assert response.status_code == 200 and sentence in response.data
    assert b'maxlength="254"' in response.data

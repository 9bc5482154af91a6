"""Emails go out in the reader's language, whatever language the sender's page was in: the
set-password email in the owner's (or their bar's), the morning summary in each owner's."""

from __future__ import annotations

from app.extensions import db
from tests.test_forgot_password import SMTP, FakeSMTP, ask, mailbox, smtp  # noqa: F401

__all__ = ["mailbox", "smtp"]


def test_the_set_password_email_follows_the_owners_bar_not_the_browser(client, smtp, owner, bar):
    bar.locale = "sw"
    db.session.commit()
    ask(client, owner.email, headers={"Accept-Language": "en"})
    (message,) = smtp.sent
    assert "password" not in message["Subject"].lower()
    english = "choose a new password"
    assert english not in message.get_content()


def test_an_owner_who_chose_english_gets_english(client, smtp, owner, bar):
    bar.locale, owner.locale = "sw", "en"
    db.session.commit()
    ask(client, owner.email, headers={"Accept-Language": "sw"})
    (message,) = smtp.sent
    assert "password" in (message["Subject"] + message.get_content()).lower()

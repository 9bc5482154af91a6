"""Emails go out in the reader's language, whatever language the sender's page was in: the
set-password email in the owner's (or their bar's), the morning summary in each owner's."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.ops import notify
from tests.test_daily_summary import NOW, busy_yesterday
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


# The morning summary of a busy yesterday (10 March 2026, a Tuesday: KES 2,000 paid, a
# cancelled push, one still waiting), in each language: words it must carry and must not.
SUMMARY_WORDS = {
    "sw": (
        "zimelipwa kwa M-Pesa",  # the subject
        "Jumanne",  # the day's name
        "Iliombwa",
        "Kiwango cha mafanikio",
        "Kwa nini maombi hayakulipwa:",
        "Mteja ameghairi.",  # why the cancelled push was not paid, from the catalogue
        "Tofauti za kuangalia",
        "Siku nzima, na la kufanya kwa kila tofauti",
        "PesaTab hutuma hii kila asubuhi kwa wamiliki wa Kwa Mama Pub.",
    ),
    "en": (
        "paid by M-Pesa",
        "Tuesday",
        "Requested",
        "Success rate",
        "Why requests were not paid:",
        "The customer cancelled.",
        "Breaks to look at",
        "The whole day, and what to do about each break",
        "PesaTab sends this each morning to Kwa Mama Pub's owners.",
    ),
}


def _summary(bar_locale: str, factory, bar):
    bar.locale = bar_locale
    db.session.commit()
    busy_yesterday(factory, bar)
    assert notify.send_daily_summaries(NOW) == 1
    (message,) = FakeSMTP.sent
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return message["Subject"], text, html


@pytest.mark.parametrize(("language", "other"), [("sw", "en"), ("en", "sw")])
def test_the_morning_summary_is_in_the_bars_language(smtp, factory, bar, owner, language, other):
    assert owner.locale is None  # the owner has not chosen: the bar's language is theirs
    subject, text, html = _summary(language, factory, bar)
    subject_word, *sentences = SUMMARY_WORDS[language]
    assert subject.startswith("Kwa Mama Pub: ") and "KES 2,000" in subject
    assert subject_word in subject
    assert SUMMARY_WORDS[other][0] not in subject
    for said in (text, html.replace("&#39;", "'")):
        for sentence in sentences:
            assert sentence in said, sentence
        for sentence in SUMMARY_WORDS[other][1:]:
            assert sentence not in said, sentence

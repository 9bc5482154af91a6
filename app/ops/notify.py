"""The owners' daily summary: yesterday's M-Pesa figures, always on the dashboard, and by email
each morning when SMTP is set up (SMTP_HOST and friends; without them nothing is sent and
nothing fails).

The figures are the reconciliation page's own (app/reconciliation/report.py): the nightly
summary when it has been written, else counted from the payments. Each bar gets one email per
day: the send is recorded as a `summary.emailed` audit entry, checked before sending, so the
job can run again (by hand, after a failure) without emailing anyone twice. Each owner reads it
in their own language (theirs, else the bar's): owners who share a language share a message.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage

from flask import current_app, render_template
from flask_babel import force_locale, format_date, gettext
from sqlalchemy import select

from app.enums import PaymentStatus, Role
from app.extensions import db
from app.i18n import DEFAULT, LANGUAGES
from app.models import AuditEvent, Bar, User, utcnow
from app.reconciliation import breaks, periods, report

log = logging.getLogger(__name__)

EMAILED = "summary.emailed"
SMTP_TIMEOUT = 20  # seconds; a mail server that hangs must not hold the job's lease for long
# Refusals that concern one message; anything else (the server went away) stops the run.
MESSAGE_REFUSED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


@dataclass(frozen=True)
class DaySummary:
    bar: Bar
    day: date
    figures: report.Figures
    open_breaks: int  # open now, whenever they began (a break does not end at midnight)
    new_breaks: int  # of those, the ones that began on `day`
    more_breaks: bool  # there are more than the reconciliation page lists

    @property
    def quiet(self) -> bool:
        """Nothing was asked for, not even a test push, and nothing needs attention."""
        return self.figures.requested == 0 and self.figures.test_count == 0 and not self.open_breaks


def yesterday(bar: Bar, now: datetime | None = None) -> DaySummary:
    """The bar's previous calendar day (in its own timezone) and its open breaks."""
    now = now or utcnow()
    today = periods.local_today(bar.timezone, now)
    day = today - timedelta(days=1)
    figures = report.day_figures(bar, day, today)
    found = breaks.open_breaks(bar, periods.window(day, day, bar.timezone), now)
    return DaySummary(
        bar, day, figures, len(found.items), sum(1 for b in found.items if b.in_period), found.more
    )


def email_configured() -> bool:
    return bool(current_app.config.get("SMTP_HOST"))


def send_daily_summaries(now: datetime | None = None) -> int:
    """The morning job: email yesterday's summary to each bar's active owners, once per bar and
    day; bars with a quiet day get none. Returns the number of bars emailed (0 without SMTP)."""
    if not email_configured():
        return 0
    now = now or utcnow()
    done = _already_emailed(now)
    sent = 0
    with _Mailer() as mailer:
        for bar, owners in _bars_with_owners():
            summary = yesterday(bar, now)
            if (bar.id, summary.day.isoformat()) in done or summary.quiet:
                continue
            groups = _by_language(bar, owners)
            taken = [
                group
                for language, group in groups.items()
                if mailer.send(_message(summary, group, language))
            ]
            if taken:  # a refused mailbox stays refused: the others are not emailed again
                _record(summary, sum(len(group) for group in taken), now)
                sent += 1
            if len(taken) < len(groups):
                log.warning("daily summary for bar %s refused by the mail server", bar.id)
    return sent


def _already_emailed(now: datetime) -> set[tuple[int, str]]:
    rows = db.session.execute(
        select(AuditEvent.bar_id, AuditEvent.details).where(
            AuditEvent.action == EMAILED, AuditEvent.created_at >= now - timedelta(days=3)
        )
    )
    return {(bar_id, (details or {}).get("day")) for bar_id, details in rows}


def _bars_with_owners() -> list[tuple[Bar, list[User]]]:
    owners = db.session.scalars(
        select(User)
        .where(User.role == Role.OWNER, User.active.is_(True), User.bar_id.is_not(None))
        .order_by(User.bar_id, User.id)
    ).all()
    by_bar: dict[int, list[User]] = defaultdict(list)
    for owner in owners:
        by_bar[owner.bar_id].append(owner)
    if not by_bar:
        return []
    bars = db.session.scalars(select(Bar).where(Bar.id.in_(by_bar)).order_by(Bar.id))
    return [(bar, by_bar[bar.id]) for bar in bars]


def _by_language(bar: Bar, owners: list[User]) -> dict[str, list[User]]:
    """The owners by the language they read: their own choice, else the bar's."""
    groups: dict[str, list[User]] = defaultdict(list)
    for owner in owners:
        language = owner.locale or bar.locale
        groups[language if language in LANGUAGES else DEFAULT].append(owner)
    return dict(groups)


def _record(summary: DaySummary, recipients: int, now: datetime) -> None:
    db.session.add(
        AuditEvent(
            bar_id=summary.bar.id,
            action=EMAILED,
            created_at=now,
            details={"day": summary.day.isoformat(), "recipients": recipients},
        )
    )
    db.session.commit()


def _message(summary: DaySummary, owners: list[User], language: str = DEFAULT) -> EmailMessage:
    """The summary for `owners`, who all read `language`."""
    base = current_app.config["PUBLIC_BASE_URL"]
    context = {
        "summary": summary,
        "figures": summary.figures,
        "bar": summary.bar,
        "link": f"{base}/reconciliation/?day={summary.day.isoformat()}",
        "language": language,
    }
    message = EmailMessage()
    paid = summary.figures.kes[PaymentStatus.PAID]
    with force_locale(language):
        message["Subject"] = gettext(
            "%(bar)s: %(day)s, KES %(paid)s paid by M-Pesa",
            bar=summary.bar.name,
            day=format_date(summary.day, "EEE dd MMM"),
            paid=format(paid, ","),
        )
        text = render_template("ops/summary_email.txt", **context)
        html = render_template("ops/summary_email.html", **context)
    message["From"] = current_app.config["SMTP_FROM"]
    message["To"] = ", ".join(owner.email for owner in owners)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


class _Mailer:
    """One SMTP connection for the whole run, opened on the first message."""

    def __init__(self) -> None:
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self) -> _Mailer:
        return self

    def __exit__(self, *exc) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except smtplib.SMTPException:
                log.warning("SMTP QUIT failed; the summaries already sent stay sent")

    def send(self, message: EmailMessage) -> bool:
        """True if the server took the message; a refusal of this one message is logged."""
        if self.smtp is None:
            self.smtp = _connect()
        try:
            self.smtp.send_message(message)
        except MESSAGE_REFUSED as err:
            log.warning("SMTP refused a message: %s", type(err).__name__)
            return False
        return True


def _connect() -> smtplib.SMTP:
    config = current_app.config
    host, port = config["SMTP_HOST"], config["SMTP_PORT"]
    if port == 465:  # implicit TLS ("SMTPS")
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            host, port, timeout=SMTP_TIMEOUT, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)
        if config["SMTP_STARTTLS"]:
            smtp.starttls(context=ssl.create_default_context())
    if config["SMTP_USER"]:
        smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
    return smtp

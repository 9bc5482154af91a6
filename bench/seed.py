"""Seeding benchmark databases in bulk: SQLAlchemy Core inserts through the app's own tables
(one multi-row INSERT per batch, never one ORM object per row), and session cookies signed
with the app's key instead of thousands of password logins."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlalchemy import insert, select

from app.extensions import db
from app.models import Bar, Payment, Tab, TabLine, User, utcnow

BATCH = 5000


def insert_rows(table, rows: Sequence[dict], *, returning=None) -> list:
    """Insert `rows` into `table` in batches; returns the `returning` column's values in order."""
    found = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        statement = insert(table)
        if returning is not None:
            result = db.session.execute(
                statement.returning(returning, sort_by_parameter_order=True), chunk
            )
            found.extend(result.scalars().all())
        else:
            db.session.execute(statement, chunk)
    db.session.commit()
    return found


def bars(n: int, prefix: str = "Bench Bar") -> list[int]:
    """`n` live bars; returns their ids."""
    rows = [
        {
            "name": f"{prefix} {i}",
            "slug": f"{prefix.lower().replace(' ', '-')}-{i}-{secrets.token_hex(3)}",
            "timezone": "Africa/Nairobi",
            "mpesa_enabled": True,
            "setup_state": "live",
            "created_at": utcnow(),
        }
        for i in range(1, n + 1)
    ]
    return insert_rows(Bar.__table__, rows, returning=Bar.__table__.c.id)


def users(bar_ids: Iterable[int], role: str, per_bar: int = 1) -> list[tuple[int, int]]:
    """People without passwords (they sign in through signed cookies); returns (user id, bar id)."""
    rows = []
    for bar_id in bar_ids:
        for n in range(per_bar):
            rows.append(
                {
                    "bar_id": bar_id,
                    "name": f"{role.title()} {bar_id}-{n}",
                    "email": f"{role}{n}.{bar_id}.{secrets.token_hex(3)}@bench.example.com",
                    "password_hash": None,
                    "role": role,
                    "active": True,
                    "session_version": 1,
                    "created_at": utcnow(),
                }
            )
    ids = insert_rows(User.__table__, rows, returning=User.__table__.c.id)
    return [(uid, row["bar_id"]) for uid, row in zip(ids, rows, strict=True)]


def tabs_with_lines(bar_ids: Sequence[int], opened_by: Sequence[int | None]) -> list[int]:
    """One open tab per entry, with three lines (KES 1,350 in all)."""
    rows = [
        {
            "bar_id": bar_id,
            "label": f"Table {i % 40 + 1}",
            "status": "open",
            "opened_by_id": uid,
            "opened_at": utcnow(),
        }
        for i, (bar_id, uid) in enumerate(zip(bar_ids, opened_by, strict=True))
    ]
    ids = insert_rows(Tab.__table__, rows, returning=Tab.__table__.c.id)
    lines = [
        {
            "tab_id": tab_id,
            "description": what,
            "quantity": q,
            "unit_price": price,
            "created_at": utcnow(),
        }
        for tab_id in ids
        for what, q, price in (("Tusker", 4, 250), ("Nyama choma", 1, 300), ("Soda", 2, 25))
    ]
    insert_rows(TabLine.__table__, lines)
    return ids


def sent_payments(specs: Sequence[dict]) -> list[int]:
    """Payments already accepted by Daraja (`sent`), as a push would leave them.

    Each spec has bar_id, phone, amount, callback_token, checkout_request_id,
    merchant_request_id and optionally tab_id."""
    now = utcnow()
    rows = []
    for n, spec in enumerate(specs):
        rows.append(
            {
                "bar_id": spec["bar_id"],
                "tab_id": spec.get("tab_id"),
                "purpose": "tab" if spec.get("tab_id") else "api",
                "phone": spec["phone"],
                "amount": spec["amount"],
                "account_reference": f"TAB{n % 100000}",
                "description": "Bar tab",
                "status": "sent",
                "callback_token": spec["callback_token"],
                "inflight_key": f"{spec['bar_id']}:bench{n}:{spec['phone']}",
                "checkout_request_id": spec["checkout_request_id"],
                "merchant_request_id": spec["merchant_request_id"],
                "credential_revision": 1,
                "flagged": False,
                "query_attempts": 0,
                "next_query_at": now + timedelta(minutes=30),
                "created_at": now - timedelta(seconds=5),
                "sent_at": now - timedelta(seconds=4),
                "updated_at": now,
            }
        )
    return insert_rows(Payment.__table__, rows, returning=Payment.__table__.c.id)


def session_cookies(
    app, user_ids: Sequence[int], user_agent: str = "pesatab-bench/1"
) -> dict[int, str]:
    """A signed-in session cookie for each user, as a browser holds it once it has loaded a page
    after signing in: Flask-Login's fields (same signature, same session-protection identifier
    for this client) and Flask-WTF's CSRF secret (every page sets it; without it each poll would
    write a new one and send a new cookie back). No password is checked: thousands of scrypt
    logins would take minutes and measure nothing the polling does."""
    from flask_login import login_user
    from flask_wtf.csrf import generate_csrf

    interface = app.session_interface
    signer = interface.get_signing_serializer(app)
    people = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(list(user_ids))))}
    cookies = {}
    environ = {"REMOTE_ADDR": "127.0.0.1"}
    for uid in user_ids:
        with (
            app.app_context(),
            app.test_request_context("/", environ_base=environ, headers={"User-Agent": user_agent}),
        ):
            from flask import session

            login_user(people[uid])
            generate_csrf()
            cookies[uid] = signer.dumps(dict(session))
    return cookies


def cookie_header(app, value: str) -> str:
    return f"{app.config['SESSION_COOKIE_NAME']}={value}"

"""Receipt links: a random token shown once, stored as its SHA-256, good for one tab until it
expires or a person at the bar revokes it (both audited)."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from sqlalchemy import select

from app import audit
from app.extensions import db
from app.models import ReceiptLink, Tab, utcnow

LIFETIME_DAYS = 30
# secrets.token_urlsafe(32): 43 characters of the URL-safe alphabet. Anything else is not one of
# ours, and is refused before the database is asked.
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(tab: Tab, user_id: int | None, days: int = LIFETIME_DAYS) -> tuple[ReceiptLink, str]:
    """A new link to `tab`'s receipt; returns it and its token (never stored, shown once)."""
    token = secrets.token_urlsafe(32)
    link = ReceiptLink(
        bar_id=tab.bar_id,
        tab_id=tab.id,
        token_hash=token_hash(token),
        created_by_id=user_id,
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(link)
    db.session.flush()
    audit.record(
        "receipt.link_created", bar_id=tab.bar_id, tab_id=tab.id, link_id=link.id, days=days
    )
    db.session.commit()
    return link, token


def find_usable(token: str) -> ReceiptLink | None:
    """The live link for `token`: None for a token that is not ours, revoked or expired."""
    if not TOKEN.fullmatch(token or ""):
        return None
    link = db.session.scalar(select(ReceiptLink).where(ReceiptLink.token_hash == token_hash(token)))
    if link is None or not link.usable(utcnow()):
        return None
    return link


def revoke(link: ReceiptLink, user_id: int | None) -> bool:
    """Stop `link` working (once, audited). False when it had already stopped."""
    if not link.usable(utcnow()):
        return False
    link.revoked_at, link.revoked_by_id = utcnow(), user_id
    audit.record("receipt.link_revoked", bar_id=link.bar_id, tab_id=link.tab_id, link_id=link.id)
    db.session.commit()
    return True


def live_links(tab: Tab) -> list[ReceiptLink]:
    """The tab's links that still work, newest first."""
    now = utcnow()
    return db.session.scalars(
        select(ReceiptLink)
        .where(
            ReceiptLink.tab_id == tab.id,
            ReceiptLink.bar_id == tab.bar_id,
            ReceiptLink.revoked_at.is_(None),
            ReceiptLink.expires_at > now,
        )
        .order_by(ReceiptLink.id.desc())
    ).all()

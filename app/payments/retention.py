"""Retention: raw callback bodies are kept for CALLBACK_RETENTION_DAYS, then blanked; shared
Daraja token rows of credentials no longer used go after a day.

Each CallbackEvent row stays (disposition, source, size, times, the payment it belongs to);
only the body Safaricom sent — which names the customer's phone — is replaced by PRUNED.
Payments and audit entries are never pruned. Events still pending are left alone: the replay
job may still need their body.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from app.extensions import db
from app.models import CallbackEvent, DarajaToken, utcnow

PRUNED = "[pruned]"
BATCH_SIZE = 1000
# A token row untouched this long belongs to credentials nobody uses any more (changed, or
# the bar gone): tokens live an hour, so a row in use is rewritten every hour.
STALE_TOKEN_AFTER = timedelta(days=1)


def prune(now: datetime | None = None) -> int:
    """The prune job: old callback bodies, then stale token rows. Returns how many in all."""
    return prune_callback_bodies(now) + prune_stale_tokens(now)


def prune_stale_tokens(now: datetime | None = None) -> int:
    """Delete shared Daraja token rows not rewritten for STALE_TOKEN_AFTER (all long expired)."""
    cutoff = (now or utcnow()) - STALE_TOKEN_AFTER
    gone = db.session.execute(delete(DarajaToken).where(DarajaToken.updated_at < cutoff)).rowcount
    db.session.commit()
    return gone


def prune_callback_bodies(now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Blank the raw bodies of callbacks received more than CALLBACK_RETENTION_DAYS ago.

    Works in batches of ids (never loading bodies), one commit each, so memory stays bounded
    and locks stay short; the update re-checks its conditions, so a second copy running at the
    same time prunes nothing twice. Returns how many bodies were blanked; running it again
    finds nothing more to do.
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=current_app.config["CALLBACK_RETENTION_DAYS"])
    due = (
        CallbackEvent.received_at < cutoff,
        CallbackEvent.raw_body != PRUNED,
        CallbackEvent.disposition != "pending",
    )
    pruned, after = 0, 0
    while True:
        ids = db.session.scalars(
            select(CallbackEvent.id)
            .where(CallbackEvent.id > after, *due)
            .order_by(CallbackEvent.id)
            .limit(batch_size)
        ).all()
        if not ids:
            return pruned
        blank = (
            update(CallbackEvent)
            .where(CallbackEvent.id.in_(ids), *due)
            .values(raw_body=PRUNED)
            .execution_options(synchronize_session=False)
        )
        pruned += db.session.execute(blank).rowcount
        db.session.commit()
        after = ids[-1]

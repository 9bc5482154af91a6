"""Retention: raw callback bodies are kept for CALLBACK_RETENTION_DAYS, then blanked.

Each CallbackEvent row stays (disposition, source, size, times, the payment it belongs to);
only the body Safaricom sent — which names the customer's phone — is replaced by PRUNED.
Payments and audit entries are never pruned. Events still pending are left alone: the replay
job may still need their body.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from app.extensions import db
from app.models import CallbackEvent, utcnow

PRUNED = "[pruned]"
BATCH_SIZE = 1000


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

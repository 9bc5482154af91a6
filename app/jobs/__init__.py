"""The periodic jobs. Bodies are plain functions; `run` adds the lease and the health record.

A job runs only where its lease is held: a row per job with a holder and an expiry, taken with a
conditional update, so two runs never overlap. Every worker's scheduler fires every tick, so a
tick also skips a job that already started recently (JobStatus.last_run_at): with several
gunicorn workers or hosts each tick runs once. Work inside
a job is claimed with conditional updates too, so even a job run by hand beside the scheduler
never does the same work twice.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.health import metrics
from app.models import CallbackEvent, JobLease, JobStatus, utcnow
from app.payments import callbacks, recovery, retention

log = logging.getLogger(__name__)

HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def replay_pending(now: datetime | None = None, limit: int = 200) -> int:
    """The replay job: callback events that failed to apply on our side (or whose process died
    between storing and applying) are applied again; each is claimed before it is touched."""
    now = now or utcnow()
    stale = now - timedelta(seconds=60)
    due = (
        db.session.query(CallbackEvent.id, CallbackEvent.next_attempt_at)
        .filter(
            CallbackEvent.disposition == "pending",
            or_(
                CallbackEvent.next_attempt_at <= now,
                (CallbackEvent.next_attempt_at.is_(None)) & (CallbackEvent.received_at <= stale),
            ),
        )
        .order_by(CallbackEvent.id)
        .limit(limit)
        .all()
    )
    applied = 0
    for event_id, seen in due:
        current = (
            CallbackEvent.next_attempt_at.is_(None)
            if seen is None
            else CallbackEvent.next_attempt_at == seen
        )
        claim = (
            update(CallbackEvent)
            .where(CallbackEvent.id == event_id, CallbackEvent.disposition == "pending", current)
            .values(next_attempt_at=now + timedelta(seconds=120))
            .execution_options(synchronize_session=False)
        )
        if db.session.execute(claim).rowcount != 1:
            db.session.rollback()
            continue
        db.session.commit()
        if callbacks.apply(db.session.get(CallbackEvent, event_id)) != "pending":
            applied += 1
    return applied


def _daily_summaries(now: datetime | None = None) -> int:
    from app.reconciliation.report import write_daily_summaries

    return write_daily_summaries(now=now)


def _summary_emails(now: datetime | None = None) -> int:
    from app.ops.notify import send_daily_summaries

    return send_daily_summaries(now=now)


def _pull_transactions(now: datetime | None = None):
    from app.payments.c2b_pull import pull_due

    return pull_due(now=now)


@dataclass(frozen=True)
class Job:
    name: str
    body: Callable[..., object]
    seconds: int | None = None  # interval; None for a daily run at `at`
    lease_seconds: int = 120
    at: tuple[int, int] = (0, 20)  # daily jobs: hour and minute in Africa/Nairobi


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("recover", recovery.recover_due, seconds=10),
        Job("replay", replay_pending, seconds=30),
        Job("expire", recovery.expire_stuck, seconds=60),
        Job("reconcile", _daily_summaries, seconds=None, lease_seconds=1800),
        Job("summaries", _summary_emails, seconds=None, lease_seconds=1800, at=(7, 0)),
        Job("prune", retention.prune, seconds=3600, lease_seconds=900),
        Job("pull", _pull_transactions, seconds=600, lease_seconds=600),
    )
}


def take_lease(
    name: str, holder: str = HOLDER, seconds: int = 120, now: datetime | None = None
) -> bool:
    """Hold job `name` until it expires; True if this holder has it now."""
    now = now or utcnow()
    if db.session.get(JobLease, name) is None:
        try:
            db.session.add(JobLease(name=name))
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
    statement = (
        update(JobLease)
        .where(
            JobLease.name == name,
            or_(JobLease.holder.is_(None), JobLease.expires_at < now, JobLease.holder == holder),
        )
        .values(holder=holder, expires_at=now + timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    taken = db.session.execute(statement).rowcount == 1
    db.session.commit()
    return taken


def release_lease(name: str, holder: str = HOLDER) -> None:
    db.session.execute(
        update(JobLease)
        .where(JobLease.name == name, JobLease.holder == holder)
        .values(holder=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _items(result: object) -> int:
    if isinstance(result, int):
        return result
    return int(getattr(result, "items", 0))


def _ran_this_tick(job: Job, status: JobStatus | None) -> bool:
    """Every worker's scheduler fires every tick, a few milliseconds apart; the lease only keeps
    two runs from overlapping. A tick whose job already started recently elsewhere is skipped."""
    if status is None or status.last_run_at is None:
        return False
    gap = job.seconds * 0.8 if job.seconds else job.lease_seconds
    return utcnow() - status.last_run_at < timedelta(seconds=gap)


def run(
    name: str, now: datetime | None = None, holder: str = HOLDER, *, tick: bool = False
) -> object | None:
    """Run job `name` once if its lease can be taken; record how it went. None if not run.
    `tick`: the scheduler's call, skipped when another process already ran this tick."""
    job = JOBS[name]
    if not take_lease(name, holder, job.lease_seconds, now):
        metrics.count_job(name, "skipped")
        return None
    status = db.session.get(JobStatus, name)
    if tick and _ran_this_tick(job, status):
        release_lease(name, holder)
        metrics.count_job(name, "skipped")
        return None
    status = status or JobStatus(name=name, runs=0, failures=0, last_items=0)
    db.session.add(status)
    status.last_run_at, status.runs = utcnow(), (status.runs or 0) + 1
    db.session.commit()
    started = time.perf_counter()
    try:
        result = job.body(now=now)
    except Exception as err:
        metrics.count_job(name, "failed", time.perf_counter() - started)
        log.exception("job %s failed", name)
        db.session.rollback()
        status = db.session.get(JobStatus, name)
        status.failures += 1
        status.last_error = f"{type(err).__name__}"[:255]
        db.session.commit()
        release_lease(name, holder)
        return None
    status = db.session.get(JobStatus, name)
    status.last_success_at, status.last_items, status.last_error = utcnow(), _items(result), None
    db.session.commit()
    release_lease(name, holder)
    metrics.count_job(name, "ok", time.perf_counter() - started)
    return result

"""APScheduler inside the web process (or on its own with `flask scheduler`).

Started on the first request a process serves, never at import or in CLI commands, never in
the debug reloader's watcher process, and never in tests. Each tick goes through jobs.run,
which takes the job's lease: with several workers the scheduler runs in each, the job once.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from app import jobs
from app.health import metrics

log = logging.getLogger(__name__)
_lock = threading.Lock()
EXTENSION = "pesatab_scheduler"
STARTED_AT = "pesatab_scheduler_started_at"


def _tick(app: Flask, name: str) -> None:
    with app.app_context():
        try:
            jobs.run(name, tick=True)
        except Exception:  # the scheduler thread must survive anything a tick does
            log.exception("scheduler tick for %s failed", name)
            metrics.count_job(name, "error")
        finally:
            from app.extensions import db

            db.session.remove()


def build(app: Flask, scheduler_class=BackgroundScheduler):
    scheduler = scheduler_class(
        timezone="UTC",
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30},
    )
    for job in jobs.JOBS.values():
        if job.seconds:
            scheduler.add_job(
                _tick, "interval", seconds=job.seconds, args=[app, job.name], id=job.name
            )
        else:  # daily, at the job's own time in Nairobi
            hour, minute = job.at
            scheduler.add_job(
                _tick,
                "cron",
                hour=hour,
                minute=minute,
                timezone="Africa/Nairobi",
                args=[app, job.name],
                id=job.name,
            )
    return scheduler


def should_run_here(app: Flask) -> bool:
    if not app.config.get("SCHEDULER_ENABLED") or app.config.get("TESTING"):
        return False
    # Under the debug reloader, only the serving child runs jobs, not the watcher.
    return not (app.debug and os.environ.get("WERKZEUG_RUN_MAIN") != "true")


def ensure_started(app: Flask) -> None:
    """Start this process's scheduler once (called before each request; cheap after the first)."""
    if EXTENSION in app.extensions or not should_run_here(app):
        return
    with _lock:
        if EXTENSION in app.extensions:
            return
        scheduler = build(app)
        scheduler.start()
        app.extensions[STARTED_AT] = time.monotonic()  # /readyz gives the first tick time to come
        app.extensions[EXTENSION] = scheduler
        atexit.register(lambda: scheduler.shutdown(wait=False))
        log.info("scheduler started in process %s", os.getpid())


def init_app(app: Flask) -> None:
    app.before_request(lambda: ensure_started(app))

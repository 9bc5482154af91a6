"""What /readyz checks: the database answers, its schema is at the latest migration, the
periodic jobs are running somewhere, and the encryption keys open the stored credentials.

Each check runs in its own short-lived thread with a deadline, so a database that hangs makes
the probe answer "not ready" on time instead of hanging the probe. A failed check says which
part failed in a short sentence of ours, never the exception's text (which can carry a
database URL); the details go to the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from alembic.script import ScriptDirectory
from flask import Flask, current_app
from sqlalchemy import func, inspect, select, text

from app.extensions import db
from app.jobs import scheduler
from app.models import JobStatus, MpesaCredential, utcnow
from app.settings import vault

log = logging.getLogger(__name__)

HEARTBEAT_JOB = "recover"  # runs every 10 s wherever a scheduler runs
KEY_SAMPLES = 5


@dataclass(frozen=True)
class Result:
    status: str  # ok | failing | skipped
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failing"

    def as_json(self) -> dict:
        return {"status": self.status, **({"reason": self.reason} if self.reason else {})}


def ok(reason: str | None = None) -> Result:
    return Result("ok", reason)


def failing(reason: str) -> Result:
    return Result("failing", reason)


def database() -> Result:
    db.session.execute(text("SELECT 1"))
    return ok()


@lru_cache(maxsize=4)
def latest_revisions(directory: str) -> frozenset[str]:
    """The head revision(s) of the migrations in `directory` (read once per process)."""
    return frozenset(ScriptDirectory(directory).get_heads())


@lru_cache(maxsize=4)
def known_revisions(directory: str) -> frozenset[str]:
    return frozenset(script.revision for script in ScriptDirectory(directory).walk_revisions())


def migrations_directory() -> str:
    return current_app.extensions["migrate"].directory


def schema() -> Result:
    directory = migrations_directory()
    heads = latest_revisions(directory)
    if not inspect(db.session.connection()).has_table("alembic_version"):
        return failing("no migration has been applied: run flask db upgrade")
    applied = frozenset(db.session.scalars(text("SELECT version_num FROM alembic_version")).all())
    if applied == heads:
        return ok()
    at, latest = ", ".join(sorted(applied)) or "nothing", ", ".join(sorted(heads))
    if applied <= known_revisions(directory):
        return failing(f"the database is at {at}, the code needs {latest}: run flask db upgrade")
    return failing(f"the database is at {at}, which this code does not know (a newer release?)")


def scheduler_required(config) -> bool:
    required = config.get("READYZ_REQUIRE_SCHEDULER")
    return bool(config.get("SCHEDULER_ENABLED")) if required is None else bool(required)


def scheduler_heartbeat() -> Result:
    """Any process's run counts: the heartbeat is the job's row, not this process's scheduler."""
    config = current_app.config
    if not scheduler_required(config):
        return Result("skipped", "no scheduler is expected")
    limit = config["READYZ_SCHEDULER_MAX_AGE"]
    status = db.session.get(JobStatus, HEARTBEAT_JOB)
    last = status.last_run_at if status is not None else None
    if last is not None and utcnow() - last <= timedelta(seconds=limit):
        return ok()
    started = current_app.extensions.get(scheduler.STARTED_AT)
    if started is not None and time.monotonic() - started <= limit:
        return ok("the scheduler has just started")  # its first tick is on its way
    if last is None:
        return failing(f"the {HEARTBEAT_JOB} job has never run")
    age = int((utcnow() - last).total_seconds())
    return failing(f"the {HEARTBEAT_JOB} job last ran {age} s ago (limit {limit} s)")


def keys() -> Result:
    """One stored credential per key id (newest first): ready when the keys open any of them.
    One bar's unreadable credentials show on its own pages; a wrong key ring opens none."""
    newest = (
        select(func.max(MpesaCredential.id))
        .group_by(MpesaCredential.key_id)
        .order_by(func.max(MpesaCredential.id).desc())
        .limit(KEY_SAMPLES)
    )
    ids = db.session.scalars(newest).all()
    if not ids:
        return ok("no stored credentials yet")
    for cred_id in ids:
        if vault.can_open(db.session.get(MpesaCredential, cred_id)):
            return ok()
    return failing("the configured encryption keys open none of the stored M-Pesa credentials")


CHECKS: dict[str, Callable[[], Result]] = {
    "database": database,
    "schema": schema,
    "scheduler": scheduler_heartbeat,
    "keys": keys,
}
FAILED_BECAUSE = {
    "database": "cannot be reached",
    "schema": "could not be read",
    "scheduler": "the job status could not be read",
    "keys": "the stored credentials could not be read",
}


def run_all(app: Flask, timeout: float) -> dict[str, Result]:
    """Every check, in order; after a failed database the rest are skipped."""
    results: dict[str, Result] = {}
    for name, check in CHECKS.items():
        if name != "database" and results["database"].status == "failing":
            results[name] = Result("skipped", "needs the database")
            continue
        results[name] = _bounded(app, name, check, timeout)
    return results


def _bounded(app: Flask, name: str, check: Callable[[], Result], timeout: float) -> Result:
    box: dict[str, Result] = {}

    def target() -> None:
        with app.app_context():
            try:
                box["result"] = check()
            except Exception as err:  # any failure is an answer: "this part is not ready"
                log.warning(
                    "readyz: the %s check failed: %s: %s",
                    name,
                    type(err).__name__,
                    str(err).splitlines()[0][:200] if str(err) else "",
                )
                box["result"] = failing(FAILED_BECAUSE[name])
            finally:
                db.session.remove()

    # A daemon thread: one stuck on a dead database must not keep the worker from exiting.
    thread = threading.Thread(target=target, name=f"readyz-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    return box.get("result") or failing(f"no answer within {timeout:g} s")

"""`flask jobs run|status` and `flask scheduler`."""

from __future__ import annotations

import contextlib
import signal
from datetime import datetime

import click
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask, current_app

from app import jobs
from app.extensions import db
from app.formats import local_time
from app.jobs import scheduler
from app.models import JobStatus


def init_app(app: Flask) -> None:
    app.cli.add_command(jobs_group)
    app.cli.add_command(run_scheduler)


@click.group("jobs")
def jobs_group() -> None:
    """Run a periodic job once, or see how each job is doing."""


@jobs_group.command("run")
@click.argument("name", type=click.Choice(sorted(jobs.JOBS)))
@click.option("--now", "now_text", default=None, help="Pretend it is this UTC time (ISO 8601).")
def run_job(name: str, now_text: str | None) -> None:
    """Run job NAME once (it waits for nobody: if another process holds its lease, it skips)."""
    now = datetime.fromisoformat(now_text) if now_text else None
    result = jobs.run(name, now=now)
    if result is None:
        click.echo(
            f"{name}: not run (another process holds the lease, or it failed: see `flask jobs "
            "status`)."
        )
        return
    click.echo(f"{name}: {result}")


@jobs_group.command("status")
def job_status() -> None:
    """Last run, last success and items handled for each job."""
    rows = {s.name: s for s in db.session.query(JobStatus)}
    for name in sorted(jobs.JOBS):
        s = rows.get(name)
        if s is None:
            click.echo(f"{name:10} never run")
            continue
        click.echo(
            f"{name:10} last run {local_time(s.last_run_at)}, last success "
            f"{local_time(s.last_success_at) or 'never'}, "
            f"{s.last_items} item(s), {s.runs} run(s), {s.failures} failure(s)"
            + (f", last error {s.last_error}" if s.last_error else "")
        )


@click.command("scheduler")
def run_scheduler() -> None:
    """Run the periodic jobs in this process (for SCHEDULER_ENABLED=0 on the web workers)."""
    app = current_app._get_current_object()
    blocking = scheduler.build(app, BlockingScheduler)
    signal.signal(signal.SIGTERM, lambda *_: blocking.shutdown(wait=False))
    click.echo("Scheduler running; Ctrl-C to stop.")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        blocking.start()

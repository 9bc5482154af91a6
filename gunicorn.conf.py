"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app` (run `flask db upgrade` first).

Every value can be set from the environment. The workers are threaded, so one cashier's slow
Daraja call (up to DARAJA_READ_TIMEOUT) does not hold up the others. Each worker builds the app
itself (no preload): its own database pool, and its own scheduler started on its first request;
the job leases make each tick run once across all of them.

Metrics: prometheus_client keeps each worker's counts in files under PROMETHEUS_MULTIPROC_DIR
and /metrics adds them up. The directory is set here, before any worker imports the client,
emptied when gunicorn starts (counters restart with the server, as Prometheus expects) and
removed at exit if we made it.

Rate limits: the app refuses memory:// storage in production when WEB_CONCURRENCY says more than
one worker serves (app/config.py, same rule as `workers` below: unset means 2). on_starting
writes the count gunicorn really uses (a `--workers` on the command line wins) back into
WEB_CONCURRENCY, so the workers judge by the truth.

The access log never prints a query string, and prints `***` for the secret part of paths that
carry one: the callback token in /hooks/stk/<token> is what lets a caller settle a payment.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from gunicorn import glogging

bind = [
    address.strip()
    for address in os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT') or 8000}").split(",")
]
# app.config.web_concurrency reads this the same way; keep the two rules alike.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# With gthread the worker's heartbeat does not wait on requests; this only catches a hung worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 60)
# Long enough for a push waiting on Daraja (15 s read timeout plus back-off) to finish on SIGTERM.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT") or 30)
keepalive = 5
preload_app = False
# Only a proxy at these addresses may say the request came over https (X-Forwarded-Proto).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms %(p)s'

SECRET_IN_PATH = re.compile(r"^(/hooks/(?:stk|result|timeout|c2b)/|/set-password/|/r/)[^/]+")


def mask_path(path: str) -> str:
    """The path as the access log may show it: tokens in it replaced by ***."""
    return SECRET_IN_PATH.sub(r"\1***", path or "")


class AccessLogger(glogging.Logger):
    """gunicorn's logger with the request's path masked and no query string or referrer."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = mask_path(environ.get("PATH_INFO", ""))
        atoms.update(U=path, q="", f="-", r=f"{atoms['m']} {path} {atoms['H']}")
        return atoms


logger_class = AccessLogger

# Set before the workers fork (and before anything imports prometheus_client): the client
# picks its file-backed values at import. A reload (HUP) reads this file again and keeps it.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pesatab-metrics-")
    os.environ["PESATAB_MADE_METRICS_DIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_starting(server):
    """Before any worker exists: start every counter from zero, and tell the workers (through
    their environment) how many of them there are."""
    os.environ["WEB_CONCURRENCY"] = str(server.cfg.workers)
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in METRICS_DIR.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    """A worker is gone: drop its live gauges (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory if this file made it (an operator's own is left alone)."""
    if os.environ.get("PESATAB_MADE_METRICS_DIR") == str(METRICS_DIR):
        shutil.rmtree(METRICS_DIR, ignore_errors=True)

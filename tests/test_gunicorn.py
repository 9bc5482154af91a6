"""The production server for real: `gunicorn -c gunicorn.conf.py wsgi:app` with two workers on a
freshly migrated database.

Both workers serve, each starts its scheduler, each recover tick still runs once (not once per
worker), /metrics adds up both workers' counts, /readyz says ready, the access log never shows a
callback token, and SIGTERM stops it cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from tests.conftest import TEST_SECRET_KEY
from tests.test_migrations import empty_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "gunicorn-test-metrics-token-0123"
CALLBACK_TOKEN = "f00d" * 10


@dataclass
class Served:
    url: str
    database_url: str
    process: subprocess.Popen
    log: Path

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(step)
    return None


def answers(served: Served) -> bool:
    try:
        return served.get("/healthz").status_code == 200
    except requests.ConnectionError:
        return False


@pytest.fixture
def served(tmp_path, test_config):
    port = free_port()
    with empty_database(tmp_path) as database_url:
        env = {
            key: value for key, value in os.environ.items()
            if key not in ("PROMETHEUS_MULTIPROC_DIR", "PESATAB_MADE_METRICS_DIR")
        }
        env.update(
            FLASK_APP="wsgi.py", PESATAB_ENV="development", DATABASE_URL=database_url,
            PESATAB_ENCRYPTION_KEYS=test_config["PESATAB_ENCRYPTION_KEYS"], SECRET_KEY=TEST_SECRET_KEY,
            SCHEDULER_ENABLED="1", DARAJA_SIMULATOR="1", METRICS_TOKEN=TOKEN,
            BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="2", PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        )
        subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=120)
        log = tmp_path / "gunicorn.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
            )
        server = Served(f"http://127.0.0.1:{port}", database_url, process, log)
        try:
            assert wait_for(lambda: answers(server), 20), server.output()
            yield server
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def recover_runs(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT runs FROM job_status WHERE name = 'recover'")) or 0


def metric(body: str, name: str, **labels) -> float:
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def recover(body: str, outcome: str) -> float:
    return metric(body, "pesatab_job_runs_total", job="recover", outcome=outcome)


def after_both_ticked(served: Served) -> str | None:
    body = served.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    return body if recover(body, "skipped") >= 1 else None


def both_workers(served: Served, timeout: float = 20) -> Counter:
    """/healthz from several clients at once until both workers have answered (the second may
    still be booting when the first answers)."""
    pids: Counter = Counter()
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(pids) < 2 and time.monotonic() < deadline:
            for pid in pool.map(lambda _: served.get("/healthz").json()["pid"], range(16)):
                pids[pid] += 1
            time.sleep(0.3)
    return pids


def test_two_workers_serve_tick_once_and_add_up_their_metrics(served):
    pids = both_workers(served)
    assert len(pids) == 2, f"only one worker answered: {pids}"
    callback = requests.post(f"{served.url}/hooks/stk/{CALLBACK_TOKEN}", json={"Body": {}}, timeout=10)
    assert callback.status_code == 200

    assert served.get("/metrics").status_code == 401
    # Both schedulers fire their first tick (about 10 s after their worker's first request, so
    # within a second or two of each other): one runs the job, the other finds it done.
    body = wait_for(lambda: after_both_ticked(served), 30, step=0.5)
    assert body, served.output()
    engine = create_engine(served.database_url)
    try:
        runs = recover_runs(engine)
    finally:
        engine.dispose()
    print(f"workers seen {dict(pids)}; recover ticks: ran {recover(body, 'ok'):g}, "
          f"skipped {recover(body, 'skipped'):g}; job_status.runs {runs}")
    assert runs == recover(body, "ok") == 1, "each worker ran the same tick"

    # Each worker counted its own share; only the multiprocess sum reaches the total.
    assert metric(body, "pesatab_http_requests_total", endpoint="health.healthz", status="200") >= sum(pids.values())
    assert metric(body, "pesatab_callbacks_total", disposition="unknown_token") == 1
    assert metric(body, "pesatab_payments_in_flight", status="sent") == 0

    ready = served.get("/readyz")
    assert ready.status_code == 200, ready.text

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=20) == 0
    log = served.output()
    assert "/hooks/stk/***" in log and CALLBACK_TOKEN not in log

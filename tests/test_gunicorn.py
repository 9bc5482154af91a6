"""The production server for real: `gunicorn -c gunicorn.conf.py wsgi:app` with two workers on a
freshly migrated database.

Both workers serve, each starts its scheduler, each recover tick still runs once (not once per
worker), /metrics adds up both workers' counts, /readyz says ready, the access log never shows a
callback token, and SIGTERM stops it cleanly. In production the two workers count rate limits in
one place (the Redis at 127.0.0.1:6379, which CI has: unreachable is a failure, never a skip),
and refuse to start counting them each in its own memory.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from app.crypto import generate_key
from tests.conftest import TEST_SECRET_KEY
from tests.test_migrations import empty_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "gunicorn-test-metrics-token-0123"
CALLBACK_TOKEN = "f00d" * 10
REDIS_URL = "redis://127.0.0.1:6379/0"
PRODUCTION_SECRET_KEY = "wKYQBGd5brXcIr9acHFMU6JctN6bBDbxoXpS8RgSYJ4Sf5wWf1QVyodZ-54n8EcX"


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


@contextlib.contextmanager
def gunicorn(env: dict, log: Path, *args: str) -> Iterator[subprocess.Popen]:
    """`gunicorn -c gunicorn.conf.py [ARGS] wsgi:app`, output into `log`; SIGTERM at the end."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *args, "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def flask(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def served(tmp_path, test_config):
    port = free_port()
    with empty_database(tmp_path) as database_url:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PROMETHEUS_MULTIPROC_DIR", "PESATAB_MADE_METRICS_DIR")
        }
        env.update(
            FLASK_APP="wsgi.py",
            PESATAB_ENV="development",
            DATABASE_URL=database_url,
            PESATAB_ENCRYPTION_KEYS=test_config["PESATAB_ENCRYPTION_KEYS"],
            SECRET_KEY=TEST_SECRET_KEY,
            SCHEDULER_ENABLED="1",
            DARAJA_SIMULATOR="1",
            METRICS_TOKEN=TOKEN,
            BIND=f"127.0.0.1:{port}",
            WEB_CONCURRENCY="2",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        )
        flask(env, "db", "upgrade")
        log = tmp_path / "gunicorn.log"
        with gunicorn(env, log) as process:
            server = Served(f"http://127.0.0.1:{port}", database_url, process, log)
            assert wait_for(lambda: answers(server), 20), server.output()
            yield server


def production_env(database_url: str, port: int, **settings: str) -> dict:
    """Complete production settings (no simulator, https public address) on `database_url`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PESATAB_", "DARAJA_", "RATELIMIT_", "FLASK_", "PROMETHEUS_"))
        and key not in ("REDIS_URL", "WEB_CONCURRENCY")
    }
    env.update(
        FLASK_APP="wsgi.py",
        PESATAB_ENV="production",
        SECRET_KEY=PRODUCTION_SECRET_KEY,
        DATABASE_URL=database_url,
        PESATAB_ENCRYPTION_KEYS=generate_key("kgunicorn"),
        PUBLIC_BASE_URL="https://pesatab.test",
        SCHEDULER_ENABLED="0",
        BIND=f"127.0.0.1:{port}",
        **settings,
    )
    return env


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
    # Both ticks counted: the one that ran may record its metric after the other skipped.
    return body if recover(body, "skipped") + recover(body, "ok") >= 2 else None


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
    callback = requests.post(
        f"{served.url}/hooks/stk/{CALLBACK_TOKEN}", json={"Body": {}}, timeout=10
    )
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
    print(
        f"workers seen {dict(pids)}; recover ticks: ran {recover(body, 'ok'):g}, "
        f"skipped {recover(body, 'skipped'):g}; job_status.runs {runs}"
    )
    assert runs == recover(body, "ok") == 1, "each worker ran the same tick"

    # Each worker counted its own share; only the multiprocess sum reaches the total.
    assert metric(
        body, "pesatab_http_requests_total", endpoint="health.healthz", status="200"
    ) >= sum(pids.values())
    assert metric(body, "pesatab_callbacks_total", disposition="unknown_token") == 1
    assert metric(body, "pesatab_payments_in_flight", status="sent") == 0

    ready = served.get("/readyz")
    assert ready.status_code == 200, ready.text

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=20) == 0
    log = served.output()
    assert "/hooks/stk/***" in log and CALLBACK_TOKEN not in log


# Rate limits with two workers ------------------------------------------------------------------

API_LINE = re.compile(r'"GET /api/v1/payments HTTP/1\.1" (\d{3}) \S+ \S+ <(\d+)>')


def api_answers(log: Path) -> list[tuple[int, int]]:
    """(status, worker pid) of every /api/v1/payments request, from the access log."""
    return [(int(status), int(pid)) for status, pid in API_LINE.findall(log.read_text())]


def logged(log: Path, count: int) -> list[tuple[int, int]]:
    """The access log once it shows `count` API requests (a worker writes it just after
    answering)."""
    found = wait_for(lambda: len(api_answers(log)) >= count and api_answers(log), 10, step=0.1)
    assert found and len(found) == count, log.read_text()
    return found


def test_two_workers_count_rate_limits_in_one_place(tmp_path):
    """A limit of N per API key: the first N requests, answered by both workers, pass; every
    request after them is 429 whichever worker answers it, because both count in Redis."""
    store = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    store.ping()  # CI has Redis: unreachable is a failure, never a skip
    prefix = f"pesatab-test-{uuid.uuid4().hex[:12]}"
    limit, port, log = 12, free_port(), tmp_path / "gunicorn.log"
    try:
        with empty_database(tmp_path) as database_url:
            env = production_env(
                database_url,
                port,
                REDIS_URL=REDIS_URL,
                RATELIMIT_KEY_PREFIX=prefix,
                API_RATE_LIMIT=f"{limit} per hour",
                WEB_CONCURRENCY="2",
                PESATAB_OWNER_PASSWORD="gunicorn owner password",
            )
            flask(env, "db", "upgrade")
            slug = flask(
                env,
                "bars",
                "create",
                "--name",
                "Gunicorn Grill",
                "--owner-email",
                "owner@gunicorn-grill.example.com",
            ).strip()
            key = flask(env, "api-keys", "create", "--bar", slug, "--label", "POS").strip()
            with gunicorn(env, log) as process:
                server = Served(f"http://127.0.0.1:{port}", database_url, process, log)
                assert wait_for(lambda: answers(server), 20), server.output()
                assert len(both_workers(server)) == 2, server.output()

                def burst(count: int) -> list[int]:
                    def one(_):
                        return server.get(
                            "/api/v1/payments", headers={"Authorization": f"Bearer {key}"}
                        ).status_code

                    with ThreadPoolExecutor(max_workers=count) as pool:
                        return list(pool.map(one, range(count)))

                assert burst(limit) == [200] * limit
                first = logged(log, limit)
                assert len({pid for _, pid in first}) == 2, f"one worker answered all: {first}"

                sent, refused_by = limit, set()
                for _ in range(10):  # until both workers have refused one
                    assert burst(4) == [429] * 4, api_answers(log)
                    sent += 4
                    refused_by = {pid for status, pid in logged(log, sent)[limit:] if status == 429}
                    if len(refused_by) == 2:
                        break
                assert len(refused_by) == 2, (
                    f"only one worker was asked past the limit: {api_answers(log)}"
                )
                assert any(store.scan_iter(match=f"*{prefix}*")), "no rate-limit counts in Redis"
    finally:
        for name in store.scan_iter(match=f"*{prefix}*"):
            store.delete(name)
        store.close()


@pytest.mark.parametrize(
    ("web_concurrency", "args"),
    [
        (None, ()),  # gunicorn.conf.py's default: 2 workers
        ("1", ("--workers", "2")),  # the command line wins over WEB_CONCURRENCY
    ],
)
def test_production_will_not_count_rate_limits_in_each_workers_memory(
    tmp_path, web_concurrency, args
):
    port, log = free_port(), tmp_path / "gunicorn.log"
    env = production_env(
        f"sqlite:///{tmp_path / 'unused.sqlite3'}", port, RATELIMIT_STORAGE_URI="memory://"
    )
    if web_concurrency:
        env["WEB_CONCURRENCY"] = web_concurrency
    with gunicorn(env, log, *args) as process:
        server = Served(f"http://127.0.0.1:{port}", "", process, log)
        assert wait_for(lambda: process.poll() is not None or answers(server), 60)
        assert process.poll() is not None, "gunicorn serves with per-worker rate limits"
        assert process.returncode != 0
    assert "RATELIMIT_STORAGE_URI is memory:// but 2 gunicorn workers serve" in log.read_text()

"""What every benchmark stands on: its own PostgreSQL database, the app's environment,
gunicorn, and the machine it ran on.

Each benchmark creates `pesatab_bench_<name>_<pid>` on 127.0.0.1:5432 (never the shared `test`
database), migrates it with `flask db upgrade` in a subprocess as production does, and drops
it afterwards, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import loadgen

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
ADMIN_DSN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"
# Production counts rate limits in Redis when several workers serve (memory:// is refused).
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

# The one gunicorn configuration every benchmark and every baseline runs with: production's own
# gunicorn.conf.py (threaded workers, metrics in multiprocess mode), two workers of four
# threads for two cores, access log off (warnings only). Without that file, the same by hand.
WORKERS = 2
THREADS = 4
GUNICORN_ENV = {"WEB_CONCURRENCY": str(WORKERS), "GUNICORN_THREADS": str(THREADS)}
GUNICORN_ARGS = (
    ["--config", "bench/gunicorn_bench.conf.py"]
    if (ROOT / "gunicorn.conf.py").exists()
    else [
        "--workers",
        str(WORKERS),
        "--worker-class",
        "gthread",
        "--threads",
        str(THREADS),
        "--keep-alive",
        "5",
        "--timeout",
        "60",
    ]
) + ["--log-level", "warning", "--graceful-timeout", "5"]
UNLIMITED = "1000000 per minute"  # rate limits would measure Flask-Limiter, not PesaTab


# -- PostgreSQL ---------------------------------------------------------------------------------


def sqlalchemy_url(name: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def _admin(sql: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def database(name: str) -> Iterator[str]:
    """A fresh database for one benchmark run; yields its SQLAlchemy URL, dropped afterwards."""
    db_name = f"pesatab_bench_{name}_{os.getpid()}"
    _admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{db_name}"')
    try:
        yield sqlalchemy_url(db_name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def server_version() -> str:
    with psycopg.connect(ADMIN_DSN, connect_timeout=5) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


# -- the app's environment ------------------------------------------------------------------------


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """Production settings on the benchmark's database: real secrets (generated), no simulator
    unless asked, no scheduler, rate limits out of the way, warnings only."""
    from app.crypto import generate_key

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PESATAB_", "DARAJA_"))}
    env.pop("TEST_DATABASE_URL", None)
    env.update(
        FLASK_APP="wsgi.py",
        PESATAB_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        DATABASE_URL=database_url,
        PESATAB_ENCRYPTION_KEYS=generate_key("kbench"),
        DARAJA_SIMULATOR="0",
        SCHEDULER_ENABLED="0",
        PUBLIC_BASE_URL="https://pesatab.bench",  # production wants https (a TLS proxy's name)
        RATELIMIT_STORAGE_URI=REDIS_URL,
        RATELIMIT_KEY_PREFIX=f"pesatab-bench-{os.getpid()}",
        LOGIN_LIMIT_PER_ADDRESS=UNLIMITED,
        LOGIN_LIMIT_PER_ACCOUNT=UNLIMITED,
        PUSH_LIMIT_PER_BAR=UNLIMITED,
        PUSH_LIMIT_PER_USER=UNLIMITED,
        API_RATE_LIMIT=UNLIMITED,
        SIGNUP_LIMIT_PER_ADDRESS=UNLIMITED,
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
        **GUNICORN_ENV,
    )
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    """`flask db upgrade`, in a subprocess, as production runs it before the workers start."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        raise RuntimeError(f"flask db upgrade failed:\n{result.stderr[-4000:]}")


@contextlib.contextmanager
def app_context(env: dict[str, str]) -> Iterator:
    """The real app, in this process, on the benchmark's database (for seeding and checks)."""
    from app import create_app
    from app.extensions import db

    # One process, no requests served: its limits stay in memory. The limiter object is shared
    # by every app in the process, so pointing this one at Redis would move the tests' too.
    app = create_app(
        environ={
            **env,
            "RATELIMIT_STORAGE_URI": "memory://",
            "RATELIMIT_KEY_PREFIX": "",
            "WEB_CONCURRENCY": "1",
        }
    )
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


# -- gunicorn ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((loadgen.HOST, 0))
        return sock.getsockname()[1]


class Gunicorn:
    """`gunicorn <module>` on 127.0.0.1 with GUNICORN_ARGS, started and stopped by us."""

    def __init__(
        self,
        module: str,
        env: dict[str, str],
        *,
        port: int | None = None,
        ready_path: str = "/_bench/hello",
        extra_args: list[str] | None = None,
    ):
        self.module, self.env, self.ready_path = module, env, ready_path
        self.port = port or free_port()
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in __exit__)

    @property
    def url(self) -> str:
        return f"http://{loadgen.HOST}:{self.port}"

    def start(self) -> Gunicorn:
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            *GUNICORN_ARGS,
            *self.extra_args,
            "--bind",
            f"{loadgen.HOST}:{self.port}",
            "--chdir",
            str(ROOT),
            self.module,
        ]
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            loadgen.wait_until_up(
                self.port, self.ready_path, alive=lambda: self.proc.poll() is None
            )
            self._wait_for_workers()
        except Exception:
            self.stop()
            raise RuntimeError(
                f"gunicorn {self.module} did not start:\n{self.log()[-4000:]}"
            ) from None
        return self

    def _wait_for_workers(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.worker_pids()) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.1)
        # Every worker imports the app itself; ask enough times that each has served once.
        for _ in range(8 * WORKERS):
            loadgen.wait_until_up(self.port, self.ready_path)

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # gunicorn's graceful stop; only our own process
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self._log.close()


def rss_kb(pid: int) -> int:
    """Resident memory of a process, in KiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# -- the machine ---------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine() -> dict:
    """Where and when the figures came from."""
    from importlib.metadata import PackageNotFoundError, version

    def package(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": _mem_total_gib(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": server_version(),
        "gunicorn": package("gunicorn"),
        "sqlalchemy": package("sqlalchemy"),
        "psycopg": package("psycopg"),
        "flask": package("flask"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(dirty),
        "gunicorn_args": GUNICORN_ARGS,
        "gunicorn_env": GUNICORN_ENV,
    }


# -- CPU accounting ------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_by_process() -> dict[int, tuple[str, float]]:
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = (
                Path(f"/proc/{entry}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        found[int(entry)] = (cmdline, (int(fields[11]) + int(fields[12])) / _TICK)
    return found


class CpuMeter:
    """CPU seconds spent between `start()` and `stop()` by the app's gunicorn workers, the
    PostgreSQL backends serving the benchmark's database, and everything else still running at
    the end ("other": a neighbour's test run shows up here, and explains drift). The load
    generator reports its own CPU (report.run_phase adds it)."""

    def __init__(
        self, worker_pids: list[int], database_url: str, named: dict[str, int] | None = None
    ):
        self.workers = set(worker_pids)
        self.named = {pid: name for name, pid in (named or {}).items()}
        self.db_name = database_url.rsplit("/", 1)[-1]
        self.before: dict[int, tuple[str, float]] = {}
        self.wall = 0.0

    def _group(self, pid: int, cmdline: str) -> str:
        if pid in self.named:
            return self.named[pid]
        if pid in self.workers:
            return "app_workers"
        if cmdline.startswith("postgres"):
            return "postgres_ours" if f" {self.db_name} " in cmdline else "postgres_other"
        return "other"

    def start(self) -> CpuMeter:
        self.before, self.wall = _cpu_by_process(), time.monotonic()
        return self

    def stop(self) -> dict:
        after, wall = _cpu_by_process(), time.monotonic() - self.wall
        used: dict[str, float] = {}
        for pid, (cmdline, seconds) in after.items():
            spent = seconds - self.before.get(pid, (cmdline, 0.0))[1]
            if spent > 0:
                group = self._group(pid, cmdline)
                used[group] = used.get(group, 0.0) + spent
        return {"wall_s": round(wall, 2), **{k: round(v, 2) for k, v in sorted(used.items())}}

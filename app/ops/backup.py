"""Backups while the app runs, and a check that a backup can be restored.

SQLite: SQLite's online backup API copies a consistent snapshot page by page while other
connections keep reading and writing. PostgreSQL: `pg_dump --format=custom`, itself one
consistent snapshot. The password goes to pg_dump/pg_restore through PGPASSWORD, never on a
command line that `ps` would show.

`restore_check` opens a backup the way a restore would and reports the rows in each table and
the migration version: a SQLite file read-only; a dump restored into a throwaway database that
is dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import subprocess
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from app.models import utcnow

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
RESTORE_DB_PREFIX = "pesatab_restore_check_"
TOOL_TIMEOUT = 6 * 3600  # a dump of a big database is slow, but never endless


class BackupError(Exception):
    """The backup or the check could not be done; the message says why."""


@dataclass
class CheckReport:
    kind: str  # "sqlite" or "postgresql"
    tables: dict[str, int] = field(default_factory=dict)
    migration: str | None = None

    def lines(self) -> list[str]:
        width = max((len(name) for name in self.tables), default=0)
        out = [f"{name:<{width}}  {count}" for name, count in sorted(self.tables.items())]
        out.append(
            f"migration version: {self.migration}"
            if self.migration
            else "no migration version (the database was not built by `flask db upgrade`)"
        )
        return out


# -- making a backup -----------------------------------------------------------------------------


def make_backup(database_url: str, directory: Path, now: datetime | None = None) -> Path:
    """Copy the database at `database_url` into `directory` as pesatab-YYYYmmdd-HHMMSS.*
    (UTC). The file appears under its final name only once it is complete."""
    url = make_url(database_url)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = (now or utcnow()).strftime("%Y%m%d-%H%M%S")
    if url.get_backend_name() == "sqlite":
        target = _free_name(directory, f"pesatab-{stamp}", ".sqlite3")
        _finish(target, lambda tmp: _sqlite_backup(_sqlite_path(url), tmp))
    elif url.get_backend_name() == "postgresql":
        target = _free_name(directory, f"pesatab-{stamp}", ".dump")
        _finish(target, lambda tmp: _pg_dump(url, tmp))
    else:
        raise BackupError(f"Backups support SQLite and PostgreSQL, not {url.get_backend_name()}.")
    return target


def _free_name(directory: Path, stem: str, suffix: str) -> Path:
    """`stem+suffix`, or stem-2, stem-3... when two backups start in the same second."""
    candidate, n = directory / f"{stem}{suffix}", 1
    while candidate.exists():
        n += 1
        candidate = directory / f"{stem}-{n}{suffix}"
    return candidate


def _finish(target: Path, write) -> None:
    """Write to a hidden temporary file (mode 0600: it holds password hashes and sealed
    credentials), then rename it: a failed or interrupted backup never looks complete."""
    tmp = target.with_name(f".{target.name}.partial")
    tmp.unlink(missing_ok=True)
    tmp.touch(mode=0o600)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("An in-memory SQLite database cannot be backed up.")
    path = Path(url.database)
    if not path.exists():
        raise BackupError(f"There is no SQLite database at {path}.")
    return path


def _sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup: one consistent snapshot, writers carry on (WAL mode)."""
    with (
        closing(sqlite3.connect(source, timeout=30)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
        # One self-contained file: a copy of a WAL database would otherwise stay in WAL mode.
        dst.execute("PRAGMA journal_mode=DELETE")


def _pg_dump(url: URL, target: Path) -> None:
    command = [
        "pg_dump",
        "--format=custom",
        "--no-password",
        f"--file={target}",
        f"--dbname={_conninfo(url)}",
    ]
    _run(command, url, "pg_dump")


# -- PostgreSQL plumbing -------------------------------------------------------------------------


def _conninfo(url: URL, database: str | None = None) -> str:
    """A libpq connection URI without the password (that goes in PGPASSWORD)."""
    plain = URL.create(
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=database or url.database,
        query=url.query,
    )
    return plain.render_as_string(hide_password=False)


def _tool_env(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return env


def _run(command: list[str], url: URL, tool: str) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{tool} is not installed (Debian: apt-get install postgresql-client).")
    try:
        done = subprocess.run(  # noqa: S603 - fixed program, arguments built here, no shell
            command,
            env=_tool_env(url),
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BackupError(f"{tool} did not finish within {TOOL_TIMEOUT // 3600} hours.") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{tool} failed: {detail[-1] if detail else f'exit {done.returncode}'}")


def _connect(url: URL, database: str | None = None, *, autocommit: bool = False):
    import psycopg

    params = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": None if url.password is None else str(url.password),
        "dbname": database or url.database,
        **url.query,
    }
    try:
        return psycopg.connect(
            autocommit=autocommit, **{k: v for k, v in params.items() if v is not None}
        )
    except psycopg.Error as err:
        raise BackupError(f"Cannot connect to PostgreSQL: {err}".strip()) from None


# -- checking a backup ---------------------------------------------------------------------------


def restore_check(path: Path, server_url: str | None = None) -> CheckReport:
    """Open the backup at `path` and count its rows. A dump is restored into a temporary
    database on `server_url` (which must allow CREATE DATABASE) and dropped afterwards.
    Raises BackupError when the file is missing, unreadable or corrupt."""
    magic = _magic(path)
    if magic.startswith(SQLITE_MAGIC):
        return _check_sqlite(path)
    if magic.startswith(PG_DUMP_MAGIC):
        if not server_url or make_url(server_url).get_backend_name() != "postgresql":
            raise BackupError(
                "Checking a PostgreSQL dump needs a PostgreSQL server: set "
                "DATABASE_URL or pass --server postgresql://..."
            )
        return _check_dump(path, make_url(server_url))
    raise BackupError(f"{path} is neither a SQLite database nor a pg_dump custom-format file.")


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(len(SQLITE_MAGIC))
    except OSError as err:
        raise BackupError(f"Cannot read {path}: {err.strerror}.") from None


def _check_sqlite(path: Path) -> CheckReport:
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as conn:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise BackupError(f"{path} is damaged: {verdict}")
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            report = CheckReport("sqlite", {n: _count(conn, n) for n in names})
            if "alembic_version" in report.tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                report.migration = row[0] if row else None
            return report
    except sqlite3.DatabaseError as err:
        raise BackupError(f"{path} cannot be read as a SQLite database: {err}.") from None


def _count(conn, table: str) -> int:
    quoted = '"' + table.replace('"', '""') + '"'
    return conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0]  # noqa: S608 - catalogue name, quoted


def _check_dump(path: Path, server: URL) -> CheckReport:
    _run(["pg_restore", "--list", str(path)], server, "pg_restore")  # a readable header and TOC
    with _scratch_database(server) as name:
        _run(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--no-password",
                f"--dbname={_conninfo(server, name)}",
                str(path),
            ],
            server,
            "pg_restore",
        )
        with closing(_connect(server, name)) as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY "
                    "table_name"
                )
            ]
            report = CheckReport("postgresql", {n: _count(conn, n) for n in names})
            if "alembic_version" in report.tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                report.migration = row[0] if row else None
            return report


@contextmanager
def _scratch_database(server: URL):
    """A new empty database for one check, always dropped afterwards."""
    import psycopg

    name = RESTORE_DB_PREFIX + secrets.token_hex(5)
    with closing(_connect(server, autocommit=True)) as admin:
        try:
            admin.execute(f'CREATE DATABASE "{name}"')
        except psycopg.Error as err:
            raise BackupError(
                f"Cannot create a scratch database for the check ({err}). "
                "Use a role that may create databases (--server)."
            ) from None
        try:
            yield name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""`flask backup` and `flask restore-check`: a copy taken while the app writes opens and counts."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import threading
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from app import create_app
from app.cli import ops as cli_ops
from app.extensions import db
from app.ops import backup

NAME = re.compile(r"pesatab-\d{8}-\d{6}\.(sqlite3|dump)$")


def ops_runner(app):
    """A CLI runner with the backup commands (until app/cli.py registers them itself)."""
    if "backup" not in app.cli.commands:
        cli_ops.init_app(app)
    return app.test_cli_runner()


def written_path(output: str) -> Path:
    return Path(re.search(r"Backup written to (\S+) \(", output).group(1))


# -- SQLite --------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_app(tmp_path, test_config):
    """An app on its own SQLite file, migrated like production (so it has a migration version)."""
    app = create_app(
        {**test_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'live.sqlite3'}"}
    )
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()
    return app


class Writer(threading.Thread):
    """Another connection adding rows as fast as it can, as the app would during service."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.stop, self.written = path, threading.Event(), 0

    def run(self):
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            while not self.stop.is_set():
                with conn:
                    conn.execute(
                        "INSERT INTO system_setting (key, value, updated_at) "
                        "VALUES (?, ?, CURRENT_TIMESTAMP)",
                        (f"load-{self.written}", "x" * 200),
                    )
                self.written += 1


def test_a_sqlite_backup_taken_during_writes_restores(sqlite_app, tmp_path):
    live = tmp_path / "live.sqlite3"
    writer = Writer(live)
    writer.start()
    while writer.written < 50:
        time.sleep(0.01)
    result = ops_runner(sqlite_app).invoke(args=["backup", "--dir", str(tmp_path / "backups")])
    during = writer.written
    time.sleep(0.05)
    writer.stop.set()
    writer.join()
    assert result.exit_code == 0, result.output
    copy = written_path(result.output)
    assert NAME.search(copy.name) and copy.parent == tmp_path / "backups"
    assert copy.stat().st_mode & 0o777 == 0o600

    check = ops_runner(sqlite_app).invoke(args=["restore-check", str(copy)])
    assert check.exit_code == 0, check.output
    assert "a readable sqlite backup" in check.output
    copied = int(re.search(r"system_setting\s+(\d+)", check.output).group(1))
    assert 50 <= copied <= during + 1 < writer.written  # a snapshot from the middle of the writes
    with closing(sqlite3.connect(live)) as conn:
        head = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert f"migration version: {head}" in check.output
    assert re.search(r"\bbar\s+0\b", check.output)


def test_the_default_place_is_instance_backups(sqlite_app, tmp_path):
    sqlite_app.instance_path = str(tmp_path / "instance")
    result = ops_runner(sqlite_app).invoke(args=["backup"])
    assert result.exit_code == 0, result.output
    assert written_path(result.output).parent == tmp_path / "instance" / "backups"


def test_two_backups_in_one_second_do_not_overwrite(tmp_path, sqlite_app):
    url = sqlite_app.config["SQLALCHEMY_DATABASE_URI"]
    when = datetime(2025, 6, 30, 23, 59, 59)
    first = backup.make_backup(url, tmp_path, now=when)
    second = backup.make_backup(url, tmp_path, now=when)
    assert (first.name, second.name) == (
        "pesatab-20250630-235959.sqlite3",
        "pesatab-20250630-235959-2.sqlite3",
    )
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing", "empty"])
def test_an_unreadable_backup_fails_the_check(sqlite_app, tmp_path, damage):
    good = backup.make_backup(sqlite_app.config["SQLALCHEMY_DATABASE_URI"], tmp_path)
    bad = tmp_path / f"{damage}.sqlite3"
    if damage == "garbage":
        bad.write_bytes(b"this is not a database\n" * 100)
    elif damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    elif damage == "empty":
        bad.write_bytes(b"")
    result = ops_runner(sqlite_app).invoke(args=["restore-check", str(bad)])
    assert result.exit_code == 1, result.output
    assert "cannot be restored" in result.output


def test_a_missing_database_is_reported_and_leaves_no_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'nothing-here.sqlite3'}"
    with pytest.raises(backup.BackupError, match="no SQLite database"):
        backup.make_backup(url, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


# -- PostgreSQL ----------------------------------------------------------------------------------


def test_pg_dump_gets_the_password_from_the_environment_only(tmp_path, monkeypatch):
    seen = {}

    def fake_run(command, **kwargs):
        seen.update(command=command, env=kwargs["env"])
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(backup.subprocess, "run", fake_run)
    monkeypatch.setattr(backup.shutil, "which", lambda name: f"/usr/bin/{name}")
    path = backup.make_backup(
        "postgresql+psycopg://pesatab:hunter2-secret@db.internal:6543/pesatab?sslmode=require",
        tmp_path,
        now=datetime(2025, 1, 2, 3, 4, 5),
    )
    assert path.name == "pesatab-20250102-030405.dump"
    assert seen["command"][:2] == ["pg_dump", "--format=custom"]
    assert "hunter2-secret" not in " ".join(seen["command"])
    assert (
        "--dbname=postgresql://pesatab@db.internal:6543/pesatab?sslmode=require" in seen["command"]
    )
    assert seen["env"]["PGPASSWORD"] == "hunter2-secret"


@pytest.fixture
def pg_url(database_url):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("runs when the suite runs on PostgreSQL (TEST_DATABASE_URL)")
    return database_url


def scratch_databases(url: str) -> list[str]:
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'pesatab_restore_check_%'"
            )
        ]


def test_a_postgresql_backup_restores_into_a_scratch_database(
    app, pg_url, factory, bar, owner, cashier, tmp_path
):
    factory.payment(bar)
    factory.tab(bar, lines=(("Tusker", 2, 250),))
    result = ops_runner(app).invoke(args=["backup", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    dump = written_path(result.output)
    assert NAME.search(dump.name) and dump.read_bytes().startswith(b"PGDMP")

    check = ops_runner(app).invoke(args=["restore-check", str(dump)])
    assert check.exit_code == 0, check.output
    assert "a readable postgresql backup" in check.output
    for table, rows in (("bar", 1), ("user", 2), ("payment", 1), ("tab", 1), ("tab_line", 1)):
        assert re.search(rf"\b{table}\s+{rows}\b", check.output), check.output
    # The suite builds its schema with create_all, so there is no Alembic stamp to report.
    assert "no migration version" in check.output
    assert scratch_databases(pg_url) == []


def test_a_damaged_dump_fails_the_check_and_leaves_nothing_behind(
    app, pg_url, factory, bar, tmp_path
):
    factory.payment(bar)
    dump = backup.make_backup(pg_url, tmp_path)
    damaged = tmp_path / "damaged.dump"
    damaged.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    result = ops_runner(app).invoke(args=["restore-check", str(damaged)])
    assert result.exit_code == 1 and "cannot be restored" in result.output
    assert scratch_databases(pg_url) == []


def test_a_stamped_database_reports_its_migration_version(app, pg_url, tmp_path):
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('0004_jobs_statements')")
    try:
        report = backup.restore_check(backup.make_backup(pg_url, tmp_path), pg_url)
    finally:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE alembic_version")
    assert report.migration == "0004_jobs_statements"

"""`flask backup` and `flask restore-check FILE`: copies of the database, and proof they open."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.ops import backup


def init_app(app: Flask) -> None:
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_check_command)


@click.command("backup")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the backup (default: instance/backups/).",
)
@with_appcontext
def backup_command(directory: Path | None) -> None:
    """Back up the database while the app runs: SQLite's online backup, or pg_dump."""
    directory = directory or Path(current_app.instance_path) / "backups"
    try:
        path = backup.make_backup(current_app.config["SQLALCHEMY_DATABASE_URI"], directory)
    except backup.BackupError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Backup written to {path} ({path.stat().st_size:,} bytes).")
    click.echo(f"Check it opens: flask restore-check {path}")


@click.command("restore-check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--server",
    default=None,
    metavar="URL",
    help="PostgreSQL server to restore a .dump into for the check "
    "(default: DATABASE_URL; the role must be allowed to create databases).",
)
@with_appcontext
def restore_check_command(file: Path, server: str | None) -> None:
    """Open a backup and report its row counts and migration version (exit 1 if it cannot)."""
    try:
        report = backup.restore_check(file, server or current_app.config["SQLALCHEMY_DATABASE_URI"])
    except backup.BackupError as err:
        reason = str(err).rstrip(". ")
        raise click.ClickException(f"{reason}. This backup cannot be restored.") from None
    click.echo(f"{file}: a readable {report.kind} backup.")
    for line in report.lines():
        click.echo(f"  {line}")

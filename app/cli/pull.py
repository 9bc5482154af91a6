"""`flask c2b pull-register` and `flask c2b pull`: Daraja's Pull Transactions for a bar."""

from __future__ import annotations

import click
from flask import Flask

from app.cli.mpesa import _bar, c2b_group
from app.payments import c2b_pull


def init_app(app: Flask) -> None:
    for command in (pull_register, pull_now):
        c2b_group.add_command(command)


@click.command("pull-register")
@click.option("--bar", "slug", required=True)
@click.option(
    "--nominated", required=True, help="The Safaricom number Safaricom holds for the shortcode."
)
def pull_register(slug: str, nominated: str) -> None:
    """Register the bar's shortcode for Pull Transactions with Daraja."""
    bar = _bar(slug)
    try:
        c2b_pull.register(bar, nominated)
    except c2b_pull.PullError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{slug}: registered for Pull Transactions; the pull job now checks it.")


@click.command("pull")
@click.option("--bar", "slug", required=True)
@click.option(
    "--hours", type=click.FloatRange(min=0.01, max=48), default=None,
    help="How far back to look (default: since the last good window, the first time 48).",
)  # fmt: skip
def pull_now(slug: str, hours: float | None) -> None:
    """Ask Daraja now for the bar's recent menu payments and add the ones PesaTab missed."""
    try:
        result = c2b_pull.pull_bar(_bar(slug), hours=hours)
    except c2b_pull.PullError as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"{slug}: {result.seen} transactions in {result.pages} pages; {result.known} already "
        f"known, {result.found} found by pull, {result.other} not money."
    )

"""Operator commands: `flask api-keys create --bar SLUG --label NAME`."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from app.api import keys
from app.enums import Role
from app.extensions import db
from app.models import Bar


def init_app(app: Flask) -> None:
    app.cli.add_command(api_keys_cli)


@click.group("api-keys")
def api_keys_cli() -> None:
    """API keys for bars' point-of-sale systems."""


@api_keys_cli.command("create")
@click.option("--bar", "slug", required=True, help="The bar's slug (see `flask bars list`).")
@click.option("--label", required=True, help="A name for the key, like 'Till 1 POS'.")
def create(slug: str, label: str) -> None:
    """Create a key and print it once (stdout); it cannot be shown again."""
    bar = db.session.scalar(select(Bar).where(Bar.slug == slug))
    if bar is None:
        raise click.ClickException(f"No bar with the slug {slug!r}; `flask bars list` shows them.")
    try:
        new = keys.create_key(bar, label, by=Role.OPERATOR)
    except keys.ApiKeyError as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"API key {new.api_key.prefix}… for {bar.name} ({new.api_key.label}). "
        "It is shown only now: store it in the point-of-sale system.",
        err=True,
    )
    click.echo(new.secret)

"""Operator commands: `flask bars create|list`, `flask operators create|list|deactivate`,
`flask demo`."""

from __future__ import annotations

import os
import secrets

import click
from flask import Flask
from sqlalchemy import func, select

from app.auth import accounts
from app.cli.initiator import demo_initiator
from app.enums import Role
from app.extensions import db
from app.models import Bar, User
from app.ops import operators as operator_accounts

DEMO_BAR_NAME = "Demo Bar"
DEMO_OWNER_EMAIL = "owner@demo-bar.example.com"
DEMO_CASHIER_EMAIL = "cashier@demo-bar.example.com"


def init_app(app: Flask) -> None:
    app.cli.add_command(bars)
    app.cli.add_command(operators)
    app.cli.add_command(demo)


@click.group()
def bars() -> None:
    """Create and list bars."""


def _owner_password() -> str:
    password = os.environ.get("PESATAB_OWNER_PASSWORD")
    if password is None:
        password = click.prompt("Owner's password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise click.ClickException("The owner's password must be at least 10 characters.")
    return password


@bars.command("create")
@click.option("--name", required=True, help="The bar's name.")
@click.option("--owner-email", required=True, help="The owner's sign-in email.")
@click.option("--owner-name", default=None, help="The owner's name (default: from the email).")
def create_bar(name: str, owner_email: str, owner_name: str | None) -> None:
    """Create a bar and its owner. The password comes from PESATAB_OWNER_PASSWORD or a prompt."""
    password = _owner_password()
    try:
        owner = accounts.create_bar_with_owner(
            name, owner_name or owner_email.split("@")[0], owner_email, password
        )
    except accounts.AccountError as err:
        raise click.ClickException(str(err)) from None
    click.echo(owner.bar.slug)


@bars.command("list")
def list_bars() -> None:
    """One line per bar: slug, state, people, name."""
    rows = db.session.execute(
        select(Bar.slug, Bar.setup_state, Bar.mpesa_enabled, func.count(User.id), Bar.name)
        .join(User, User.bar_id == Bar.id, isouter=True)
        .group_by(Bar.id)
        .order_by(Bar.slug)
    ).all()
    if not rows:
        click.echo("No bars yet. Create one with `flask bars create`.")
    for slug, state, enabled, people, name in rows:
        switch = "" if enabled else " (M-Pesa off)"
        click.echo(f"{slug:30} {state:18} {people:3} people  {name}{switch}")


@bars.command("go-live")
@click.option("--bar", "slug", required=True)
def bars_go_live(slug: str) -> None:
    """Put a verified bar live (refused unless a paid test push proved its credentials)."""
    from app.cli.mpesa import go_live_command

    go_live_command(slug)


@click.group()
def operators() -> None:
    """PesaTab's operators: people with no bar who see every bar on /ops/."""


@operators.command("create")
@click.option("--email", required=True, help="The operator's sign-in email.")
@click.option("--name", required=True, help="The operator's name.")
def create_operator(email: str, name: str) -> None:
    """Create an operator. The password comes from PESATAB_OPERATOR_PASSWORD or a prompt."""
    password = os.environ.get("PESATAB_OPERATOR_PASSWORD")
    if password is None:
        password = click.prompt("Operator's password", hide_input=True, confirmation_prompt=True)
    try:
        user = operator_accounts.create_operator(name, email, password)
    except accounts.AccountError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Operator {user.email} created. They sign in at /login and land on /ops/.")


@operators.command("list")
def list_operators() -> None:
    """One line per operator: email, active or not, name."""
    found = operator_accounts.list_operators()
    if not found:
        click.echo("No operators yet. Create one with `flask operators create`.")
    for user in found:
        click.echo(f"{user.email:40} {'active' if user.active else 'deactivated':12} {user.name}")


@operators.command("deactivate")
@click.option("--email", required=True)
def deactivate_operator(email: str) -> None:
    """Sign an operator out everywhere and refuse their sign-ins."""
    try:
        user = operator_accounts.deactivate_operator(email)
    except accounts.AccountError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Operator {user.email} is deactivated and signed out.")


@click.command()
def demo() -> None:
    """Seed the demo bar `make run` uses (once; a second run changes nothing)."""
    _simulator_control_line()
    found = accounts.find_user_by_email(DEMO_OWNER_EMAIL)
    if found is not None:
        demo_initiator(found.bar)  # a demo bar made before codes could be verified gets it too
        click.echo(
            f"Demo bar ready. Sign in as {DEMO_OWNER_EMAIL} (password as printed first time)."
        )
        return
    password = secrets.token_urlsafe(9)
    owner = accounts.create_bar_with_owner(DEMO_BAR_NAME, "Demo Owner", DEMO_OWNER_EMAIL, password)
    cashier, _ = accounts.add_staff(
        owner.bar, owner, "Demo Cashier", DEMO_CASHIER_EMAIL, Role.CASHIER
    )
    cashier.set_password(password)
    db.session.commit()
    _demo_credentials(owner.bar)
    demo_initiator(owner.bar)
    click.echo("Demo bar created. Sign in at http://127.0.0.1:5000/login")
    click.echo(f"  owner:   {DEMO_OWNER_EMAIL}")
    click.echo(f"  cashier: {DEMO_CASHIER_EMAIL}")
    click.echo(f"  password (both): {password}   <- shown only now")


def _simulator_control_line() -> None:
    """How the person running the demo drives the mounted simulator's control API."""
    from flask import current_app

    from app.simulator import CONTROL_HEADER
    from app.simulator.mount import CONTROL_EXTENSION

    secret = current_app.extensions.get(CONTROL_EXTENSION)
    if secret:
        click.echo(f"Simulator control (/_daraja/_control/...): header {CONTROL_HEADER}: {secret}")


def _demo_credentials(bar: Bar) -> None:
    """Sandbox credentials for the built-in simulator, marked verified and live, so a newcomer
    can send a push at once. (The simulator's keys are not secrets; they exist only here.)"""
    from app.models import utcnow
    from app.settings import vault
    from app.simulator import (
        SANDBOX_PASSKEY,
        SANDBOX_SHORTCODE,
        SIM_CONSUMER_KEY,
        SIM_CONSUMER_SECRET,
    )

    vault.save(
        bar,
        vault.CredentialInput(
            environment="sandbox",
            kind="paybill",
            shortcode=SANDBOX_SHORTCODE,
            till_number=None,
            consumer_key=SIM_CONSUMER_KEY,
            consumer_secret=SIM_CONSUMER_SECRET,
            passkey=SANDBOX_PASSKEY,
        ),
    )
    cred = vault.credential_for(bar)
    cred.verified_revision, cred.verified_at = cred.revision, utcnow()
    cred.checked_revision, cred.checked_at = cred.revision, utcnow()
    bar.setup_state = "live"
    db.session.commit()

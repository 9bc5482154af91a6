"""Operator commands for M-Pesa: credentials, going live, the global switch (and the keys
group of app/cli/keys.py).

Secrets are read from the environment (MPESA_CONSUMER_KEY, MPESA_CONSUMER_SECRET, MPESA_PASSKEY)
or prompted without echo; never from arguments, which end up in shell history and `ps`.
"""

from __future__ import annotations

import os
import time

import click
from flask import Flask
from sqlalchemy import select

from app.cli.keys import keys
from app.enums import PaymentStatus
from app.extensions import db
from app.models import Bar, Payment
from app.mpesa import InvalidPhone, normalize_phone
from app.ops import system
from app.payments import c2b
from app.payments.push import PushRefused
from app.payments.states import IN_FLIGHT
from app.settings import onboarding, vault


def init_app(app: Flask) -> None:
    for command in (keys, credentials, mpesa, c2b_group):
        app.cli.add_command(command)


def _bar(slug: str) -> Bar:
    bar = db.session.scalar(select(Bar).where(Bar.slug == slug))
    if bar is None:
        raise click.ClickException(f"No bar with slug {slug!r}. See `flask bars list`.")
    return bar


def _secret(env_name: str, label: str) -> str:
    value = os.environ.get(env_name)
    return value if value else click.prompt(label, hide_input=True)


@click.group()
def credentials() -> None:
    """A bar's Daraja credentials."""


@credentials.command("set")
@click.option("--bar", "slug", required=True)
@click.option("--environment", type=click.Choice(["sandbox", "production"]), required=True)
@click.option("--kind", type=click.Choice(["paybill", "till"]), required=True)
@click.option("--shortcode", required=True, help="PayBill number, or the store number for a Till.")
@click.option("--till", "till_number", default=None, help="Till number (Till only).")
def credentials_set(slug, environment, kind, shortcode, till_number) -> None:
    """Save credentials; secrets from MPESA_CONSUMER_KEY/_SECRET/MPESA_PASSKEY or a prompt."""
    bar = _bar(slug)
    if kind == "till" and not till_number:
        raise click.ClickException("A Till needs --till (the till number customers pay to).")
    data = vault.CredentialInput(
        environment=environment,
        kind=kind,
        shortcode=shortcode,
        till_number=till_number,
        consumer_key=_secret("MPESA_CONSUMER_KEY", "Consumer key").strip(),
        consumer_secret=_secret("MPESA_CONSUMER_SECRET", "Consumer secret").strip(),
        passkey=_secret("MPESA_PASSKEY", "Passkey").strip(),
    )
    changed = vault.save(bar, data)
    click.echo(f"Saved ({', '.join(changed) or 'no changes'}). State: {bar.setup_state}.")


@credentials.command("use-pending")
@click.option("--bar", "slug", required=True)
def credentials_use_pending(slug) -> None:
    """Switch a live bar to the credentials waiting beside the ones in use (checked, and proved
    by a paid test push)."""
    bar = _bar(slug)
    cred = vault.credential_for(bar)
    if cred is None or cred.pending_revision is None:
        raise click.ClickException(f"{slug} has no new credentials waiting.")
    try:
        onboarding.use_pending(bar, cred.pending_revision)
    except onboarding.OnboardingError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{slug}: cashiers now send M-Pesa requests with the new credentials.")


@credentials.command("discard-pending")
@click.option("--bar", "slug", required=True)
def credentials_discard_pending(slug) -> None:
    """Drop the credentials waiting beside the ones in use; nothing changes for cashiers."""
    bar = _bar(slug)
    cred = vault.credential_for(bar)
    if cred is None or cred.pending_revision is None:
        raise click.ClickException(f"{slug} has no new credentials waiting.")
    onboarding.discard_pending(bar, cred.pending_revision)
    click.echo(f"{slug}: the new credentials are discarded; the ones in use stay.")


@credentials.command("check")
@click.option("--bar", "slug", required=True)
def credentials_check(slug) -> None:
    """Fetch a token with the bar's credentials and say what failed, if anything."""
    try:
        result = onboarding.check_credentials(_bar(slug))
    except (onboarding.OnboardingError, vault.CredentialsUnavailable) as err:
        raise click.ClickException(str(err)) from None
    if not result.ok:
        raise click.ClickException(result.message)
    click.echo(result.message)


@credentials.command("test-push")
@click.option("--bar", "slug", required=True)
@click.option("--phone", required=True)
@click.option("--amount", default=1, show_default=True, type=int)
@click.option(
    "--wait", default=120, show_default=True, type=int, help="Seconds to wait for the outcome."
)
def credentials_test_push(slug, phone, amount, wait) -> None:
    """Send a test push and wait for its outcome."""
    bar = _bar(slug)
    try:
        payment = onboarding.send_test_push(bar, None, normalize_phone(phone), amount)
    except (
        InvalidPhone,
        onboarding.OnboardingError,
        PushRefused,
        vault.CredentialsUnavailable,
    ) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"Sent payment {payment.id}; waiting up to {wait}s for the customer…")
    payment = _wait_for(payment.id, wait)
    if payment.status in IN_FLIGHT:
        raise click.ClickException(
            "No outcome yet; the recovery job will settle it. Check the settings page."
        )
    click.echo(f"{payment.status}: {payment.message or ''}".strip())
    hint = onboarding.setup_hint(payment, vault.credential_for(bar))
    if hint:
        click.echo(hint)
    if payment.status != PaymentStatus.PAID:
        raise SystemExit(1)
    click.echo(f"Bar state: {bar.setup_state}.")


def _wait_for(payment_id: int, seconds: int) -> Payment:
    deadline = time.monotonic() + seconds
    while True:
        db.session.expire_all()
        payment = db.session.get(Payment, payment_id)
        if payment.status not in IN_FLIGHT or time.monotonic() >= deadline:
            return payment
        time.sleep(0.5)


@click.group()
def mpesa() -> None:
    """The global M-Pesa switch."""


@mpesa.command("disable-all")
def mpesa_disable_all() -> None:
    """Stop all new pushes for every bar; callbacks are still accepted."""
    system.set_pushes_disabled(True)
    click.echo("New M-Pesa pushes are disabled for every bar. Callbacks are still applied.")


@mpesa.command("enable-all")
def mpesa_enable_all() -> None:
    """Allow new pushes again (bars' own switches still apply)."""
    system.set_pushes_disabled(False)
    click.echo("New M-Pesa pushes are enabled again.")


def go_live_command(slug: str) -> None:
    try:
        onboarding.go_live(_bar(slug))
    except onboarding.OnboardingError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{slug} is live.")


@click.group("c2b")
def c2b_group() -> None:
    """Money paid from the M-Pesa menu: a bar's C2B URLs."""


@c2b_group.command("register")
@click.option("--bar", "slug", required=True)
@click.option("--v1", "v1", is_flag=True, help="For Daraja apps that only have C2B v1.")
@click.option(
    "--again", is_flag=True, help="Production: register URLs again (Safaricom cleared them)."
)
def c2b_register(slug: str, v1: bool, again: bool) -> None:
    """Register the bar's confirmation and validation URLs with Daraja."""
    bar = _bar(slug)
    try:
        c2b.register(bar, version="v1" if v1 else "v2", again=again)
    except c2b.RegisterError as err:
        raise click.ClickException(str(err)) from None
    confirmation, _validation = c2b.urls_for(bar)
    click.echo(
        f"{slug}: C2B URLs registered; confirmations go to {confirmation.rsplit('/', 2)[0]}/…"
    )

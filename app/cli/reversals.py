"""`flask reversals ask`, `show` and `settle`: a reversal from the shell, through the same
service as the owner's buttons, so it is never sent twice either (the same unique index), and
one M-Pesa never answered is settled once (the same conditional UPDATE)."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from app.cli.mpesa import _bar
from app.extensions import db
from app.models import Payment, Reversal
from app.reversals import manual, present, service


def init_app(app: Flask) -> None:
    app.cli.add_command(reversals_group)


@click.group("reversals")
def reversals_group() -> None:
    """Give a paid payment's money back (Daraja's Reversal)."""


def _payment(slug: str, receipt: str) -> tuple:
    bar = _bar(slug)
    payment = db.session.scalar(
        select(Payment).where(Payment.bar_id == bar.id, Payment.receipt == receipt.strip().upper())
    )
    if payment is None:
        raise click.ClickException(f"{slug} has no payment with M-Pesa receipt {receipt!r}.")
    return bar, payment


@reversals_group.command("ask")
@click.option("--bar", "slug", required=True)
@click.option("--receipt", required=True, help="The payment's M-Pesa receipt, e.g. QK12ABC3XY.")
@click.option("--reason", required=True, help="Why the money goes back (kept in the audit log).")
@click.option(
    "--amount",
    type=click.IntRange(min=1),
    default=None,
    help="Part of it (only what an overpaid tab was overpaid by); default: all.",
)
def ask(slug: str, receipt: str, reason: str, amount: int | None) -> None:
    """Ask M-Pesa to reverse a payment. Asking again for one already asked sends nothing and
    says where the first stands (exit 0): safe to re-run."""
    bar, payment = _payment(slug, receipt)
    held = service.holder(payment.id)
    if held is not None:
        click.echo(f"{payment.receipt}: already asked, nothing sent. {present.sentence(held)}")
        return
    try:
        reversal = service.ask(bar, payment, amount=amount, reason=reason, user_id=None)
    except service.ReversalError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"{payment.receipt}: {present.sentence(reversal, bar.timezone)}")


@reversals_group.command("show")
@click.option("--bar", "slug", required=True)
@click.option("--receipt", required=True)
def show(slug: str, receipt: str) -> None:
    """Every reversal asked for a payment, newest first."""
    bar, payment = _payment(slug, receipt)
    found = service.history(payment.id)
    if not found:
        click.echo(f"{payment.receipt}: no reversal asked.")
    for reversal in found:
        click.echo(f"{reversal.id} {reversal.state}: {present.sentence(reversal, bar.timezone)}")


@reversals_group.command("settle")
@click.argument("reversal_id", type=int)
@click.option("--bar", "slug", required=True)
@click.option(
    "--given-back/--not-given-back",
    "given_back",
    default=None,
    help="What the M-Pesa statement shows: the reversal is on it, or it is not.",
)
@click.option("--note", required=True, help="What the statement shows (kept in the audit log).")
def settle(reversal_id: int, slug: str, given_back: bool | None, note: str) -> None:
    """Settle a reversal M-Pesa never answered, after checking the M-Pesa statement (the id is
    the first word of `flask reversals show`). Settles it once: running it again changes
    nothing and says so."""
    if given_back is None:
        raise click.UsageError("Say what the statement shows: --given-back or --not-given-back.")
    bar = _bar(slug)
    reversal = db.session.scalar(
        select(Reversal).where(Reversal.id == reversal_id, Reversal.bar_id == bar.id)
    )
    if reversal is None:
        raise click.ClickException(f"{slug} has no reversal {reversal_id}.")
    try:
        manual.settle(
            reversal, given_back=given_back, note=note, user_id=None, timezone=bar.timezone
        )
    except manual.SettleError as err:
        raise click.ClickException(err.message) from None
    click.echo(f"{reversal.id} {reversal.state}: {present.sentence(reversal, bar.timezone)}")

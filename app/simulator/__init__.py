"""A faithful Daraja (M-Pesa) simulator: OAuth, STK push, STK query, callbacks, faults.

It is written from the team's Daraja reference (daraja.md) alone, never from `app.mpesa`, so
the client and the simulator check each other. See README.md in this folder for the outcome
table and the faults.

    state = SimulatorState(**INSTANT_TIMING)
    bp = create_blueprint(state, control_secret=s)  # mounted at /_daraja (CSRF-exempt)
    sim = create_sim_app(state, control_secret=s)   # or a standalone app with Daraja at the root

The control API (`/_control/...`) answers only requests with `X-Simulator-Secret: <s>` (or
what `control_allowed()` accepts); without a secret it refuses everyone over HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import click
import requests
from flask import Blueprint, Flask
from werkzeug.serving import run_simple

from app.simulator import api, control
from app.simulator.control import CONTROL_ENV, CONTROL_HEADER
from app.simulator.faults import INSTANT_TIMING, MSISDN_FORMS, Faults
from app.simulator.server import LiveServer
from app.simulator.state import (
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    SIM_CONSUMER_KEY,
    SIM_CONSUMER_SECRET,
    TILL_NUMBER,
    TILL_PASSKEY,
    TILL_STORE_NUMBER,
    SimulatorState,
)

__all__ = [
    "INSTANT_TIMING",
    "SANDBOX_PASSKEY",
    "SANDBOX_SHORTCODE",
    "SIM_CONSUMER_KEY",
    "SIM_CONSUMER_SECRET",
    "CONTROL_ENV",
    "CONTROL_HEADER",
    "STATE_EXTENSION",
    "TILL_NUMBER",
    "TILL_PASSKEY",
    "TILL_STORE_NUMBER",
    "Faults",
    "LiveServer",
    "SimulatorState",
    "create_blueprint",
    "create_sim_app",
    "register_cli",
]

STATE_EXTENSION = "daraja_sim"  # create_sim_app(...).extensions[STATE_EXTENSION] is the state


def create_blueprint(
    state: SimulatorState,
    *,
    name: str = "daraja_sim",
    control_secret: str | None = None,
    control_allowed: Callable[[], bool] | None = None,
) -> Blueprint:
    """Daraja's routes plus `/_control/...`, relative to the blueprint, bound to `state`.

    The control routes need `control_secret` in the `X-Simulator-Secret` header, or
    `control_allowed()` true (the host's own sign-in); neither given, they refuse everyone.
    It needs no app extension; the host app should exempt it from CSRF (`csrf.exempt(bp)`).
    """
    bp = Blueprint(name, __name__)
    control.register(bp, state, secret=control_secret, allow=control_allowed)
    api.register(bp, state)
    return bp


def create_sim_app(
    state: SimulatorState | None = None, *, control_secret: str | None = None
) -> Flask:
    """A standalone app with the simulator at the root (base URL `http://host:port`).

    Its control API needs `control_secret` (none: closed over HTTP; drive `state` in-process).
    """
    state = state if state is not None else SimulatorState()
    sim = Flask(__name__)
    sim.register_blueprint(create_blueprint(state, control_secret=control_secret))
    sim.extensions[STATE_EXTENSION] = state
    return sim


def register_cli(app: Flask) -> None:
    """Add `flask daraja-sim` to `app`."""
    app.cli.add_command(daraja_sim)


# `flask daraja-sim` options that set a menu payment's faults from the start (their names in
# app/simulator/faults.py): the same values the control API's /_control/faults takes.
C2B_OPTIONS = {
    "c2b_msisdn": "c2b_msisdn",
    "c2b_duplicate_share": "c2b_duplicate_rate",
    "c2b_lost_share": "c2b_lost_rate",
    "c2b_seed": "c2b_seed",
}
SHARE = click.FloatRange(0, 1)


@click.group("daraja-sim", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5055, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--callback-delay", type=float, default=None, help="Seconds before callbacks are sent."
)
@click.option(
    "--c2b-msisdn",
    type=click.Choice(MSISDN_FORMS),
    default=None,
    help="The payer's number in C2B confirmations and Pull: masked (default) or hashed.",
)
@click.option(
    "--c2b-duplicate-share",
    type=SHARE,
    default=None,
    help="Share (0-1) of menu payments whose confirmation is sent twice.",
)
@click.option(
    "--c2b-lost-share",
    type=SHARE,
    default=None,
    help="Share (0-1) of menu payments whose confirmation is never sent (Pull still has them).",
)
@click.option("--c2b-seed", type=int, default=None, help="Seed for those shares' draws.")
@click.pass_context
def daraja_sim(
    ctx: click.Context, host: str, port: int, callback_delay: float | None, **c2b: object
) -> None:
    """Serve a standalone Daraja simulator (threaded) until interrupted.

    Its control API takes the secret in DARAJA_SIMULATOR_SECRET, or one made now and printed.
    `flask daraja-sim pay ...` makes one menu payment against a running simulator.
    """
    if ctx.invoked_subcommand is not None:
        return
    faults = {} if callback_delay is None else {"callback_delay": callback_delay}
    faults |= {C2B_OPTIONS[name]: value for name, value in c2b.items() if value is not None}
    try:
        state = SimulatorState(**faults)
    except ValueError as err:  # e.g. the lost and duplicate shares together pass 1
        raise click.UsageError(str(err).replace("_rate", "_share").replace("_", "-")) from None
    secret = control.new_secret()
    try:
        sim = create_sim_app(state, control_secret=secret)
    except ValueError as err:
        raise click.ClickException(f"{CONTROL_ENV}: {err}.") from None
    click.echo(f"Daraja simulator on http://{host}:{port} (consumer key {SIM_CONSUMER_KEY})")
    if os.environ.get(CONTROL_ENV):
        click.echo(f"Control API (/_control/...): send {CONTROL_HEADER}: <{CONTROL_ENV}>")
    else:
        click.echo(f"Control API (/_control/...): send {CONTROL_HEADER}: {secret}")
    try:
        run_simple(host, port, sim, threaded=True)
    finally:
        state.close()


@daraja_sim.command("pay")
@click.option(
    "--url",
    default="http://127.0.0.1:5055",
    show_default=True,
    help="The running simulator's base URL (mounted in PesaTab: http://host:port/_daraja).",
)
@click.option("--shortcode", default=None, help="The PayBill the customer pays (with --account).")
@click.option("--account", default=None, help="The account number the customer types (PayBill).")
@click.option("--till", default=None, help="The till the customer pays instead (Buy Goods).")
@click.option("--amount", type=click.IntRange(min=1), required=True, help="Whole shillings.")
@click.option("--phone", default="254708374149", show_default=True, help="The payer, 2547....")
@click.option("--consumer-key", default=SIM_CONSUMER_KEY, show_default=True)
@click.option("--consumer-secret", default=SIM_CONSUMER_SECRET, show_default=True)
def pay(
    url: str,
    shortcode: str | None,
    account: str | None,
    till: str | None,
    amount: int,
    phone: str,
    consumer_key: str,
    consumer_secret: str,
) -> None:
    """A customer pays from the M-Pesa menu: to a PayBill with an account, or to a till.

    The simulator POSTs the confirmation to the URL registered for the shortcode (the till's
    store), lost or sent twice as its faults say.
    """
    if (shortcode is None) == (till is None):
        raise click.UsageError("Give either --shortcode (a PayBill) or --till.")
    if till is not None and account is not None:
        raise click.UsageError("A till has no account number: leave out --account.")
    if shortcode is not None and not account:
        raise click.UsageError("A PayBill payment needs --account (what the customer types).")
    base = url.rstrip("/")
    body = {
        "ShortCode": shortcode or till,
        "CommandID": "CustomerPayBillOnline" if till is None else "CustomerBuyGoodsOnline",
        "Amount": amount,
        "Msisdn": phone,
        "BillRefNumber": account or "",
    }
    try:
        token = requests.get(
            f"{base}/oauth/v1/generate?grant_type=client_credentials",
            auth=(consumer_key, consumer_secret),
            timeout=10,
        )
        if token.status_code != 200:
            raise click.ClickException(f"No token from {base}: HTTP {token.status_code}.")
        answer = requests.post(
            f"{base}/mpesa/c2b/v1/simulate",
            json=body,
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=10,
        )
    except requests.RequestException as err:
        raise click.ClickException(f"No simulator at {base}: {type(err).__name__}.") from None
    said = (
        answer.json()
        if answer.headers.get("Content-Type", "").startswith("application/json")
        else {}
    )
    if answer.status_code != 200:
        message = said.get("errorMessage") or answer.text[:200]
        raise click.ClickException(f"The simulator refused the payment: {message}")
    to = f"till {till}" if till else f"PayBill {shortcode}, account {account}"
    click.echo(f"KES {amount} paid from {phone} to {to}: {said.get('ResponseDescription', '')}")

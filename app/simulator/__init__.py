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
from flask import Blueprint, Flask
from werkzeug.serving import run_simple

from app.simulator import api, control
from app.simulator.control import CONTROL_ENV, CONTROL_HEADER
from app.simulator.faults import INSTANT_TIMING, Faults
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


@click.command("daraja-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5055, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--callback-delay", type=float, default=None, help="Seconds before callbacks are sent."
)
def daraja_sim(host: str, port: int, callback_delay: float | None) -> None:
    """Serve a standalone Daraja simulator (threaded) until interrupted.

    Its control API takes the secret in DARAJA_SIMULATOR_SECRET, or one made now and printed.
    """
    faults = {} if callback_delay is None else {"callback_delay": callback_delay}
    secret = control.new_secret()
    try:
        sim = create_sim_app(SimulatorState(**faults), control_secret=secret)
    except ValueError as err:
        raise click.ClickException(f"{CONTROL_ENV}: {err}.") from None
    state = sim.extensions[STATE_EXTENSION]
    click.echo(f"Daraja simulator on http://{host}:{port} (consumer key {SIM_CONSUMER_KEY})")
    if os.environ.get(CONTROL_ENV):
        click.echo(f"Control API (/_control/...): send {CONTROL_HEADER}: <{CONTROL_ENV}>")
    else:
        click.echo(f"Control API (/_control/...): send {CONTROL_HEADER}: {secret}")
    try:
        run_simple(host, port, sim, threaded=True)
    finally:
        state.close()

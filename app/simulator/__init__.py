"""A faithful Daraja (M-Pesa) simulator: OAuth, STK push, STK query, callbacks, faults.

It is written from `shared/daraja.md` alone, never from `app.mpesa`, so the client and the
simulator check each other. See README.md in this folder for the outcome table and the faults.

    state = SimulatorState(**INSTANT_TIMING)
    bp = create_blueprint(state)                  # the lead mounts it at /_daraja (CSRF-exempt)
    sim = create_sim_app(state)                   # or a standalone app with Daraja at the root
"""

from __future__ import annotations

import click
from flask import Blueprint, Flask
from werkzeug.serving import run_simple

from app.simulator import api, control
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


def create_blueprint(state: SimulatorState, *, name: str = "daraja_sim") -> Blueprint:
    """Daraja's routes plus `/_control/...`, relative to the blueprint, bound to `state`.

    It needs no app extension; the host app should exempt it from CSRF (`csrf.exempt(bp)`).
    """
    bp = Blueprint(name, __name__)
    control.register(bp, state)
    api.register(bp, state)
    return bp


def create_sim_app(state: SimulatorState | None = None) -> Flask:
    """A standalone app with the simulator at the root (base URL `http://host:port`)."""
    state = state if state is not None else SimulatorState()
    sim = Flask(__name__)
    sim.register_blueprint(create_blueprint(state))
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
    """Serve a standalone Daraja simulator (threaded) until interrupted."""
    faults = {} if callback_delay is None else {"callback_delay": callback_delay}
    state = SimulatorState(**faults)
    click.echo(f"Daraja simulator on http://{host}:{port} (consumer key {SIM_CONSUMER_KEY})")
    try:
        run_simple(host, port, create_sim_app(state), threaded=True)
    finally:
        state.close()

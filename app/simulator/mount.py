"""The Daraja simulator mounted at /_daraja (development, the demo, tests; never production).

Its Daraja routes are open, as Safaricom's are. Its control API (`/_daraja/_control/...`:
faults, reset, the record, the truth) answers only
- a signed-in PesaTab operator (unsafe methods also need the CSRF token, as every form does), or
- a request with `X-Simulator-Secret: <this instance's secret>`: a random secret made once into
  `instance/simulator_secret` (mode 0600) and printed by `flask demo` (so by `make run`).
Anyone else, a bar's owner, manager or cashier included, gets the 404 of an unknown path.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from flask import Flask, request
from flask_login import current_user

from app.config import ConfigError
from app.extensions import csrf, limiter

CONTROL_FILENAME = "simulator_secret"
CONTROL_CONFIG = "DARAJA_SIM_SECRET"  # tests set it; otherwise the instance file's
CONTROL_EXTENSION = "daraja_sim_secret"  # app.extensions[...]: the secret in use
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def mount(app: Flask) -> None:
    """The simulator at /_daraja with its state and control secret, and `flask daraja-sim`."""
    from app.simulator import STATE_EXTENSION, SimulatorState, create_blueprint, register_cli
    from app.simulator.status import use_key_file

    if app.config.get("PESATAB_ENV") == "production":
        raise ConfigError("The Daraja simulator is never mounted in production.")
    state = app.config.get("DARAJA_SIM_STATE") or SimulatorState()
    if not app.config.get("DARAJA_SIM_STATE"):  # `make run`: one certificate for every process
        use_key_file(state, Path(app.instance_path))
    secret = app.config.get(CONTROL_CONFIG) or load_or_create_secret(Path(app.instance_path))
    try:
        blueprint = create_blueprint(
            state, control_secret=secret, control_allowed=operator_signed_in
        )
    except ValueError as err:
        raise ConfigError(f"{CONTROL_CONFIG}: {err}.") from None
    csrf.exempt(blueprint)  # Safaricom's side of the wire sends no CSRF token
    limiter.exempt(blueprint)  # the simulator plays Daraja's own spike arrest when asked
    app.register_blueprint(blueprint, url_prefix="/_daraja")
    app.extensions[STATE_EXTENSION] = state
    app.extensions[CONTROL_EXTENSION] = secret
    register_cli(app)


def operator_signed_in() -> bool:
    """True for a signed-in operator; on an unsafe method the CSRF token must be valid too."""
    if not (current_user.is_authenticated and current_user.is_operator):
        return False
    if request.method not in SAFE_METHODS:
        csrf.protect()  # a session cookie alone must not reset the simulator (CSRFError: 400)
    return True


def load_or_create_secret(instance_dir: Path) -> str:
    """The secret in `instance_dir/simulator_secret`, made (random, mode 0600) if absent.

    Written complete under a temporary name and hard-linked into place, so two processes
    starting together (`flask demo` and the server) read the same secret.
    """
    path = instance_dir / CONTROL_FILENAME
    if not path.exists():
        instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=instance_dir, prefix=f".{CONTROL_FILENAME}.")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as tmp:
                tmp.write(secrets.token_urlsafe(32) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(tmp_name, path)
        finally:
            os.unlink(tmp_name)
    return path.read_text(encoding="ascii").strip()

"""`flask keys generate|rotate`: the encryption keys sealing stored credentials.

`keys` is also a Flask plugin command (pyproject.toml, entry point `flask.commands`), so the
`flask` CLI finds it without loading the app: `keys generate` makes the very key production
refuses to start without, so it needs no settings at all. `keys rotate` loads the app like any
other command (`with_appcontext`), and is refused when the settings are incomplete.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.crypto import generate_key


@click.group()
def keys() -> None:
    """Encryption keys for stored credentials."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new key entry for PESATAB_ENCRYPTION_KEYS (put it first to seal with it)."""
    click.echo(generate_key())


@keys.command("rotate")
@with_appcontext
def keys_rotate() -> None:
    """Re-seal every stored credential under the first key. Safe to run again."""
    from app.settings import vault

    resealed, unreadable = vault.rotate_all()
    click.echo(f"Re-sealed {resealed} credential set(s) under key {vault.keyring().current_kid}.")
    if unreadable:
        raise click.ClickException(
            f"{unreadable} credential set(s) cannot be opened with the configured keys; "
            "add the key they were sealed with to PESATAB_ENCRYPTION_KEYS and run again."
        )

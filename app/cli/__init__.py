"""The `flask` commands, a module a group.

- bars: `flask bars`, `flask operators`, `flask demo`
- mpesa: `flask credentials`, `flask bars go-live`'s body
- pull: `flask c2b pull-register`, `flask c2b pull` (Pull Transactions)
- reversals: `flask reversals ask|show` (give a paid payment's money back)
- ops: backups and the operator's checks
- api: `flask api-keys`
- jobs: `flask jobs run|status`, `flask scheduler`
- keys: `flask keys generate`, a plugin command (pyproject entry point) that never loads the app
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from app.cli import api, bars, jobs, mpesa, ops, pull, reversals

    for commands in (bars, mpesa, ops, api, jobs, pull, reversals):
        commands.init_app(app)

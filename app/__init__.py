"""PesaTab: the application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import logging_setup
from app.config import ConfigError, load_config
from app.crypto import KeyRing, KeyRingError, load_or_create_local_keys
from app.extensions import csrf, db, limiter, login_manager, migrate
from app.i18n import lazy


def create_app(test_config: dict | None = None, *, environ: dict | None = None) -> Flask:
    """Build the app: settings, extensions, blueprints, CLI. No database work happens here."""
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(load_config(environ, instance_path=app.instance_path))
    if test_config:
        app.config.update(test_config)

    app.extensions["pesatab_keyring"] = _keyring(app)
    logging_setup.init_app(app)  # after the key ring: the keys it holds are kept out of logs
    from app.health import metrics

    metrics.init_app(app)  # before the extensions: the limiter reads its breach callback then
    _init_extensions(app)
    _register_blueprints(app)

    from app import cli
    from app.jobs import scheduler
    from app.web import errors, filters, i18n, security

    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    security.init_app(app)
    scheduler.init_app(app)
    errors.init_app(app)
    filters.init_app(app)
    i18n.init_app(app)
    cli.init_app(app)
    return app


def _keyring(app: Flask) -> KeyRing:
    """The key ring sealing stored credentials; local runs keep a generated key in instance/."""
    text = app.config.get("PESATAB_ENCRYPTION_KEYS")
    if not text:
        text = load_or_create_local_keys(Path(app.instance_path))
    try:
        return KeyRing.parse(text)
    except KeyRingError as err:
        raise ConfigError(f"PESATAB_ENCRYPTION_KEYS: {err}") from None


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=str(Path(app.root_path).parent / "migrations"),
        render_as_batch=True,
        compare_type=True,
    )
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy("Please log in to continue.")
    login_manager.login_message_category = "info"


def _register_blueprints(app: Flask) -> None:
    """One package an area; its blueprint, named as the package, lives in its routes.py."""
    from app.api.routes import bp as api
    from app.audit.routes import bp as audit
    from app.auth.routes import bp as auth
    from app.balance.routes import bp as balance
    from app.dashboard.routes import bp as dashboard
    from app.health.routes import bp as health
    from app.hooks.routes import bp as hooks
    from app.ops.routes import bp as ops
    from app.payments.routes import bp as payments
    from app.receipts.routes import bp as receipts
    from app.reconciliation.routes import bp as reconciliation
    from app.reversals.routes import bp as reversals
    from app.settings.routes import bp as settings
    from app.staff.routes import bp as staff
    from app.statements.routes import bp as statements
    from app.tabs.routes import bp as tabs
    from app.verify.routes import bp as verify

    for blueprint in (
        auth,
        dashboard,
        staff,
        hooks,
        payments,
        settings,
        tabs,
        api,
        reconciliation,
        statements,
        health,
        ops,
        audit,
        receipts,
        verify,
        reversals,
        balance,
    ):
        app.register_blueprint(blueprint)
    if app.config["DARAJA_SIMULATOR"]:
        _mount_simulator(app)


def _mount_simulator(app: Flask) -> None:
    """Daraja's stand-in at /_daraja for the demo, development and tests (never production);
    its control API is for operators and the instance's secret (app/simulator/mount.py)."""
    from app.simulator import mount as simulator_mount

    simulator_mount.mount(app)

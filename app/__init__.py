"""PesaTab: the application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import logging_setup
from app.config import ConfigError, load_config
from app.crypto import KeyRing, KeyRingError, load_or_create_local_keys
from app.extensions import csrf, db, limiter, login_manager, migrate


def create_app(test_config: dict | None = None, *, environ: dict | None = None) -> Flask:
    """Build the app: settings, extensions, blueprints, CLI. No database work happens here."""
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(load_config(environ, instance_path=app.instance_path))
    if test_config:
        app.config.update(test_config)

    app.extensions["pesatab_keyring"] = _keyring(app)
    logging_setup.init_app(app)
    from app import metrics

    metrics.init_app(app)  # before the extensions: the limiter reads its breach callback then
    _init_extensions(app)
    _register_blueprints(app)

    from app import cli, cli_jobs, errors, filters, scheduler, security

    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    security.init_app(app)
    scheduler.init_app(app)
    cli_jobs.init_app(app)
    errors.init_app(app)
    filters.init_app(app)
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
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"


def _register_blueprints(app: Flask) -> None:
    from app.api import bp as api_bp
    from app.api_keys import bp as api_keys_bp
    from app.audit_ui import bp as audit_bp
    from app.auth import bp as auth_bp
    from app.dashboard import bp as dashboard_bp
    from app.health import bp as health_bp
    from app.hooks import bp as hooks_bp
    from app.ops import bp as ops_bp
    from app.payments_ui import bp as payments_bp
    from app.reconciliation import bp as reconciliation_bp
    from app.settings import bp as settings_bp
    from app.staff import bp as staff_bp
    from app.statements import bp as statements_bp
    from app.tabs import bp as tabs_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(hooks_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(tabs_bp)
    app.register_blueprint(api_keys_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(reconciliation_bp)
    app.register_blueprint(statements_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(audit_bp)
    if app.config["DARAJA_SIMULATOR"]:
        _mount_simulator(app)


def _mount_simulator(app: Flask) -> None:
    """Daraja's stand-in at /_daraja for the demo, development and tests (never production);
    its control API is for operators and the instance's secret (app/simulator_mount.py)."""
    from app import simulator_mount

    simulator_mount.mount(app)

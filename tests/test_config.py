"""Configuration: strict parsing, local defaults, production refusing to start without secrets."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import ConfigError, load_config, parse_bool

PRODUCTION = {
    "PESATAB_ENV": "production",
    "SECRET_KEY": "x" * 48,
    "DATABASE_URL": "postgresql://pesatab@db.internal/pesatab",
    "PESATAB_ENCRYPTION_KEYS": "k1:" + "A" * 43 + "=",
}


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "PESATAB_ENCRYPTION_KEYS"])
def test_production_refuses_to_start_without_each_secret(tmp_path, missing):
    environ = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigError) as err:
        load_config(environ, instance_path=str(tmp_path))
    assert missing in str(err.value)


def test_production_names_everything_missing_at_once(tmp_path):
    with pytest.raises(ConfigError) as err:
        create_app(environ={"PESATAB_ENV": "production"})
    message = str(err.value)
    assert all(name in message for name in ("SECRET_KEY", "DATABASE_URL", "PESATAB_ENCRYPTION_KEYS"))


def test_production_refuses_a_short_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="at least 32"):
        load_config({**PRODUCTION, "SECRET_KEY": "short"}, instance_path=str(tmp_path))


def test_production_refuses_the_simulator(tmp_path):
    with pytest.raises(ConfigError, match="DARAJA_SIMULATOR"):
        load_config({**PRODUCTION, "DARAJA_SIMULATOR": "1"}, instance_path=str(tmp_path))


def test_production_secures_cookies_and_turns_the_simulator_off(tmp_path):
    config = load_config(PRODUCTION, instance_path=str(tmp_path))
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["DARAJA_SIMULATOR"] is False
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://pesatab@db.internal/pesatab"


def test_local_runs_need_no_configuration(tmp_path):
    config = load_config({}, instance_path=str(tmp_path))
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'pesatab.sqlite3'}"
    assert config["DARAJA_SIMULATOR"] is True and config["SESSION_COOKIE_SECURE"] is False
    assert len(config["SECRET_KEY"]) >= 32


def test_the_generated_secret_is_kept_so_sessions_survive_a_restart(tmp_path):
    first = load_config({}, instance_path=str(tmp_path))["SECRET_KEY"]
    assert load_config({}, instance_path=str(tmp_path))["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled"])
def test_a_bad_boolean_is_an_error_not_false(raw):
    with pytest.raises(ConfigError, match="SCHEDULER_ENABLED"):
        parse_bool("SCHEDULER_ENABLED", raw, True)


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("Yes", True), ("off", False), ("", True)])
def test_booleans_read_the_usual_words(raw, expected):
    assert parse_bool("X", raw, True) is expected


def test_bad_numbers_and_choices_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="MAX_CONTENT_LENGTH"):
        load_config({"MAX_CONTENT_LENGTH": "lots"}, instance_path=str(tmp_path))
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_config({"LOG_FORMAT": "xml"}, instance_path=str(tmp_path))

"""Configuration: strict parsing, local defaults, production refusing to start without secrets."""

from __future__ import annotations

import base64

import pytest

from app import create_app
from app.config import ConfigError, load_config, parse_bool
from app.crypto import generate_key

STRONG_SECRET_KEY = "aQn1Y9icOoH2Un8jjibINx6VuKTQXSRevPNoOBm3H3zMc3HLhOHbGOPAcz3PZLhJ"
PRODUCTION = {
    "PESATAB_ENV": "production",
    "SECRET_KEY": STRONG_SECRET_KEY,
    "DATABASE_URL": "postgresql://pesatab@db.internal/pesatab",
    "PESATAB_ENCRYPTION_KEYS": generate_key("k1"),
    "PUBLIC_BASE_URL": "https://pay.pesatab.co.ke",
    "REDIS_URL": "redis://cache.internal:6379/0",
}


def refused(tmp_path, **changes) -> str:
    """The sentence production refuses `PRODUCTION` changed by `changes` (None: unset) with."""
    environ = {**PRODUCTION, **changes}
    environ = {key: value for key, value in environ.items() if value is not None}
    with pytest.raises(ConfigError) as err:
        load_config(environ, instance_path=str(tmp_path))
    return str(err.value)


def ring_key(kid: str, key: bytes) -> str:
    return f"{kid}:{base64.urlsafe_b64encode(key).decode()}"


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
    assert all(
        name in message for name in ("SECRET_KEY", "DATABASE_URL", "PESATAB_ENCRYPTION_KEYS")
    )


def test_production_refuses_a_short_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="at least 32"):
        load_config({**PRODUCTION, "SECRET_KEY": "short"}, instance_path=str(tmp_path))


@pytest.mark.parametrize(
    "key",
    [
        "a" * 32,  # one character repeated
        "ab" * 20,  # a short pattern repeated
        "Xy3!" * 9,
        "s3cr3tK3y-" * 4,
        "aaaabbbbccccddddeeeeffff00000000",  # 7 different characters
        "changeme-please-to-a-long-value-2024",  # placeholders
        "my-super-SECRET-key-for-production-use",
        "default_password_for_pesatab_prod_1234",
    ],
)
def test_production_refuses_a_guessable_secret_key(tmp_path, key):
    message = refused(tmp_path, SECRET_KEY=key)
    assert message.startswith("SECRET_KEY ") and "easy to guess" in message
    assert "secrets.token_urlsafe(48)" in message
    assert key not in message


@pytest.mark.parametrize(
    "key",
    [
        # secrets.token_urlsafe(48)
        "PquRpfVOGSRf0yeSqEIeBl-3I_gmnaatsz5GGKT09oCss9rW51G3Ltag15A5CxZ0",
        "4b2fef18a61b083ceba0d49b1921dfdbf58c557c86eb662ae04fd84f7cb33f06",  # secrets.token_hex()
        "b6b1419c79fd61365fb00ce5c8b61e3f",  # secrets.token_hex(16)
    ],
)
def test_production_tells_random_secret_keys_from_guessable_ones(tmp_path, key):
    assert load_config({**PRODUCTION, "SECRET_KEY": key}, instance_path=str(tmp_path))
    assert "easy to guess" in refused(tmp_path, SECRET_KEY=key[:4] * (len(key) // 4))


@pytest.mark.parametrize(
    "ring",
    [
        ring_key("k1", bytes(32)),  # all zero
        ring_key("k1", b"\xff" * 32),
        ring_key("k1", b"A" * 32),
        ring_key("k1", bytes(range(4)) * 8),  # four byte values repeated
        generate_key("k2") + "," + ring_key("k1", bytes(32)),  # an old key as weak
    ],
)
def test_production_refuses_an_encryption_key_that_is_not_random(tmp_path, ring):
    message = refused(tmp_path, PESATAB_ENCRYPTION_KEYS=ring)
    assert message.startswith("PESATAB_ENCRYPTION_KEYS: key 'k1' is not random")
    assert "flask keys generate" in message
    assert all(entry.partition(":")[2] not in message for entry in ring.split(","))


def test_production_names_a_malformed_key_ring(tmp_path):
    message = refused(tmp_path, PESATAB_ENCRYPTION_KEYS="k1:" + "A" * 10)
    assert message.startswith("PESATAB_ENCRYPTION_KEYS: ") and "32 bytes" in message


@pytest.mark.parametrize("value", ["1", "true", "YES", "on", "debug"])
def test_production_refuses_flask_debug(tmp_path, value):
    message = refused(tmp_path, FLASK_DEBUG=value)
    assert message.startswith("FLASK_DEBUG is on") and "/console" in message


def test_production_reads_flask_debug_as_flask_does(tmp_path):
    for off in ("", "0", "false", "No"):
        assert load_config({**PRODUCTION, "FLASK_DEBUG": off}, instance_path=str(tmp_path))
    # Flask turns its debugger on for any other word, "off" included.
    assert refused(tmp_path, FLASK_DEBUG="off").startswith("FLASK_DEBUG is on")


@pytest.mark.parametrize(
    ("name", "value", "found"),
    [
        ("PUBLIC_BASE_URL", "http://pay.pesatab.co.ke", "it starts with http://"),
        ("PUBLIC_BASE_URL", "HTTP://pay.pesatab.co.ke", "it starts with http://"),
        ("PUBLIC_BASE_URL", "pay.pesatab.co.ke", "it is not a URL"),
        ("PUBLIC_BASE_URL", "https://", "it starts with https://"),
        ("DARAJA_BASE_URL", "http://user:hunter2@proxy.internal:8080", "it starts with http://"),
        ("DARAJA_BASE_URL", "ftp://proxy.internal", "it starts with ftp://"),
    ],
)
def test_production_refuses_addresses_that_are_not_https(tmp_path, name, value, found):
    message = refused(tmp_path, **{name: value})
    assert message.startswith(f"{name} must be an https:// address in production")
    assert found in message and "hunter2" not in message and "proxy.internal" not in message


def test_production_needs_its_public_address(tmp_path):
    message = refused(tmp_path, PUBLIC_BASE_URL=None)
    assert message.startswith("PUBLIC_BASE_URL must be set in production")


def test_production_takes_a_daraja_proxy_over_https_only(tmp_path):
    config = load_config(
        {**PRODUCTION, "DARAJA_BASE_URL": "https://egress.internal/daraja"},
        instance_path=str(tmp_path),
    )
    assert config["DARAJA_BASE_URL"] == "https://egress.internal/daraja"
    assert refused(tmp_path, DARAJA_BASE_URL="http://egress.internal/daraja").startswith(
        "DARAJA_BASE_URL must be an https:// address in production"
    )


def test_rate_limits_count_in_redis_url_unless_told_otherwise(tmp_path):
    def storage(**environ) -> str:
        return load_config(environ, instance_path=str(tmp_path))["RATELIMIT_STORAGE_URI"]

    redis = "redis://127.0.0.1:6379/3"
    assert storage(REDIS_URL=redis) == redis
    assert storage(REDIS_URL=redis, RATELIMIT_STORAGE_URI="memory://") == "memory://"
    assert storage(REDIS_URL=redis, RATELIMIT_STORAGE_URI="rediss://l.internal:6380/1") == (
        "rediss://l.internal:6380/1"
    )
    assert storage() == "memory://"


def test_production_counts_rate_limits_in_redis_url(tmp_path):
    config = load_config(PRODUCTION, instance_path=str(tmp_path))
    assert config["RATELIMIT_STORAGE_URI"] == "redis://cache.internal:6379/0"


@pytest.mark.parametrize(
    ("changes", "workers"),
    [
        ({"REDIS_URL": None}, 2),  # gunicorn's default
        ({"REDIS_URL": None, "WEB_CONCURRENCY": "2"}, 2),
        ({"RATELIMIT_STORAGE_URI": "memory://", "WEB_CONCURRENCY": "4"}, 4),  # explicit wins
    ],
)
def test_production_refuses_memory_rate_limits_with_several_workers(tmp_path, changes, workers):
    message = refused(tmp_path, **changes)
    assert message.startswith(f"RATELIMIT_STORAGE_URI is memory:// but {workers} gunicorn workers")
    assert "WEB_CONCURRENCY" in message and "REDIS_URL" in message


def test_production_allows_memory_rate_limits_with_one_worker_only(tmp_path):
    environ = {**PRODUCTION, "RATELIMIT_STORAGE_URI": "memory://", "WEB_CONCURRENCY": "1"}
    assert load_config(environ, instance_path=str(tmp_path))["RATELIMIT_STORAGE_URI"] == "memory://"
    assert "memory://" in refused(tmp_path, RATELIMIT_STORAGE_URI="memory://", WEB_CONCURRENCY="2")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDIS_URL", "cache.internal:6379"),
        ("RATELIMIT_STORAGE_URI", "postgres://db.internal/limits"),
    ],
)
def test_a_rate_limit_storage_that_cannot_work_is_named(tmp_path, name, value):
    with pytest.raises(ConfigError) as err:
        load_config({name: value}, instance_path=str(tmp_path))
    assert str(err.value).startswith(f"{name} must be a storage URL such as redis://")


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


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("Yes", True), ("off", False), ("", True)]
)
def test_booleans_read_the_usual_words(raw, expected):
    assert parse_bool("X", raw, True) is expected


def test_bad_numbers_and_choices_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="MAX_CONTENT_LENGTH"):
        load_config({"MAX_CONTENT_LENGTH": "lots"}, instance_path=str(tmp_path))
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_config({"LOG_FORMAT": "xml"}, instance_path=str(tmp_path))

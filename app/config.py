"""Settings from environment variables, parsed strictly, with safe local defaults.

Nothing here imports Flask: `load_config(environ, instance_path)` returns a plain dict that
`create_app` hands to `app.config`. A value that cannot be parsed is an error at start-up,
never a silent default.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import click
from limits.storage import SCHEMES as RATELIMIT_SCHEMES

from app.crypto import KeyRing, KeyRingError

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}
ENVIRONMENTS = {"development", "production", "test"}
LOG_LEVELS = {"debug", "info", "warning", "error", "critical"}


class ConfigError(click.ClickException, RuntimeError):
    """The environment describes a configuration the app must not start with.

    A ClickException too, so a `flask` command refused for its settings prints the sentence
    (`Error: ...`, exit 1) instead of a traceback."""


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    """Read a boolean the way people write them; anything else is an error, not False."""
    if raw is None or raw.strip() == "":
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be one of 1/0, true/false, yes/no, on/off (got {raw!r}).")


def parse_int(name: str, raw: str | None, default: int, *, minimum: int = 0) -> int:
    """Read a whole number no smaller than `minimum`."""
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number (got {raw!r}).") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum} (got {value}).")
    return value


def parse_choice(name: str, raw: str | None, default: str, choices: set[str]) -> str:
    """Read one word out of a fixed set."""
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(sorted(choices))} (got {raw!r}).")
    return value


def _local_secret_key(instance: Path) -> str:
    """A random secret kept under instance/ so local sessions survive a restart."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def _database_url(raw: str | None, instance: Path) -> str:
    if raw:
        # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants an explicit driver.
        for prefix in ("postgres://", "postgresql://"):
            if raw.startswith(prefix):
                return "postgresql+psycopg://" + raw[len(prefix) :]
        return raw
    instance.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance / 'pesatab.sqlite3'}"


def load_config(environ: Mapping[str, str] | None = None, *, instance_path: str) -> dict:
    """Build the settings dict from `environ` (default: os.environ)."""
    env = dict(os.environ if environ is None else environ)
    instance = Path(instance_path)
    pesatab_env = parse_choice("PESATAB_ENV", env.get("PESATAB_ENV"), "development", ENVIRONMENTS)
    production = pesatab_env == "production"
    if production:
        _require_production_settings(env)

    simulator = parse_bool("DARAJA_SIMULATOR", env.get("DARAJA_SIMULATOR"), not production)
    if production and simulator:
        raise ConfigError("DARAJA_SIMULATOR cannot be on in production.")

    return {
        "PESATAB_ENV": pesatab_env,
        "SECRET_KEY": env.get("SECRET_KEY") or _local_secret_key(instance),
        "SQLALCHEMY_DATABASE_URI": _database_url(env.get("DATABASE_URL"), instance),
        # No pre-ping on every checkout: app/extensions.py pings a connection idle for a while.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False},
        "PESATAB_ENCRYPTION_KEYS": env.get("PESATAB_ENCRYPTION_KEYS") or None,
        "PUBLIC_BASE_URL": (env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "DARAJA_SIMULATOR": simulator,
        "DARAJA_BASE_URL": env.get("DARAJA_BASE_URL") or None,
        "RATELIMIT_STORAGE_URI": _ratelimit_storage(env, production),
        # Several PesaTab instances (or test runs) sharing one Redis keep their counts apart.
        "RATELIMIT_KEY_PREFIX": (env.get("RATELIMIT_KEY_PREFIX") or "").strip(),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Failed sign-ins (app/auth/throttle.py): per (address, account) pair, per address, and
        # per account from anywhere; a device that signed in to the account before skips the last.
        "LOGIN_LIMIT_PER_PAIR": env.get("LOGIN_LIMIT_PER_PAIR") or "5 per 5 minutes",
        "LOGIN_LIMIT_PER_ADDRESS": env.get("LOGIN_LIMIT_PER_ADDRESS") or "30 per 5 minutes",
        "LOGIN_LIMIT_PER_ACCOUNT": env.get("LOGIN_LIMIT_PER_ACCOUNT") or "20 per 15 minutes",
        "FORGOT_PASSWORD_LIMIT_PER_ADDRESS": (
            env.get("FORGOT_PASSWORD_LIMIT_PER_ADDRESS") or "10 per hour"
        ),
        "PUSH_LIMIT_PER_BAR": env.get("PUSH_LIMIT_PER_BAR") or "10 per 5 minutes",
        "PUSH_LIMIT_PER_USER": env.get("PUSH_LIMIT_PER_USER") or "6 per minute",
        # Codes a bar asks M-Pesa about (Transaction Status); its own records answer unlimited.
        "VERIFY_LIMIT_PER_BAR": env.get("VERIFY_LIMIT_PER_BAR") or "20 per 5 minutes",
        "BALANCE_LIMIT_PER_BAR": env.get("BALANCE_LIMIT_PER_BAR") or "1 per 5 minutes",
        "STATEMENT_UPLOAD_MAX_BYTES": parse_int(
            "STATEMENT_UPLOAD_MAX_BYTES",
            env.get("STATEMENT_UPLOAD_MAX_BYTES"),
            50 * 1024 * 1024,
            minimum=1024,
        ),
        # How many reverse proxies stand in front of the app (0: none). With 1, the proxy's
        # X-Forwarded-For/-Proto/-Host are trusted, so rate limits and callback source
        # addresses see the real client, and url_for builds https links.
        "TRUSTED_PROXIES": parse_int("TRUSTED_PROXIES", env.get("TRUSTED_PROXIES"), 0, minimum=0),
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT") or "60 per minute",
        "SIGNUP_LIMIT_PER_ADDRESS": env.get("SIGNUP_LIMIT_PER_ADDRESS") or "10 per hour",
        # Receipt links opened from one address (GET /r/<token>), found or not.
        "RECEIPT_LIMIT_PER_ADDRESS": env.get("RECEIPT_LIMIT_PER_ADDRESS") or "30 per minute",
        "MPESA_PUSHES_DISABLED": parse_bool(
            "MPESA_PUSHES_DISABLED", env.get("MPESA_PUSHES_DISABLED"), False
        ),
        "MPESA_MAX_AMOUNT": parse_int(
            "MPESA_MAX_AMOUNT", env.get("MPESA_MAX_AMOUNT"), 250_000, minimum=1
        ),
        "DARAJA_READ_TIMEOUT": float(
            parse_int("DARAJA_READ_TIMEOUT", env.get("DARAJA_READ_TIMEOUT"), 15, minimum=1)
        ),
        "PROMPT_LIFETIME_SECONDS": parse_int(
            "PROMPT_LIFETIME_SECONDS", env.get("PROMPT_LIFETIME_SECONDS"), 90, minimum=10
        ),
        "CALLBACK_MAX_BYTES": parse_int(
            "CALLBACK_MAX_BYTES", env.get("CALLBACK_MAX_BYTES"), 16 * 1024, minimum=1024
        ),
        "CALLBACK_STRICT_SOURCES": parse_bool(
            "CALLBACK_STRICT_SOURCES", env.get("CALLBACK_STRICT_SOURCES"), False
        ),
        # background: applied just after Safaricom has its answer, a burst in batches
        # (app/payments/applier.py); inline: before it. bench/README.md says why background.
        "CALLBACK_APPLY": parse_choice(
            "CALLBACK_APPLY", env.get("CALLBACK_APPLY"), "background", {"inline", "background"}
        ),
        # C2B validation's own deadline (Daraja waits ~8 s): past it, the payment is accepted.
        "C2B_VALIDATION_DEADLINE_MS": parse_int(
            "C2B_VALIDATION_DEADLINE_MS", env.get("C2B_VALIDATION_DEADLINE_MS"), 2000, minimum=50
        ),
        "SCHEDULER_ENABLED": parse_bool("SCHEDULER_ENABLED", env.get("SCHEDULER_ENABLED"), True),
        # Operators' probes and Prometheus (app/health/).
        "METRICS_TOKEN": _metrics_token(env.get("METRICS_TOKEN"), production),
        "READYZ_REQUIRE_SCHEDULER": _optional_bool(
            "READYZ_REQUIRE_SCHEDULER", env.get("READYZ_REQUIRE_SCHEDULER")
        ),
        # A worker killed mid-run holds the job lease for 120 s: readiness must ride that out.
        "READYZ_SCHEDULER_MAX_AGE": parse_int(
            "READYZ_SCHEDULER_MAX_AGE", env.get("READYZ_SCHEDULER_MAX_AGE"), 180, minimum=30
        ),
        "READYZ_TIMEOUT_SECONDS": float(
            parse_int("READYZ_TIMEOUT_SECONDS", env.get("READYZ_TIMEOUT_SECONDS"), 3, minimum=1)
        ),
        "LOG_FORMAT": parse_choice("LOG_FORMAT", env.get("LOG_FORMAT"), "text", {"text", "json"}),
        "LOG_LEVEL": parse_choice("LOG_LEVEL", env.get("LOG_LEVEL"), "info", LOG_LEVELS).upper(),
        # Raw callback bodies older than this are blanked by the prune job; the rows stay.
        "CALLBACK_RETENTION_DAYS": parse_int(
            "CALLBACK_RETENTION_DAYS", env.get("CALLBACK_RETENTION_DAYS"), 180, minimum=1
        ),
        "MAX_CONTENT_LENGTH": parse_int(
            "MAX_CONTENT_LENGTH", env.get("MAX_CONTENT_LENGTH"), 5 * 1024 * 1024, minimum=1024
        ),
        # Long enough for a page left open through a whole evening's shift.
        "WTF_CSRF_TIME_LIMIT": parse_int(
            "CSRF_TIME_LIMIT_SECONDS", env.get("CSRF_TIME_LIMIT_SECONDS"), 16 * 3600, minimum=60
        ),
        "SET_PASSWORD_LINK_HOURS": parse_int(
            "SET_PASSWORD_LINK_HOURS", env.get("SET_PASSWORD_LINK_HOURS"), 48, minimum=1
        ),
        **_alert_settings(env),
        **_smtp_settings(env),
        "PASSWORD_HASH_METHOD": "scrypt",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_DURATION": 30 * 24 * 3600,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
    }


def _alert_settings(env: Mapping[str, str]) -> dict:
    """When the dashboard and the operators' page raise an alert (app/ops/alerts.py)."""
    rate = parse_int("ALERT_SUCCESS_RATE", env.get("ALERT_SUCCESS_RATE"), 50, minimum=0)
    if rate > 100:
        raise ConfigError(f"ALERT_SUCCESS_RATE is a percentage, 0 to 100 (got {rate}).")
    return {
        "ALERT_SUCCESS_RATE": rate,
        "ALERT_MIN_PUSHES": parse_int(
            "ALERT_MIN_PUSHES", env.get("ALERT_MIN_PUSHES"), 5, minimum=1
        ),
    }


def _smtp_settings(env: Mapping[str, str]) -> dict:
    """Where the owners' daily summary email goes out. No SMTP_HOST: no email, and no error."""
    host = (env.get("SMTP_HOST") or "").strip() or None
    user = (env.get("SMTP_USER") or "").strip() or None
    password = env.get("SMTP_PASSWORD") or None
    sender = (env.get("SMTP_FROM") or "").strip() or None
    if host and not sender:
        raise ConfigError("SMTP_FROM must be set with SMTP_HOST (the address summaries come from).")
    if bool(user) != bool(password):
        raise ConfigError("SMTP_USER and SMTP_PASSWORD go together: set both or neither.")
    return {
        "SMTP_HOST": host,
        "SMTP_PORT": parse_int("SMTP_PORT", env.get("SMTP_PORT"), 587, minimum=1),
        "SMTP_USER": user,
        "SMTP_PASSWORD": password,
        "SMTP_FROM": sender,
        "SMTP_STARTTLS": parse_bool("SMTP_STARTTLS", env.get("SMTP_STARTTLS"), True),
    }


def _optional_bool(name: str, raw: str | None) -> bool | None:
    """A boolean that may be left unset (None: follow another setting)."""
    if raw is None or raw.strip() == "":
        return None
    return parse_bool(name, raw, False)


def _metrics_token(raw: str | None, production: bool) -> str | None:
    token = (raw or "").strip() or None
    if token and production and len(token) < 16:
        raise ConfigError("METRICS_TOKEN must be at least 16 characters in production.")
    return token


def web_concurrency(env: Mapping[str, str]) -> int:
    """How many gunicorn workers serve: gunicorn.conf.py's rule (WEB_CONCURRENCY, default 2)."""
    return parse_int("WEB_CONCURRENCY", env.get("WEB_CONCURRENCY"), 2, minimum=1)


def _ratelimit_storage(env: Mapping[str, str], production: bool) -> str:
    """Where Flask-Limiter counts: RATELIMIT_STORAGE_URI, else REDIS_URL, else memory://.

    memory:// counts in each worker on its own, so with N workers every limit is N times too
    generous: production refuses it unless one worker serves."""
    explicit = (env.get("RATELIMIT_STORAGE_URI") or "").strip()
    redis_url = (env.get("REDIS_URL") or "").strip()
    name = "RATELIMIT_STORAGE_URI" if explicit else "REDIS_URL"
    uri = explicit or redis_url or "memory://"
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme not in RATELIMIT_SCHEMES:
        raise ConfigError(
            f"{name} must be a storage URL such as redis://host:6379/0 (rate limits are counted "
            "there); it has no scheme Flask-Limiter knows."
        )
    if production and scheme == "memory":
        workers = web_concurrency(env)
        if workers > 1:
            raise ConfigError(
                f"RATELIMIT_STORAGE_URI is memory:// but {workers} gunicorn workers serve "
                "(WEB_CONCURRENCY, default 2): each would count rate limits on its own, allowing "
                f"{workers} times every limit. Set REDIS_URL (or RATELIMIT_STORAGE_URI="
                "redis://...) so all workers count in one place, or WEB_CONCURRENCY=1."
            )
    return uri


PLACEHOLDER_WORDS = (
    "changeme",
    "changethis",
    "replaceme",
    "secret",
    "password",
    "placeholder",
    "example",
    "insecure",
    "default",
)
MIN_DISTINCT_CHARACTERS = 8
MIN_DISTINCT_KEY_BYTES = 8
HOW_TO_MAKE_ONE = (
    ' Set it to a random value, e.g. the output of python -c "import secrets; '
    'print(secrets.token_urlsafe(48))" (changing it signs everyone out).'
)


def _guessable_secret_key(key: str) -> str | None:
    """Why a production SECRET_KEY is too easy to guess, or None. Never quotes the key."""
    letters = re.sub(r"[^a-z0-9]", "", key.lower())
    if any(word in letters for word in PLACEHOLDER_WORDS):
        return "looks like a placeholder (a word such as 'changeme', 'secret' or 'password')"
    for period in range(1, len(key) // 2 + 1):
        if all(key[i] == key[i - period] for i in range(period, len(key))):
            return "is one character or a short pattern repeated"
    if len(set(key)) < MIN_DISTINCT_CHARACTERS:
        return f"uses fewer than {MIN_DISTINCT_CHARACTERS} different characters"
    return None


def _weak_encryption_keys(text: str) -> None:
    """Refuse a key ring entry whose 32 bytes are not random (all zero, one byte repeated)."""
    try:
        ring = KeyRing.parse(text)
    except KeyRingError as err:
        raise ConfigError(f"PESATAB_ENCRYPTION_KEYS: {err}") from None
    for kid, entry in zip(ring.kids, text.split(","), strict=True):
        encoded = entry.partition(":")[2].strip().rstrip("=")
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        if len(set(key)) < MIN_DISTINCT_KEY_BYTES:
            raise ConfigError(
                f"PESATAB_ENCRYPTION_KEYS: key '{kid}' is not random (its bytes take fewer than "
                f"{MIN_DISTINCT_KEY_BYTES} different values, like an all-zero key), so anyone "
                "could open what it seals. Make one with `flask keys generate`, put it first, "
                "then re-seal with `flask keys rotate` (see README, Running in production)."
            )


def _require_https(name: str, value: str, why: str) -> None:
    try:
        parts = urlsplit(value)
        scheme, host = parts.scheme.lower(), parts.hostname
    except ValueError:
        scheme, host = "", None
    if scheme != "https" or not host:
        found = f"it starts with {scheme}://" if scheme else "it is not a URL"
        raise ConfigError(
            f"{name} must be an https:// address in production ({why}); {found}. "
            f"Set {name} to its https:// address."
        )


def _require_production_settings(env: Mapping[str, str]) -> None:
    missing = [
        name
        for name in ("SECRET_KEY", "DATABASE_URL", "PESATAB_ENCRYPTION_KEYS")
        if not (env.get(name) or "").strip()
    ]
    if missing:
        raise ConfigError(
            "PesaTab will not start in production without "
            + ", ".join(missing)
            + ". Set them in the environment (see README, Configuration)."
        )
    secret_key = env["SECRET_KEY"].strip()
    if len(secret_key) < 32:
        raise ConfigError(
            "SECRET_KEY must be at least 32 characters in production." + HOW_TO_MAKE_ONE
        )
    weakness = _guessable_secret_key(secret_key)
    if weakness:
        raise ConfigError(f"SECRET_KEY {weakness}, so it is easy to guess." + HOW_TO_MAKE_ONE)
    _weak_encryption_keys(env["PESATAB_ENCRYPTION_KEYS"])
    # Flask's own reading of FLASK_DEBUG (flask.helpers.get_debug_flag); `flask run --debug`
    # sets it too.
    debug = env.get("FLASK_DEBUG") or ""
    if debug and debug.lower() not in {"0", "false", "no"}:
        raise ConfigError(
            "FLASK_DEBUG is on: in production it would serve Werkzeug's debugger, a Python "
            "console at /console, to anyone who reaches the app. Unset FLASK_DEBUG (or set it "
            "to 0)."
        )
    public = (env.get("PUBLIC_BASE_URL") or "").strip()
    if not public:
        raise ConfigError(
            "PUBLIC_BASE_URL must be set in production: the https:// address Safaricom sends "
            "payment callbacks to, like https://pay.example.co.ke."
        )
    _require_https("PUBLIC_BASE_URL", public, "Safaricom sends payment callbacks to it")
    daraja = (env.get("DARAJA_BASE_URL") or "").strip()
    if daraja:
        _require_https("DARAJA_BASE_URL", daraja, "M-Pesa credentials and tokens are sent to it")

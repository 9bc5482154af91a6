"""The shared extension objects, bound to an app in `create_app`."""

import sqlite3
import time

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool

# Stable constraint names so Alembic can alter them (and SQLite batch mode can rebuild tables).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


class _Limiter(Limiter):
    """Flask-Limiter, except that a request one of its request filters lets through costs
    nothing more. Flask-Limiter asks the filters only after resolving the endpoint's limits,
    and then still evaluates meta limits and prepares rate-limit headers: ~8% of a waiting
    screen's 204 and ~4% of a callback (issue 16). With no META_LIMITS configured (none are:
    app/config.py) a filtered request had no limit to check either way."""

    def _check_request_limit(self, callable_name=None, in_middleware=True) -> None:
        if any(request_filter() for request_filter in self._request_filters):
            return
        super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)


limiter = _Limiter(key_func=get_remote_address)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite (local runs and the default test suite): WAL so readers never block the writer,
    a busy timeout so concurrent writers wait instead of failing, and enforced foreign keys."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


# A connection back from the pool is pinged (SELECT 1) only if it sat unused this long: one used
# a moment ago is alive, and the hot paths (a callback, a waiting screen's poll) check a
# connection out several hundred times a second, where pool_pre_ping's round trip on every
# checkout was ~10% of their cost. One that fails its ping is replaced before anyone uses it (the
# pool retries the checkout); a server restart inside the window costs each worker one failed
# statement, after which SQLAlchemy replaces every connection of the pool.
IDLE_PING_SECONDS = 1.0
_CHECKED_IN = "pesatab_checked_in"


@event.listens_for(Pool, "checkin")
def _note_checkin(_dbapi_connection, record) -> None:
    if record is not None:
        record.info[_CHECKED_IN] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    """pool_pre_ping, for connections idle longer than IDLE_PING_SECONDS (SQLite: never)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        return
    since = record.info.get(_CHECKED_IN)
    if since is not None and time.monotonic() - since < IDLE_PING_SECONDS:
        return
    try:
        # As SQLAlchemy's own ping does on psycopg: in autocommit, so no transaction is begun.
        was_autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            dbapi_connection.execute("SELECT 1")
        finally:
            dbapi_connection.autocommit = was_autocommit
    except Exception as err:  # any failure: this connection is not to be used
        raise exc.DisconnectionError() from err

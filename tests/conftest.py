"""Fixtures every test module shares: the app on a real database, clients, actors.

The suite runs on SQLite by default. With TEST_DATABASE_URL set (PostgreSQL in CI) it runs
there instead. The schema is built once per session; after each test every table is emptied,
so tests are isolated and committed data is visible to live servers in other threads.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import text

from app import create_app
from app.crypto import generate_key
from app.extensions import db, limiter
from app.payments.applier import EXTENSION as APPLIER
from app.simulator import INSTANT_TIMING, LiveServer, SimulatorState
from app.simulator.testing import CallbackReceiver
from tests.factories import Factory

TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"


def _database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return _database_url(tmp_path_factory)


@pytest.fixture(scope="session")
def test_config(database_url, tmp_path_factory) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Cheap hashing keeps the suite fast; production uses werkzeug's default scrypt cost.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        "RATELIMIT_STORAGE_URI": "memory://",
        "SCHEDULER_ENABLED": False,
        "SERVER_NAME": None,
        "PESATAB_ENCRYPTION_KEYS": generate_key("ktest"),
        "DARAJA_SIMULATOR": True,
        # The mounted simulator's control secret (else made into the repo's instance/).
        "DARAJA_SIM_SECRET": "test-simulator-control-secret-0123456789",
        "DARAJA_READ_TIMEOUT": 5.0,
        # Applied before the hook answers, so a test reads the outcome as soon as the answer is
        # in; production's default (background) is tested where a test asks for it.
        "CALLBACK_APPLY": "inline",
    }


@pytest.fixture(scope="session")
def _schema(test_config):
    """Build the schema once (tests only; the app itself gets its schema from migrations)."""
    app = create_app(test_config)
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


_emptying: dict[str, str] = {}


def _empty_all_tables() -> None:
    """Delete every row, children first, and start the ids at 1 again.

    On PostgreSQL one DELETE per table plus a RESTART per sequence, sent as one statement, is
    about ten times faster than TRUNCATE ... RESTART IDENTITY on tables this small (TRUNCATE
    rewrites every table and takes exclusive locks): ~9 ms a test instead of ~90 ms."""
    dialect = db.engine.dialect.name
    if dialect not in _emptying:
        tables = list(reversed(db.metadata.sorted_tables))
        statements = [f'DELETE FROM "{table.name}"' for table in tables]  # noqa: S608 (our tables)
        if dialect == "postgresql":
            sequences = db.session.scalars(
                text(
                    "SELECT pg_get_serial_sequence(quote_ident(table_name), column_name) "
                    "FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'"
                )
            ).all()
            statements += [f"ALTER SEQUENCE {name} RESTART" for name in sequences]
        _emptying[dialect] = "; ".join(statements)
    if dialect == "postgresql":
        db.session.execute(text(_emptying[dialect]))
    else:  # SQLite runs one statement at a time; a rowid table starts again after max(id)
        for statement in _emptying[dialect].split("; "):
            db.session.execute(text(statement))
    db.session.commit()


@pytest.fixture(scope="session")
def _shared_app(_schema, test_config):
    """One app (and so one engine and one connection pool) for every test that can share it.

    `create_app` builds the URL map anew each time (~17 ms); once per session instead of once
    per test. After each test its config and extensions are put back as they were (a test may
    set a setting or swap the key ring), the tables are emptied and the simulator restarted."""
    state = SimulatorState(**INSTANT_TIMING)
    app = create_app({**test_config, "DARAJA_SIM_STATE": state})
    app.test_client_class = Client
    yield app, state, dict(app.config), dict(app.extensions)
    state.close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def sim_state(_shared_app):
    """The mounted simulator's state: instant timing, so tests wait on events, not clocks."""
    state = _shared_app[1]
    state.restart()
    yield state
    state.close()


@pytest.fixture
def app(request, _schema, test_config, sim_state, _shared_app):
    """The app. Shared across tests, unless the test brings its own simulator state (a module
    overriding `sim_state`, e.g. with a fake clock) or is marked `fresh_app` (it adds routes,
    which Flask allows only before an app's first request)."""
    shared, state, config, extensions = _shared_app
    fresh = sim_state is not state or request.node.get_closest_marker("fresh_app") is not None
    app = create_app({**test_config, "DARAJA_SIM_STATE": sim_state}) if fresh else shared
    with app.app_context():
        yield app
        applier = app.extensions.get(APPLIER)
        if applier is not None:  # finish what it holds before the tables are emptied
            applier.stop(timeout=5)
        sim_state.close()
        db.session.rollback()
        _empty_all_tables()
        db.session.remove()
        if fresh:
            db.engine.dispose()
    if not fresh:
        app.config.clear()
        app.config.update(config)
        app.extensions.clear()
        app.extensions.update(extensions)
        app.test_client_class = Client
    limiter.reset()


@pytest.fixture(scope="module")
def receiver():
    """A live server on 127.0.0.1 that keeps every callback POSTed to it (playing PesaTab)."""
    with CallbackReceiver() as receiver:
        yield receiver


@pytest.fixture
def live(app):
    """The app served over real HTTP on 127.0.0.1: Daraja (the mounted simulator) calls back
    to it as Safaricom would."""
    with LiveServer(app) as server:
        app.config["PUBLIC_BASE_URL"] = server.url
        yield server


class Client(FlaskClient):
    """A test client that sends a valid CSRF token on unsafe requests unless told `csrf=False`."""

    def open(self, *args, csrf: bool = True, **kwargs):
        method = (kwargs.get("method") or "GET").upper()
        if csrf and method not in ("GET", "HEAD", "OPTIONS"):
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("X-CSRFToken", self.csrf_token())
            kwargs["headers"] = headers
        # Each request gets its own app context (its own `g` and database session), as in
        # production, even though the test itself holds one open.
        with self.application.app_context():
            return super().open(*args, **kwargs)

    def csrf_token(self) -> str:
        """The token Flask-WTF would put in this client's forms."""
        with self.session_transaction() as session:
            fresh = hashlib.sha1(os.urandom(64)).hexdigest()  # noqa: S324
            raw = session.setdefault("csrf_token", fresh)
        return URLSafeTimedSerializer(self.application.secret_key, salt="wtf-csrf-token").dumps(raw)

    def login(self, user, password: str = Factory.PASSWORD, **extra):
        return self.post("/login", data={"email": user.email, "password": password, **extra})


@pytest.fixture
def client(app) -> Client:
    app.test_client_class = Client
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def factory(app) -> Factory:
    return Factory(app)


@pytest.fixture
def bar(factory):
    return factory.bar("Kwa Mama Pub")


@pytest.fixture
def owner(factory, bar):
    return factory.user(bar, "owner", name="Wanjiru Owner")


@pytest.fixture
def manager(factory, bar):
    return factory.user(bar, "manager", name="Otieno Manager")


@pytest.fixture
def cashier(factory, bar):
    return factory.user(bar, "cashier", name="Akinyi Cashier")


@pytest.fixture
def outsider(factory):
    """The owner of another bar, who must never see ours."""
    other = factory.bar("Other Side Lounge")
    return factory.user(other, "owner", name="Kamau Outsider")


def login_as(app, user) -> Client:
    """A fresh signed-in client for `user` (several people can be signed in at once)."""
    app.test_client_class = Client
    c = app.test_client()
    response = c.login(user)
    assert response.status_code == 302, response.get_data(as_text=True)
    return c

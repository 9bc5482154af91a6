"""/healthz and /readyz: what a load balancer or an orchestrator asks before sending traffic.

The suite's database is built with create_all and has no alembic_version row, so tests that
expect "ready" stamp it (the `stamped` fixture); one test runs the real migrations instead.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app
from app.crypto import KeyRing, generate_key
from app.extensions import db
from app.health import checks
from app.models import JobStatus, utcnow
from tests.test_migrations import empty_database

UNREACHABLE = "postgresql+psycopg://pesatab:hunter2secret@127.0.0.1:1/pesatab"


def stamp(revision: str | None) -> None:
    """Record `revision` as the database's migration, the way `flask db stamp` would."""
    db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.session.execute(
        text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    )
    if revision:
        db.session.execute(
            text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": revision}
        )
    db.session.commit()


def head() -> str:
    (revision,) = checks.latest_revisions(checks.migrations_directory())
    return revision


def older_revision() -> str:
    return ScriptDirectory(checks.migrations_directory()).get_revision(head()).down_revision


@pytest.fixture
def stamped(app):
    stamp(head())
    yield
    db.session.rollback()
    db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.session.commit()


@pytest.fixture
def unreachable_app(test_config):
    app = create_app(
        {**test_config, "SQLALCHEMY_DATABASE_URI": UNREACHABLE, "SCHEDULER_ENABLED": True}
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def readyz(client):
    response = client.get("/readyz")
    return response.status_code, response.get_json()


def test_it_answers_healthz_without_a_database(unreachable_app):
    response = unreachable_app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok" and isinstance(response.get_json()["pid"], int)


def test_it_is_ready_with_a_migrated_database(client, stamped):
    status, body = readyz(client)
    assert (status, body["status"], body["failing"]) == (200, "ready", [])
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["schema"] == {"status": "ok"}
    assert body["checks"]["scheduler"]["status"] == "skipped"  # the suite runs no scheduler
    assert body["checks"]["keys"] == {"status": "ok", "reason": "no stored credentials yet"}


def test_it_names_the_database_when_it_cannot_be_reached_and_leaks_nothing(unreachable_app):
    response = unreachable_app.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 503 and body["status"] == "not_ready"
    assert body["failing"] == ["database"]
    assert body["checks"]["database"] == {"status": "failing", "reason": "cannot be reached"}
    assert {body["checks"][part]["status"] for part in ("schema", "scheduler", "keys")} == {
        "skipped"
    }
    raw = response.get_data(as_text=True)
    assert "hunter2secret" not in raw and "127.0.0.1" not in raw and "psycopg" not in raw


def test_it_names_the_schema_when_no_migration_was_applied(client):
    status, body = readyz(client)  # create_all: tables, but no alembic_version
    assert (status, body["failing"]) == (503, ["schema"])
    assert (
        body["checks"]["schema"]["reason"] == "no migration has been applied: run flask db upgrade"
    )


def test_it_names_the_schema_when_the_database_is_behind(client, stamped):
    stamp(older_revision())
    status, body = readyz(client)
    assert (status, body["failing"]) == (503, ["schema"])
    reason = body["checks"]["schema"]["reason"]
    assert (
        reason
        == f"the database is at {older_revision()}, the code needs {head()}: run flask db upgrade"
    )


def test_it_names_the_schema_when_a_newer_release_migrated_it(client, stamped):
    stamp("f00dfeed1234")
    status, body = readyz(client)
    assert (status, body["failing"]) == (503, ["schema"])
    assert "which this code does not know" in body["checks"]["schema"]["reason"]


def set_heartbeat(seconds_ago: float | None) -> None:
    row = db.session.get(JobStatus, "recover") or JobStatus(
        name="recover", runs=1, failures=0, last_items=0
    )
    row.last_run_at = None if seconds_ago is None else utcnow() - timedelta(seconds=seconds_ago)
    db.session.add(row)
    db.session.commit()


@pytest.mark.parametrize(
    ("seconds_ago", "reason"),
    [
        (600, "the recover job last ran 600 s ago (limit 180 s)"),
        (None, "the recover job has never run"),
    ],
)
def test_it_names_the_scheduler_when_the_heartbeat_is_stale(
    app, client, stamped, seconds_ago, reason
):
    app.config["READYZ_REQUIRE_SCHEDULER"] = True
    set_heartbeat(seconds_ago)
    status, body = readyz(client)
    assert (status, body["failing"]) == (503, ["scheduler"])
    assert body["checks"]["scheduler"]["reason"] == reason


def test_any_workers_fresh_heartbeat_counts(app, client, stamped):
    app.config["SCHEDULER_ENABLED"] = True  # expected here, though the suite never starts it
    set_heartbeat(20)
    status, body = readyz(client)
    assert (status, body["checks"]["scheduler"]) == (200, {"status": "ok"})


def test_a_scheduler_that_just_started_here_gets_time_for_its_first_tick(app, client, stamped):
    app.config["READYZ_REQUIRE_SCHEDULER"] = True
    set_heartbeat(None)
    app.extensions["pesatab_scheduler_started_at"] = time.monotonic() - 5
    status, body = readyz(client)
    assert (
        status == 200 and body["checks"]["scheduler"]["reason"] == "the scheduler has just started"
    )


def test_the_scheduler_is_not_required_when_it_is_off_everywhere(app, client, stamped):
    app.config.update(SCHEDULER_ENABLED=True, READYZ_REQUIRE_SCHEDULER=False)
    set_heartbeat(None)
    assert readyz(client)[0] == 200


def test_it_names_the_keys_when_they_open_no_stored_credential(app, client, stamped, factory, bar):
    factory.live_credentials(bar)
    assert readyz(client)[1]["checks"]["keys"] == {"status": "ok"}
    app.extensions["pesatab_keyring"] = KeyRing.parse(generate_key("kother"))
    status, body = readyz(client)
    assert (status, body["failing"]) == (503, ["keys"])
    reason = body["checks"]["keys"]["reason"]
    assert reason == "the configured encryption keys open none of the stored M-Pesa credentials"


def test_one_bars_unreadable_credentials_do_not_take_every_worker_out(
    app, client, stamped, factory, bar
):
    old_ring = app.extensions["pesatab_keyring"]
    factory.live_credentials(bar)
    app.extensions["pesatab_keyring"] = KeyRing.parse(
        generate_key("knew")
    )  # rotated; old key dropped
    factory.live_credentials(factory.bar("Rotated Lounge"))
    assert readyz(client)[0] == 200
    app.extensions["pesatab_keyring"] = old_ring


def test_a_check_that_hangs_answers_not_ready_on_time(app, client, stamped, monkeypatch):
    app.config["READYZ_TIMEOUT_SECONDS"] = 0.3
    monkeypatch.setitem(checks.CHECKS, "keys", lambda: time.sleep(3))
    started = time.monotonic()
    status, body = readyz(client)
    assert time.monotonic() - started < 2
    assert (status, body["failing"]) == (503, ["keys"])
    assert body["checks"]["keys"]["reason"] == "no answer within 0.3 s"


def test_a_check_that_raises_is_named_without_its_message(app, client, stamped, monkeypatch):
    def broken():
        raise RuntimeError("postgresql://admin:s3cret@db.internal/pesatab is sulking")

    monkeypatch.setitem(checks.CHECKS, "scheduler", broken)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["failing"] == ["scheduler"]
    assert "s3cret" not in response.get_data(as_text=True)


def test_probes_need_no_login_and_are_never_cached(client, stamped):
    for path in ("/healthz", "/readyz"):
        response = client.get(path)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_a_really_migrated_database_is_ready(tmp_path, test_config):
    with empty_database(tmp_path) as url:
        app = create_app({**test_config, "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            upgrade()
            response = app.test_client().get("/readyz")
            assert response.status_code == 200, response.get_json()
            db.session.remove()
            db.engine.dispose()

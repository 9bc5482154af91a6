"""The session cookie: verified once, remembered byte for byte (app/web/sessions.py, issue 16).

What Flask's signed cookie refused before is still refused: a tampered cookie, one older than
the session lifetime, one signed under keys no longer in use. And no request shares a session
object with another."""

from __future__ import annotations

import time

import pytest

from app.web import sessions
from app.web.sessions import CookieSessionInterface
from tests.conftest import login_as


@pytest.fixture
def interface(app):
    assert isinstance(app.session_interface, CookieSessionInterface)
    return app.session_interface


def _cookie(client, app) -> str:
    found = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    assert found is not None
    return found.value


def _open(app, interface, cookie: str | None):
    headers = {"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={cookie}"} if cookie else {}
    with app.test_request_context("/", headers=headers) as ctx:
        return interface.open_session(app, ctx.request)


def test_a_verified_cookie_is_not_verified_again(app, cashier, interface, monkeypatch):
    client = login_as(app, cashier)
    cookie = _cookie(client, app)
    first = _open(app, interface, cookie)
    assert first.get("_user_id")
    checks = []
    serializer = interface.get_signing_serializer(app)
    real = serializer.loads
    monkeypatch.setattr(serializer, "loads", lambda *a, **k: checks.append(a) or real(*a, **k))
    again = _open(app, interface, cookie)
    assert dict(again) == dict(first) and checks == []
    assert again is not first  # each request gets its own session object


def test_a_signed_in_person_stays_signed_in_across_requests(app, cashier):
    client = login_as(app, cashier)
    for _ in range(3):
        assert client.get("/tabs/").status_code == 200


def test_a_tampered_cookie_is_an_empty_session(app, cashier, interface):
    client = login_as(app, cashier)
    cookie = _cookie(client, app)
    assert _open(app, interface, cookie).get("_user_id")  # remembered now
    payload, _, signature = cookie.rpartition(".")
    forged = f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    assert dict(_open(app, interface, forged)) == {}


def test_a_remembered_cookie_past_the_lifetime_signs_out(app, cashier, interface, monkeypatch):
    client = login_as(app, cashier)
    cookie = _cookie(client, app)
    assert _open(app, interface, cookie).get("_user_id")
    lifetime = app.permanent_session_lifetime.total_seconds()
    now = time.time()
    monkeypatch.setattr(sessions.time, "time", lambda: now + lifetime + 5)
    assert dict(_open(app, interface, cookie)) == {}
    monkeypatch.setattr(sessions.time, "time", lambda: now - 3600)  # signed "in the future"
    assert dict(_open(app, interface, cookie)) == {}


def test_a_new_secret_key_does_not_take_cookies_verified_under_the_old_one(
    app, cashier, interface, monkeypatch
):
    client = login_as(app, cashier)
    cookie = _cookie(client, app)
    assert _open(app, interface, cookie).get("_user_id")
    old_key = app.secret_key
    monkeypatch.setattr(app, "secret_key", "another key entirely, 0123456789abcdef")
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [])
    assert dict(_open(app, interface, cookie)) == {}
    # The old key kept as a fallback: Flask accepts the cookie, and so do we.
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [old_key])
    assert _open(app, interface, cookie).get("_user_id")


def test_a_session_holding_a_list_is_not_remembered_or_shared(app, interface):
    client = app.test_client()
    with client.session_transaction() as stored:
        stored["_flashes"] = [("info", "first")]
    cookie = _cookie(client, app)
    one = _open(app, interface, cookie)
    one["_flashes"].append(("info", "changed in one request"))
    two = _open(app, interface, cookie)
    assert [tuple(flashed) for flashed in two["_flashes"]] == [("info", "first")]
    assert (interface._keys(app), cookie) not in interface._verified


def test_memory_is_bounded(app, cashier, interface, monkeypatch):
    monkeypatch.setattr(sessions, "REMEMBERED", 3)
    interface._verified.clear()
    cookies = []
    for _ in range(5):
        client = login_as(app, cashier)
        cookies.append(_cookie(client, app))
        _open(app, interface, cookies[-1])
        assert len(interface._verified) <= 3
    assert _open(app, interface, cookies[0]).get("_user_id")  # forgotten is verified again

"""A waiting screen's 204 poll checks the session in its own query (issue 16): the same rules as
Flask-Login's user loader (one function, `security.signed_in_where`, for both), so a signed-out,
deactivated, stale or other-bar session gets what it got before the fast path: 401, 404, never
a 204. And a 204 does no per-request work it does not need (no limiter check, no session
re-save)."""

from __future__ import annotations

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import update

from app.extensions import db, limiter
from app.models import Payment, utcnow
from app.web import security
from tests.conftest import login_as
from tests.test_live_status import HX, counted_queries, first_poll


@pytest.fixture
def waiting(factory, bar):
    tab = factory.tab(bar, lines=(("Tusker", 2, 250),))
    return factory.payment(bar, tab=tab, amount=500, sent_at=utcnow())


@pytest.fixture
def screen(app, cashier, waiting):
    client = login_as(app, cashier)
    _, url = first_poll(client, waiting)
    assert client.get(url, headers=HX).status_code == 204
    return client, url


def test_the_loader_and_the_poll_filter_by_the_same_rules():
    """Both queries are built from signed_in_where: change the rules and both change."""
    from app.payments import live

    rules = [str(c) for c in security.signed_in_where()]
    loader = str(security._user_with_bar())
    poll = str(live._session_row_query(("cashier",)))
    for rule in rules:
        assert rule in loader and rule in poll, rule
    assert "active IS" in " ".join(rules) and "session_version" in " ".join(rules)


def test_a_204_is_one_statement_in_autocommit_with_no_transaction_around_it(app, screen):
    """No BEGIN before the poll's SELECT and no ROLLBACK after it: two round trips of three."""
    client, url = screen
    seen = []

    def note(conn, _cursor, statement, *_args):
        seen.append((statement, conn.get_execution_options().get("isolation_level")))

    begun = []

    def began(*_args):
        begun.append(True)

    sqlalchemy_event.listen(db.engine, "before_cursor_execute", note)
    sqlalchemy_event.listen(db.session, "after_begin", began)
    try:
        assert client.get(url, headers=HX).status_code == 204
    finally:
        sqlalchemy_event.remove(db.engine, "before_cursor_execute", note)
        sqlalchemy_event.remove(db.session, "after_begin", began)
    assert [level for _, level in seen] == ["AUTOCOMMIT"]
    assert begun == []  # the request's session never began a transaction
    # A changed version goes on through the view, whose session works as before.
    db.session.execute(
        update(Payment).where(Payment.id == int(url.split("/")[2])).values(message="moved")
    )
    db.session.commit()
    assert client.get(url, headers=HX).status_code == 200


def test_a_204_is_one_statement_and_no_session_or_limiter_work(app, screen, monkeypatch):
    client, url = screen
    resolved = []
    real = limiter.limit_manager.resolve_limits
    monkeypatch.setattr(
        limiter.limit_manager,
        "resolve_limits",
        lambda *a, **k: resolved.append(a[1]) or real(*a, **k),
    )
    with counted_queries() as statements:
        response = client.get(url, headers=HX)
    assert response.status_code == 204 and response.data == b""
    assert len(statements) == 1 and "session_version" in statements[0]
    assert "Set-Cookie" not in response.headers  # the session is not re-saved
    assert "payments.status" not in resolved  # the limiter stopped at its request filter
    client.get(url)  # the page (no htmx): the limiter looks at it as before
    assert "payments.status" in resolved


def test_a_signed_out_session_still_gets_401(app, screen):
    client, url = screen
    client._cookies.clear()  # the browser no longer holds the session
    response = client.get(url, headers=HX)
    assert response.status_code == 401 and response.data == b""


def test_a_deactivated_person_is_signed_out_not_answered_204(app, screen, cashier):
    client, url = screen
    db.session.get(type(cashier), cashier.id).active = False
    db.session.commit()
    assert client.get(url, headers=HX).status_code == 401


def test_a_stale_session_version_is_signed_out(app, screen, cashier):
    """Sign out everywhere (a password change, an owner's reset) moves the session version."""
    client, url = screen
    db.session.get(type(cashier), cashier.id).session_version += 1
    db.session.commit()
    assert client.get(url, headers=HX).status_code == 401


def test_another_bars_session_gets_404_not_204(app, waiting, outsider, factory, screen):
    _, url = screen
    other_cashier = factory.user(outsider.bar, "cashier", name="Other Cashier")
    for person in (outsider, other_cashier):
        assert login_as(app, person).get(url, headers=HX).status_code == 404


def test_a_changed_payment_gets_the_fragment_from_the_row_already_read(app, screen, waiting):
    client, url = screen
    payment = db.session.get(Payment, waiting.id)
    payment.message = "Still waiting for the customer"
    payment.updated_at = utcnow()
    db.session.commit()
    with counted_queries() as statements:
        response = client.get(url, headers=HX)
    assert response.status_code == 200 and f'id="payment-{waiting.id}"' in response.text
    assert first_poll(client, waiting)[1] != url  # the new version
    # The session-checked row, the person (Flask-Login), the payment and tab: not the row twice.
    assert sum("session_version" in s and "payment.status" in s for s in statements) == 1
    assert sum("payment.bar_id = " in s and "session_version" not in s for s in statements) <= 1


def test_a_changed_address_or_browser_goes_through_flask_login(app, screen):
    """Session protection: an identifier that no longer matches is Flask-Login's to judge."""
    client, url = screen
    with app.test_request_context(url, headers={**HX, "User-Agent": "another browser"}):
        from flask import session

        session["_user_id"], session["_id"] = "1:1", "not this browser"
        assert security.session_ident_as_loaded() is None
        session["_id"] = app.login_manager._session_identifier_generator()
        assert security.session_ident_as_loaded() == (1, 1)
        session["_user_id"] = "junk"
        assert security.session_ident_as_loaded() is None

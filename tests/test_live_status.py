"""The live status poll: the fragment carries the version it shows, and a poll of an unchanged
payment is answered 204 No Content (htmx swaps nothing) after one small query; any change the
screen would show answers the full fragment. Another bar's payment stays a 404."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, inspect

from app.extensions import db
from app.models import TabLine, utcnow
from app.payments import states
from tests.conftest import login_as

HX = {"HX-Request": "true"}


@contextmanager
def counted_queries():
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def poll_url(html: str) -> str:
    found = re.search(r'hx-get="([^"]+)"', html)
    assert found, html
    return found.group(1).replace("&amp;", "&")


@pytest.fixture
def tab(factory, bar):
    return factory.tab(bar, lines=(("Tusker", 2, 250),))


@pytest.fixture
def waiting(factory, bar, tab):
    return factory.payment(bar, tab=tab, amount=500, sent_at=utcnow() - timedelta(seconds=12))


@pytest.fixture
def counter(app, cashier):
    return login_as(app, cashier)


def first_poll(counter, payment) -> tuple[str, str]:
    response = counter.get(f"/payments/{payment.id}/status", headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    return html, poll_url(html)


def test_the_fragment_polls_its_own_version_and_the_clock_is_counted_on_the_screen(
    counter, waiting, tab
):
    html, url = first_poll(counter, waiting)
    assert re.fullmatch(rf"/payments/{waiting.id}/status\?v=[0-9a-f]{{16}}", url)
    assert 'hx-trigger="every 2s, visibilitychange from:document"' in html and "data-poll" in html
    assert re.search(r'data-elapsed="1[2-9]"', html)  # app.js counts on from the server's figure
    assert f'id="tab-summary-{tab.id}"' in html and "hx-swap-oob" in html  # totals out of band
    assert 'id="pay-panel"' not in html  # not while in flight: the cashier may be typing


def test_an_unchanged_payment_answers_204_after_one_small_query(counter, waiting):
    _, url = first_poll(counter, waiting)
    with counted_queries() as statements:
        response = counter.get(url, headers=HX)
    assert response.status_code == 204 and response.data == b""
    # One round trip: the payment's version and its tab's totals, joined to the session's
    # person (the user loader's rules, their bar): no ORM load of the user first.
    assert len(statements) == 1, "\n".join(" ".join(q.split())[:160] for q in statements)
    assert "payment.bar_id" in statements[0] and "session_version" in statements[0]
    assert counter.get(url, headers=HX).status_code == 204  # and again: polling goes on


def test_the_full_fragment_in_flight_takes_three_queries(counter, waiting):
    url = f"/payments/{waiting.id}/status"
    with counted_queries() as statements:
        response = counter.get(url, headers=HX)
    assert response.status_code == 200
    assert len(statements) == 3, "\n".join(" ".join(q.split())[:160] for q in statements)


def test_a_callback_answers_the_final_fragment_with_the_pay_panel_and_close(counter, waiting, tab):
    _, url = first_poll(counter, waiting)
    assert states.move(waiting, "paid", receipt="TST1234567", paid_amount=500)
    db.session.commit()
    response = counter.get(url, headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    status_div = html.split("</div>", 1)[0]
    assert "badge-paid" in status_div and "TST1234567" in status_div
    assert "hx-get" not in status_div and "hx-trigger" not in status_div  # polling stops
    assert f'id="tab-balance-{tab.id}">KES 0<' in html
    assert 'id="pay-panel"' in html and f'id="tab-close-{tab.id}"' in html
    assert "Close tab as settled" in html


def test_a_version_never_keeps_a_final_payment_from_being_shown(counter, factory, bar):
    paid = factory.payment(bar, status="paid", receipt="TST7654321")
    from app.payments.live import status_version

    same = status_version(
        paid.status, paid.updated_at, paid.message, paid.checkout_request_id, None, None
    )
    response = counter.get(f"/payments/{paid.id}/status?v={same}", headers=HX)
    assert response.status_code == 200 and "badge-paid" in response.get_data(as_text=True)


def test_a_line_added_to_the_tab_refreshes_the_totals(counter, waiting, tab):
    _, url = first_poll(counter, waiting)
    db.session.add(TabLine(tab_id=tab.id, description="Soda", quantity=1, unit_price=100))
    db.session.commit()
    response = counter.get(url, headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'id="tab-balance-{tab.id}">KES 600<' in html
    assert poll_url(html) != url  # the new version
    assert counter.get(poll_url(html), headers=HX).status_code == 204


def test_another_payment_of_the_tab_paid_refreshes_the_totals(counter, factory, bar, waiting, tab):
    other = factory.payment(bar, tab=tab, amount=200, phone="254110123456")
    _, url = first_poll(counter, waiting)
    assert states.move(other, "paid", receipt="TST1111111", paid_amount=200)
    db.session.commit()
    response = counter.get(url, headers=HX)
    assert response.status_code == 200
    assert f'id="tab-balance-{tab.id}">KES 300<' in response.get_data(as_text=True)


def test_a_new_message_while_unknown_is_shown(counter, factory, bar):
    payment = factory.payment(bar, status="unknown", message="M-Pesa has not answered yet.")
    _, url = first_poll(counter, payment)
    payment.message = "Still checking with M-Pesa."
    db.session.commit()  # updated_at moves with it
    response = counter.get(url, headers=HX)
    assert response.status_code == 200 and "Still checking with M-Pesa." in response.get_data(
        as_text=True
    )


def test_the_version_covers_the_message_even_if_updated_at_did_not_move(counter, factory, bar):
    from sqlalchemy import update

    from app.models import Payment

    payment = factory.payment(bar, status="unknown", message="First words.")
    _, url = first_poll(counter, payment)
    db.session.execute(
        update(Payment)
        .where(Payment.id == payment.id)
        .values(message="Other words.", updated_at=payment.updated_at)
    )
    db.session.commit()
    assert counter.get(url, headers=HX).status_code == 200


@pytest.mark.parametrize("version", ["", "nonsense", "0" * 16])
def test_a_missing_or_unknown_version_gets_the_fragment(counter, waiting, version):
    response = counter.get(f"/payments/{waiting.id}/status?v={version}", headers=HX)
    assert response.status_code == 200 and f'id="payment-{waiting.id}"' in response.get_data(
        as_text=True
    )


def test_another_bar_gets_404_with_or_without_the_version(app, counter, waiting, outsider, factory):
    _, url = first_poll(counter, waiting)
    other_cashier = factory.user(outsider.bar, "cashier", name="Other Cashier")
    for person in (outsider, other_cashier):
        stranger = login_as(app, person)
        assert stranger.get(url, headers=HX).status_code == 404
        assert stranger.get(f"/payments/{waiting.id}/status", headers=HX).status_code == 404
        assert stranger.get(url).status_code == 404


def test_the_page_itself_ignores_the_version(counter, waiting):
    _, url = first_poll(counter, waiting)
    response = counter.get(url)  # a browser opening the link: the whole page
    assert response.status_code == 200 and b"<html" in response.data


def test_a_signed_out_poll_sends_the_whole_page_to_sign_in(client, waiting):
    """Not a 204 (the screen would wait forever) and not a 302 (htmx would follow it and swap
    the sign-in form into the status box): 401 with HX-Redirect, back to the page after."""
    headers = {**HX, "HX-Current-URL": f"http://localhost/tabs/{waiting.tab_id}?x=1"}
    response = client.get(f"/payments/{waiting.id}/status?v=whatever", headers=headers)
    assert response.status_code == 401 and response.data == b""
    assert response.headers["HX-Redirect"] == f"/login?next=%2Ftabs%2F{waiting.tab_id}%3Fx%3D1"


def test_a_signed_out_poll_from_elsewhere_comes_back_to_its_own_path(client, waiting):
    headers = {**HX, "HX-Current-URL": "https://evil.example//x"}
    response = client.get(f"/payments/{waiting.id}/status?v=1", headers=headers)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == f"/login?next=%2Fpayments%2F{waiting.id}%2Fstatus"


def test_a_signed_out_page_goes_to_sign_in_and_comes_back(client, waiting):
    response = client.get(f"/payments/{waiting.id}/status?v=1")
    assert response.status_code == 302
    assert (
        response.headers["Location"] == f"/login?next=%2Fpayments%2F{waiting.id}%2Fstatus%3Fv%3D1"
    )


def test_the_signed_in_person_comes_with_their_bar(app, cashier):
    from app.web.security import load_user

    with app.test_request_context("/"):
        person = load_user(f"{cashier.id}:{cashier.session_version}")
        assert person is not None and "bar" not in inspect(person).unloaded


def test_the_tab_page_gives_its_first_poll_the_version_too(counter, waiting, tab):
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    fragment = page.split(f'id="payment-{waiting.id}"', 1)[1]
    assert counter.get(poll_url(fragment), headers=HX).status_code == 204


def test_the_pay_answer_gives_its_first_poll_the_version_too(
    counter, factory, bar, live, sim_state
):
    factory.live_credentials(bar)
    sim_state.set_faults(callback_lost=True)  # the payment stays in flight
    tab = factory.tab(bar, lines=(("Tusker", 2, 250),))
    answer = counter.post(
        f"/tabs/{tab.id}/pay", data={"phone": "0708 374 149", "amount": 500}, headers=HX
    )
    assert answer.status_code == 200
    url = poll_url(answer.get_data(as_text=True))
    assert "?v=" in url and counter.get(url, headers=HX).status_code == 204


def test_the_payments_own_page_gets_no_out_of_band_parts(counter, waiting, tab):
    """On a payment's own page there is no tab summary or pay panel to refresh: sending them
    out of band would be an htmx error in the console on every final answer."""
    from app.extensions import db

    waiting.status = "failed"
    db.session.commit()
    url = f"/payments/{waiting.id}/status"
    on_tab = counter.get(url, headers={**HX, "HX-Current-URL": f"http://x/tabs/{tab.id}"})
    assert "hx-swap-oob" in on_tab.get_data(as_text=True)
    own = counter.get(url, headers={**HX, "HX-Current-URL": f"http://x{url}"})
    assert own.status_code == 200 and "hx-swap-oob" not in own.get_data(as_text=True)

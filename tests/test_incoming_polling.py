"""The counter screen's list of money paid from the M-Pesa menu polls cheaply and stops when
idle: its poll URL carries the fingerprint of what it shows, an unchanged list is answered 204,
new money answers the list with its row, and after a quiet spell the list comes without its
polling trigger and with a "Check for new money" button whose request brings polling back.
Another bar's session never sees the money."""

from __future__ import annotations

import re

import pytest

from app.models import utcnow
from app.tabs import incoming
from tests.conftest import login_as

HX = {"HX-Request": "true"}
START = 1_800_000_000


class Clock:
    def __init__(self):
        self.seconds = START

    def __call__(self) -> int:
        return self.seconds


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(incoming, "now", clock)
    return clock


@pytest.fixture
def tab(factory, bar):
    return factory.tab(bar, "Meza 4", lines=(("Tusker", 2, 250),))


@pytest.fixture
def counter(app, cashier):
    return login_as(app, cashier)


def menu_money(factory, bar, receipt: str, amount: int = 300):
    return factory.payment(
        bar,
        status="paid",
        purpose="c2b",
        amount=amount,
        receipt=receipt,
        checkout_request_id=None,
        transaction_time=utcnow(),
    )


def section(html: str) -> str:
    found = re.search(r'<section class="card incoming" id="incoming"[^>]*>', html)
    assert found, html
    return found.group(0)


def poll_url(html: str) -> str:
    return re.search(r'hx-get="([^"]+)"', section(html)).group(1).replace("&amp;", "&")


def trigger(html: str) -> str:
    return re.search(r'hx-trigger="([^"]+)"', section(html)).group(1)


def button_url(html: str) -> str:
    found = re.search(r'<button[^>]*id="check-new-money"[^>]*hx-get="([^"]+)"', html)
    assert found, html
    return found.group(1).replace("&amp;", "&")


def test_an_unchanged_list_is_answered_204(counter, factory, bar, tab, clock):
    menu_money(factory, bar, "QKC1000001")
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    url = poll_url(page)
    assert "v=" in url and f"since={START}" in url and "every 5s" in trigger(page)
    clock.seconds += 30
    response = counter.get(url, headers=HX)
    assert response.status_code == 204 and response.get_data() == b""
    clock.seconds += 30
    assert counter.get(url, headers=HX).status_code == 204  # and again: polling goes on


def test_new_money_answers_the_list_with_its_row(counter, factory, bar, tab, clock):
    page = counter.get("/tabs/").get_data(as_text=True)
    url = poll_url(page)
    assert counter.get(url, headers=HX).status_code == 204
    money = menu_money(factory, bar, "QKC1000002", amount=750)
    clock.seconds += 5
    response = counter.get(url, headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'id="incoming-{money.id}"' in html and "KES 750" in html
    assert "every 5s" in trigger(html) and f"since={START + 5}" in poll_url(html)
    assert counter.get(poll_url(html), headers=HX).status_code == 204


def test_a_quiet_spell_stops_polling_and_the_button_brings_it_back(
    counter, factory, bar, tab, clock
):
    money = menu_money(factory, bar, "QKC1000003")
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    url = poll_url(page)
    clock.seconds += incoming.IDLE_SECONDS - 5
    assert counter.get(url, headers=HX).status_code == 204
    clock.seconds += 5
    response = counter.get(url, headers=HX)
    assert response.status_code == 200
    stopped = response.get_data(as_text=True)
    assert "every" not in trigger(stopped)  # no polling trigger: only coming back refreshes
    assert trigger(stopped) == "visibilitychange from:document"
    assert "Check for new money" in stopped and "stopped checking" in stopped
    assert f'id="incoming-{money.id}"' in stopped  # the money is still listed
    # Coming back to the page while nothing changed: 204, the stopped list stays.
    clock.seconds += 60
    assert counter.get(poll_url(stopped), headers=HX).status_code == 204
    again = counter.get(button_url(stopped), headers=HX)
    assert again.status_code == 200
    live = again.get_data(as_text=True)
    assert "every 5s" in trigger(live) and "Check for new money" not in live
    assert f"since={clock.seconds}" in poll_url(live)
    assert counter.get(poll_url(live), headers=HX).status_code == 204


def test_a_tap_on_the_screen_keeps_it_live(counter, factory, bar, tab, clock):
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    url = poll_url(page)
    clock.seconds += incoming.IDLE_SECONDS + 60
    assert counter.get(f"{url}&quiet=30", headers=HX).status_code == 204
    assert counter.get(f"{url}&quiet={incoming.IDLE_SECONDS}", headers=HX).status_code == 200


def test_new_money_restarts_a_stopped_list(counter, factory, bar, tab, clock):
    page = counter.get(f"/tabs/{tab.id}").get_data(as_text=True)
    clock.seconds += incoming.IDLE_SECONDS
    stopped = counter.get(poll_url(page), headers=HX).get_data(as_text=True)
    assert "Check for new money" in stopped
    money = menu_money(factory, bar, "QKC1000004")
    clock.seconds += 3600  # the phone comes back to the page an hour later
    response = counter.get(poll_url(stopped), headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'id="incoming-{money.id}"' in html and "every 5s" in trigger(html)


def test_another_bars_session_never_sees_the_money(app, factory, bar, tab, outsider, clock):
    money = menu_money(factory, bar, "QKC1000005", amount=980)
    ours = login_as(app, factory.user(bar, "cashier", name="Wanjiru")).get("/tabs/")
    assert "QKC1000005" in ours.get_data(as_text=True)
    theirs = login_as(app, outsider)
    page = theirs.get("/tabs/").get_data(as_text=True)
    assert "QKC1000005" not in page and f'id="incoming-{money.id}"' not in page
    # Our list's poll URL, fingerprint and all, asked by the other bar: their own (empty) list.
    response = theirs.get(poll_url(ours.get_data(as_text=True)), headers=HX)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "QKC1000005" not in html and "KES 980" not in html
    assert theirs.get(f"/tabs/incoming?tab={tab.id}", headers=HX).status_code == 404
    # More money for our bar is nothing new on their screen: their poll stays a 204.
    menu_money(factory, bar, "QKC1000006", amount=1200)
    assert theirs.get(poll_url(page), headers=HX).status_code == 204

"""On a real screen, the list of money paid from the M-Pesa menu stops polling after a quiet
spell, says so with a "Check for new money" button, and one tap brings the new money and the
polling back (the screen's clock and the server's are both moved on, not waited for)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.models import utcnow
from app.tabs import incoming
from tests import test_browser

browser, phone_screen = test_browser.browser, test_browser.phone_screen  # the same fixtures

pytestmark = pytest.mark.browser


def test_a_quiet_list_stops_and_one_tap_checks_again(
    phone_screen, live, factory, bar, cashier, monkeypatch
):
    page, errors = phone_screen
    server_clock = [1_800_000_000]
    monkeypatch.setattr(incoming, "now", lambda: server_clock[0])
    polls: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: polls.append((r.url, r.status)) if "/tabs/incoming" in r.url else None,
    )
    tab = factory.tab(bar, "Meza 2", lines=(("Soda", 1, 300),))
    page.goto(f"{live.url}/login")
    page.fill("#email", cashier.email)
    page.fill("#password", factory.PASSWORD)
    page.click("button[type=submit]")
    page.clock.install()
    page.goto(f"{live.url}/tabs/{tab.id}")
    section = page.locator("#incoming")
    assert "every 5s" in section.get_attribute("hx-trigger")

    # Ten quiet minutes pass on both clocks: the next poll brings the stopped list.
    server_clock[0] += incoming.IDLE_SECONDS + 5
    page.clock.fast_forward((incoming.IDLE_SECONDS + 5) * 1000)
    button = page.get_by_role("button", name="Check for new money")
    expect(button).to_be_visible(timeout=5_000)
    assert "every" not in section.get_attribute("hx-trigger")
    assert any("quiet=" in url and status == 200 for url, status in polls)

    money = factory.payment(
        bar, status="paid", purpose="c2b", amount=450, receipt="QKB7000001",
        checkout_request_id=None, transaction_time=utcnow(),
    )  # fmt: skip
    button.click()
    expect(page.locator(f"#incoming-{money.id}")).to_contain_text("KES 450", timeout=5_000)
    assert "every 5s" in page.locator("#incoming").get_attribute("hx-trigger")
    expect(page.get_by_role("button", name="Check for new money")).to_have_count(0)
    assert errors == []

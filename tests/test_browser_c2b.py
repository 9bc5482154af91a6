"""Money paid from the M-Pesa menu appears on the cashier's phone without a reload, and one tap
claims it to the tab (test-artifacts/browser/c2b-incoming.png)."""

from __future__ import annotations

import json

import pytest
import requests
from playwright.sync_api import expect

from app.payments import c2b
from tests import test_browser
from tests.test_browser import ARTIFACTS
from tests.test_c2b_confirmations import SAMPLE

browser, phone_screen = test_browser.browser, test_browser.phone_screen  # the same fixtures

pytestmark = pytest.mark.browser


def test_menu_money_arrives_live_and_is_claimed(phone_screen, live, factory, bar, cashier):
    page, errors = phone_screen
    factory.live_credentials(bar)
    secret = c2b.registration_for(bar).url_secret
    tab = factory.tab(bar, "Meza 9", lines=(("Nyama choma", 1, 800),))
    page.goto(f"{live.url}/login")
    page.fill("#email", cashier.email)
    page.fill("#password", factory.PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live.url}/tabs/{tab.id}")
    page.evaluate("window.__pesatabMarker = 'same page'")
    body = {**SAMPLE, "BillRefNumber": "WALKIN", "TransAmount": "800.00"}
    answer = requests.post(
        f"{live.url}/hooks/c2b/{secret}/confirmation", data=json.dumps(body), timeout=10,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert answer.json() == {"ResultCode": 0, "ResultDesc": "Success"}
    row = page.locator("[id^=incoming-]").first
    row.wait_for(timeout=12_000)  # the list polls every 5 s
    assert "JANE" in row.inner_text() and "KES 800" in row.inner_text()
    assert page.evaluate("window.__pesatabMarker") == "same page"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "c2b-incoming.png"), full_page=True)
    row.locator("button").click()
    expect(page.locator(f"#tab-balance-{tab.id}")).to_have_text("KES 0", timeout=5_000)
    assert page.locator("[id^=incoming-]").count() == 0
    assert errors == []

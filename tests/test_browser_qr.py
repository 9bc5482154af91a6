"""The tab page fetches the bill's QR after it is shown, and the printable bill carries it
(test-artifacts/browser/bill-qr.png), with no browser error (the CSP allows data: images)."""

from __future__ import annotations

import pytest

from tests import test_browser
from tests.test_browser import ARTIFACTS

browser, phone_screen = test_browser.browser, test_browser.phone_screen  # the same fixtures

pytestmark = pytest.mark.browser


def test_the_tab_page_and_the_bill_show_the_qr(phone_screen, live, factory, bar, cashier):
    page, errors = phone_screen
    factory.live_credentials(bar)
    tab = factory.tab(bar, "Meza 3", lines=(("Tusker", 2, 250),))
    page.goto(f"{live.url}/login")
    page.fill("#email", cashier.email)
    page.fill("#password", factory.PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live.url}/tabs/{tab.id}")
    image = page.locator("#bill-qr-image")
    image.wait_for(timeout=10_000)  # swapped in by htmx once the page is shown
    assert page.evaluate("document.getElementById('bill-qr-image').naturalWidth") > 100
    page.click("#tab-bill a")
    page.locator("#bill #bill-qr-image").wait_for(timeout=10_000)
    assert "KES 500" in page.locator("#bill-balance").inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "bill-qr.png"), full_page=True)
    assert errors == []

"""A cashier verifies a code on the tab list: "Asking M-Pesa…" turns into M-Pesa's answer
without a reload, and polling stops (test-artifacts/browser/verify.png)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import test_browser
from tests.test_browser import ARTIFACTS
from tests.test_verify import save_initiator

browser, phone_screen = test_browser.browser, test_browser.phone_screen  # the same fixtures

pytestmark = pytest.mark.browser


def test_the_answer_arrives_live(phone_screen, live, factory, bar, cashier, sim_state):
    page, errors = phone_screen
    factory.live_credentials(bar)
    save_initiator(bar, sim_state)
    sim_state.set_faults(callback_delay=1.5)  # long enough to see "Asking M-Pesa…"
    page.goto(f"{live.url}/login")
    page.fill("#email", cashier.email)
    page.fill("#password", factory.PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live.url}/tabs/")
    page.evaluate("window.__pesatabMarker = 'same page'")
    page.fill("#verify-code", "sim0 ther01")
    page.click("#verify button[type=submit]")
    result = page.locator("#verify-result")
    expect(result).to_contain_text("Asking M-Pesa about SIM0THER01…", timeout=5_000)
    expect(result).to_contain_text(
        "Paid to another business (MAMA MBOGA STORES), not to this bar.", timeout=10_000
    )
    assert result.get_attribute("hx-trigger") is None  # answered: no more polling
    assert page.evaluate("window.__pesatabMarker") == "same page"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "verify.png"), full_page=True)
    assert errors == []

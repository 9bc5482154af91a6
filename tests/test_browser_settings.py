"""The owner's M-Pesa set-up in a real browser (Debian's Chromium, driven by Playwright), at a
phone's size: the test push is paid and Go live turns available on the same page, no reload.

A missing browser is a failure, not a skip: `make test` and CI install Chromium first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import vault
from app.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET
from tests import test_browser

browser, phone_screen = test_browser.browser, test_browser.phone_screen  # the same fixtures

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = pytest.mark.browser


def test_go_live_turns_available_when_the_test_push_is_paid_without_a_reload(
    phone_screen, live, bar, owner, factory, sim_state
):
    page, errors = phone_screen
    vault.save(
        bar,
        vault.CredentialInput(
            environment="sandbox",
            kind="paybill",
            shortcode=SANDBOX_SHORTCODE,
            till_number=None,
            consumer_key=SIM_CONSUMER_KEY,
            consumer_secret=SIM_CONSUMER_SECRET,
            passkey=SANDBOX_PASSKEY,
        ),
    )
    # Long enough for the page to show the push waiting; then the owner pays on the phone.
    sim_state.set_faults(decision_delay=4, callback_delay=0.5)
    polls: list[int] = []
    page.on("response", lambda r: polls.append(r.status) if "/status" in r.url else None)

    page.goto(f"{live.url}/login")
    page.fill("#email", owner.email)
    page.fill("#password", factory.PASSWORD)
    page.click("button[type=submit]")
    page.click("nav >> text=M-Pesa")
    go_live = page.locator("#go-live")
    assert "Available after a paid test push" in go_live.inner_text()
    assert page.locator("#go-live-button").count() == 0

    page.fill("#phone", "0708 374 149")
    page.click("text=Send test push")
    page.locator(".payment-status .badge-sent").wait_for(timeout=10_000)
    assert page.locator("#go-live-button").count() == 0  # not before the money
    page.evaluate("window.__pesatabMarker = 'same page'")  # proves no reload happens

    page.locator("#go-live-button").wait_for(timeout=20_000)  # came with the paid fragment
    assert page.locator(".payment-status .badge-paid").count() == 1
    assert page.evaluate("window.__pesatabMarker") == "same page"
    assert 200 in polls, polls
    assert page.locator("#go-live").count() == 1  # swapped in place, not added
    assert "Available after a paid test push" not in go_live.inner_text()
    assert page.locator(".payment-status[hx-trigger]").count() == 0  # polling stopped
    assert page.locator("#sandbox-marker").inner_text() == "Sandbox: no real money"
    box = page.locator("#go-live-button").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390  # on a phone's screen
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#go-live").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "settings-go-live.png"))

    page.click("#go-live-button")  # the form posts with the token the fragment brought
    page.locator("text=Live! Cashiers can now send M-Pesa requests.").wait_for(timeout=10_000)
    assert "Live: cashiers can send M-Pesa requests." in page.locator("#go-live").inner_text()
    assert errors == []

"""A cashier's whole loop in a real browser (Debian's Chromium, driven by Playwright).

A missing browser is a failure, not a skip: `make test` and CI install Chromium first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("PESATAB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"

pytestmark = pytest.mark.browser


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make browser` (apt-get install chromium)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def phone_screen(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page, errors
    context.close()


def test_a_cashier_gets_paid_without_reloading(
    phone_screen, live, factory, bar, cashier, sim_state
):
    page, errors = phone_screen
    factory.live_credentials(bar)
    # Long enough to see it wait: the first poll gets the fragment with its version, the next
    # ones 204 (nothing swapped) while the clock runs on the screen, then the callback.
    sim_state.set_faults(decision_delay=6, callback_delay=0.5)
    polls: list[int] = []
    page.on("response", lambda r: polls.append(r.status) if "/status" in r.url else None)

    page.goto(f"{live.url}/login")
    page.fill("#email", cashier.email)
    page.fill("#password", factory.PASSWORD)
    page.click("button[type=submit]")
    page.click("nav >> text=Tabs")
    page.fill("#label", "Table 4")
    page.click("text=Open tab")
    page.fill("#description", "Tusker")
    page.fill("#quantity", "2")
    page.fill("#unit_price", "250")
    page.click("text=Add to tab")
    balance = page.locator("[id^=tab-balance-]")
    assert balance.inner_text() == "KES 500"

    page.fill("#phone", "0708 374 149")
    page.evaluate("window.__pesatabMarker = 'same page'")  # proves no reload happens
    page.click("#request-mpesa")
    page.locator(".payment-status .badge-sent").wait_for(timeout=10_000)
    for _ in range(100):  # the first poll gets the fragment with its version, then 204s
        if 204 in polls:
            break
        page.wait_for_timeout(100)
    assert polls[-1] == 204, polls
    seen = len(polls)
    shown = page.locator(".payment-status .elapsed").inner_text()
    page.wait_for_function(
        f"() => document.querySelector('.payment-status .elapsed').textContent !== {shown!r}",
        timeout=1_500,
    )  # nothing swapped since: app.js runs the clock
    assert page.locator(".payment-status .badge-sent").count() == 1
    assert 200 not in polls[seen - 1 :], polls
    page.locator(".payment-status .badge-paid").wait_for(timeout=20_000)
    assert polls[-1] == 200, polls  # paid: the final fragment

    receipt = page.locator(".payment-status .receipt").inner_text()
    assert len(receipt) == 10 and receipt.isalnum()
    assert balance.inner_text() == "KES 0"
    assert page.evaluate("window.__pesatabMarker") == "same page"
    assert page.locator(".payment-status[hx-trigger]").count() == 0  # polling stopped
    page.locator("text=Close tab as settled").wait_for(timeout=5_000)  # offered without a reload
    assert page.locator("#request-mpesa").count() == 0  # nothing left to ask for
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "cashier-paid.png"), full_page=True)
    assert errors == []

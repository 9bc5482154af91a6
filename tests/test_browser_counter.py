"""The pay form's refusals on a phone, in a real browser: every sentence the server answers
reaches the screen next to its field (bad phone, amount 0, more than the balance) or the
button (the push limit), and the page never looks frozen."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import test_browser
from tests.test_browser import ARTIFACTS

browser, phone_screen = test_browser.browser, test_browser.phone_screen  # the same fixtures

pytestmark = pytest.mark.browser


# The three bad phones of issue 13 and the sentence app/mpesa/phone.py gives each.
BAD_PHONES = (
    ("0808 374 149",  # 08…: no Kenyan mobile range
     "That is not a mobile number; enter a Safaricom mobile number like 0712 345 678."),
    ("12345",
     "That number is too short — a Kenyan mobile number has 10 digits, like 0712 345 678."),
    ("07o8374149",  # a letter o for a zero
     "A phone number has only digits; enter it like 0712 345 678."),
)  # fmt: skip


def sign_in_and_open_tab(page, live, factory, cashier, balance_kes: int) -> None:
    page.goto(f"{live.url}/login")
    page.fill("#email", cashier.email)
    page.fill("#password", factory.PASSWORD)
    page.click("button[type=submit]")
    page.click("nav >> text=Tabs")
    page.fill("#label", "Table 9")
    page.click("text=Open tab")
    page.fill("#description", "Nyama choma")
    page.fill("#quantity", "1")
    page.fill("#unit_price", str(balance_kes))
    page.click("text=Add to tab")


def ask(page, phone: str, amount: str, status: int = 422) -> None:
    """Type and tap Request M-Pesa, and wait for the server's answer (`status`) to arrive."""
    page.fill("#phone", phone)
    page.fill("#amount", amount)
    with page.expect_response(lambda r: r.url.endswith("/pay") and r.status == status):
        page.click("#request-mpesa")


def says(page, field: str, sentence) -> None:
    """The sentence next to `field`, waited for: the answer swaps the panel in."""
    expect(page.locator(f"#{field}-error")).to_have_text(sentence, timeout=5_000)


def test_every_refusal_shows_its_sentence_on_a_phone(
    app, phone_screen, live, factory, bar, cashier, sim_state
):
    page, errors = phone_screen
    factory.live_credentials(bar)
    app.config["PUSH_LIMIT_PER_USER"] = "1 per minute"
    sign_in_and_open_tab(page, live, factory, cashier, 1500)
    page.evaluate("window.__pesatabMarker = 'same page'")

    # Each bad phone gets its own sentence, swapped in over the one before it.
    shown = None
    for phone_typed, sentence in BAD_PHONES:
        page.evaluate(
            "document.querySelectorAll('#phone-error').forEach(e => e.dataset.stale = 'yes')"
        )
        ask(page, phone_typed, "500")
        says(page, "phone", sentence)
        assert page.locator("#phone-error[data-stale]").count() == 0  # a new answer, not the old
        assert sentence != shown
        shown = sentence
    ask(page, "0708 374 149", "0")
    says(page, "amount", "Enter an amount of at least KES 1.")
    ask(page, "0708 374 149", "-5")
    says(page, "amount", "Enter an amount in shillings, like 1250.")
    ask(page, "0708 374 149", "2000")
    says(page, "amount", "Only KES 1,500 is left to ask for.")

    # Seven refusals so far, none counted: the first real request goes through...
    ask(page, "0708 374 149", "500", status=200)
    page.locator(".payment-status").first.wait_for(timeout=10_000)
    # ...and the next one is over the limit of one a minute: said above the button.
    ask(page, "0711 000 000", "500", status=429)
    limit = page.locator("#pay-panel .flash-error")
    limit.wait_for(timeout=5_000)
    assert "Too many M-Pesa requests in the last few minutes" in limit.inner_text()
    assert page.input_value("#phone") == "0711 000 000"  # what was typed is kept
    assert page.evaluate("window.__pesatabMarker") == "same page"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "pay-refusals-phone.png"), full_page=True)
    assert [e for e in errors if "422" not in e and "429" not in e] == []

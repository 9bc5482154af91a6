"""The tab page on a phone in English and in Kiswahili, screenshotted side by side for the
team (test-artifacts/browser/tab-en.png, tab-sw.png): the same tab, the same money, the
words in the reader's language."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Tender
from tests import test_browser
from tests.test_browser import ARTIFACTS

browser, phone_screen = test_browser.browser, test_browser.phone_screen  # the same fixtures

pytestmark = pytest.mark.browser


def test_the_tab_page_in_english_and_kiswahili(phone_screen, live, factory, bar, cashier):
    page, errors = phone_screen
    tab = factory.tab(bar, "Meza 4", lines=(("Tusker", 2, 250), ("Nyama choma", 1, 800)))
    factory.payment(bar, tab=tab, status="paid", amount=500, receipt="SGR1ABCDEF")
    db.session.add(Tender(bar_id=bar.id, tab_id=tab.id, kind="cash", amount=300))
    db.session.commit()
    page.goto(f"{live.url}/login")
    page.fill("#email", cashier.email)
    page.fill("#password", factory.PASSWORD)
    page.click("button[type=submit]")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    seen = {}
    for locale in ("en", "sw"):
        cashier.locale = locale
        db.session.commit()
        page.goto(f"{live.url}/tabs/{tab.id}")
        assert page.locator("html").get_attribute("lang") == locale
        seen[locale] = page.locator("main").inner_text()
        page.screenshot(path=str(ARTIFACTS / f"tab-{locale}.png"), full_page=True)
    assert page.locator(f"#tab-balance-{tab.id}").inner_text() == "KES 500"  # money reads alike
    assert "Balance" in seen["en"] and "Balance" not in seen["sw"]
    assert "Salio" in seen["sw"] and "Hesabu" in page.locator("nav").inner_text()
    assert errors == []

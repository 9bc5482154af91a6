"""A customer opens the receipt link signed out and prints it on an 80 mm roll: one page, the
receipt alone (test-artifacts/browser/receipt-80mm.png and receipt-80mm.pdf)."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.models import Tender
from tests import test_browser
from tests.conftest import login_as
from tests.test_browser import ARTIFACTS

browser = test_browser.browser  # the same fixture

pytestmark = pytest.mark.browser


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf))


def test_a_signed_out_customer_prints_the_receipt_on_80mm_paper(
    browser, app, live, factory, bar, cashier
):
    bar.address, bar.kra_pin = "Moi Avenue, Nairobi", "P051234567Q"
    tab = factory.tab(bar, "Meza 7", lines=(("Tusker", 2, 250), ("Nyama choma", 1, 800)))
    factory.payment(bar, tab=tab, status="paid", amount=1000, receipt="SGR1ABCDEF")
    db.session.add(Tender(bar_id=bar.id, tab_id=tab.id, kind="cash", amount=300))
    tab.status = "settled"
    db.session.commit()
    html = login_as(app, cashier).post(f"/tabs/{tab.id}/receipt/link").get_data(True)
    url = re.search(r'value="(http://[^"]+/r/[A-Za-z0-9_-]{43})"', html).group(1)
    assert url.startswith(live.url)

    context = browser.new_context(viewport={"width": 360, "height": 740})  # no cookies: signed out
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    answer = page.goto(url)
    assert answer.status == 200 and answer.headers["referrer-policy"] == "no-referrer"
    slip = page.locator("article.slip")
    for text in ("Kwa Mama Pub", "Meza 7", "SGR1ABCDEF", "KES 1,300", "P051234567Q"):
        assert text in slip.inner_text(), text
    assert page.locator(".slip-qr img").evaluate("img => img.complete && img.naturalWidth > 50")
    assert context.cookies() == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "receipt-public.png"), full_page=True)

    page.emulate_media(media="print")
    assert page.locator(".slip-buttons").is_hidden()  # no buttons on paper
    assert page.locator(".slip-head h1").is_visible()
    width = page.locator("article.slip").evaluate("el => el.getBoundingClientRect().width")
    page.set_viewport_size({"width": 302, "height": 740})  # 80 mm at 96 dpi
    narrow = page.locator("article.slip").evaluate("el => el.getBoundingClientRect().width")
    assert narrow <= 302 and width <= 302  # one narrow column, even on a wider screen
    page.screenshot(path=str(ARTIFACTS / "receipt-80mm.png"), full_page=True)

    pdf = page.pdf(width="80mm", height="297mm", print_background=True)
    (ARTIFACTS / "receipt-80mm.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
    assert _pages(pdf) == 1
    context.close()
    assert errors == []


def test_the_counter_prints_the_receipt_alone_on_a4(browser, live, factory, bar, cashier):
    tab = factory.tab(bar, "Meza 8", lines=(("Soda", 2, 100),))
    factory.payment(bar, tab=tab, status="paid", amount=200, receipt="SGR2ABCDEF")
    context = browser.new_context(viewport={"width": 1024, "height": 900})
    page = context.new_page()
    page.goto(f"{live.url}/login")
    page.fill("#email", cashier.email)
    page.fill("#password", factory.PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live.url}/tabs/{tab.id}")
    page.click("#tab-receipt a")  # the tab is paid in full: its receipt card is there
    page.click("text=A4 paper")
    page.click("text=Make a link to share")
    assert page.locator(".slip-qr img").is_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "receipt-page.png"), full_page=True)
    page.emulate_media(media="print")
    for hidden in (".topbar", "#receipt-share", "button", "nav"):
        assert page.locator(hidden).first.is_hidden(), hidden
    assert "SGR2ABCDEF" in page.locator("article.slip").inner_text()
    assert page.locator(".slip-head h1").is_visible()  # the bar's name prints too
    page.screenshot(path=str(ARTIFACTS / "receipt-a4.png"), full_page=True)
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    (ARTIFACTS / "receipt-a4.pdf").write_bytes(pdf)
    assert _pages(pdf) == 1
    assert re.search(rb"/MediaBox\s*\[0 0 59[45]\.?\d* 841\.\d*\]", pdf)  # A4, from the CSS @page
    context.close()

"""The error pages in Kiswahili: a page that is not there (404) and a page a person's role may
not open (403) say what happened, and what to do, in the reader's language, with no English
left (the same check as tests/test_kiswahili.py, on pages no GET walk reaches)."""

from __future__ import annotations

import pytest

from app.extensions import db
from tests.conftest import login_as
from tests.test_kiswahili import english_left

PAGES = {
    404: "/tabs/999999",  # no such tab in any bar
    403: "/settings/audit/",  # the audit log is the owner's
}


def _pages(app, cashier, url: str) -> dict[str, tuple[int, str]]:
    found = {}
    for locale in ("en", "sw"):
        cashier.locale = locale
        db.session.commit()
        response = login_as(app, cashier).get(url)
        found[locale] = (response.status_code, response.get_data(as_text=True))
    return found


@pytest.mark.parametrize("status", sorted(PAGES))
def test_an_error_page_has_no_english_left(app, cashier, status):
    pages = _pages(app, cashier, PAGES[status])
    assert pages["en"][0] == pages["sw"][0] == status
    assert english_left(pages["en"][1], pages["sw"][1], {cashier.name, cashier.bar.name}) == []


def test_the_kiswahili_error_page_says_what_to_do(app, cashier):
    _, sw = _pages(app, cashier, PAGES[404])["sw"]
    assert "Ukurasa haukupatikana" in sw and "Rudi PesaTab" in sw
    _, en = _pages(app, cashier, PAGES[404])["en"]
    assert "Page not found" in en and "Back to PesaTab" in en

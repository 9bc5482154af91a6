"""Receipts: a paid tab's receipt for the counter to print, and a link that shows it to the
customer, signed out, until it expires or someone at the bar revokes it."""

from __future__ import annotations

import base64
import hashlib
import re
import runpy
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, Bar, ReceiptLink, Tender, utcnow
from app.receipts import links
from app.redaction import redact
from tests.conftest import login_as
from tests.test_kiswahili import english_left

PAID_AT = datetime(2026, 12, 7, 6, 30)  # naive UTC: 09:30 in Nairobi
LINK = re.compile(r"http://[^\s\"<>]+/r/([A-Za-z0-9_-]{43})")


@pytest.fixture
def paid_tab(factory, bar):
    """Meza 7: KES 1,300 paid by an STK push, from the M-Pesa menu and in cash, then closed."""
    bar.address, bar.kra_pin = "Moi Avenue, Nairobi", "P051234567Q"
    tab = factory.tab(bar, "Meza 7", lines=(("Tusker", 2, 250), ("Nyama choma", 1, 800)))
    factory.payment(
        bar, tab=tab, status="paid", amount=800, receipt="SGR1ABCDEF", transaction_time=PAID_AT
    )
    factory.payment(
        bar, tab=tab, status="paid", amount=300, receipt="UKM4ABC13E", purpose="c2b",
        phone="2547****149", transaction_time=PAID_AT,
    )  # fmt: skip
    factory.payment(bar, tab=tab, status="failed", amount=999, phone="254711000001")
    db.session.add(Tender(bar_id=bar.id, tab_id=tab.id, kind="cash", amount=200))
    tab.status, tab.closed_at = "settled", PAID_AT
    db.session.commit()
    return tab


@pytest.fixture
def other_tab(factory, bar):
    """Another paid tab of the same bar: nothing of it may show on Meza 7's receipt."""
    tab = factory.tab(bar, "Meza 12", lines=(("Guinness", 3, 300),))
    factory.payment(bar, tab=tab, status="paid", amount=900, receipt="QOTHER1234")
    tab.status, tab.closed_at = "settled", utcnow()
    db.session.commit()
    return tab


def _share(app, user, tab) -> tuple[str, str]:
    """Make a link as `user`; returns the page's HTML and the token it shows."""
    answer = login_as(app, user).post(f"/tabs/{tab.id}/receipt/link")
    assert answer.status_code == 201
    html = answer.get_data(as_text=True)
    return html, LINK.search(html).group(1)


def test_it_shows_the_paid_tabs_receipt(app, cashier, paid_tab, other_tab):
    html = login_as(app, cashier).get(f"/tabs/{paid_tab.id}/receipt").get_data(as_text=True)
    slip = html[html.index('<article class="slip"') :]
    for text in ("Kwa Mama Pub", "Moi Avenue, Nairobi", "P051234567Q", "Meza 7", "Tusker",
                 "2 × KES 250", "KES 500", "Nyama choma", "KES 1,300", "SGR1ABCDEF",
                 "UKM4ABC13E", "Cash", "KES 200", "Time (EAT)", "07 Dec 2026, 09:30"):  # fmt: skip
        assert text in slip, text
    assert slip.count("M-Pesa") == 2
    for text in ("Meza 12", "Guinness", "QOTHER1234", "KES 999", "254708374149", "2547****149"):
        assert text not in slip, text


def test_a_tab_that_still_owes_or_is_void_has_no_receipt_and_no_link(app, factory, bar, cashier):
    owing = factory.tab(bar, "Meza 1", lines=(("Tusker", 1, 250),))
    void = factory.tab(bar, "Meza 2", lines=(("Tusker", 1, 250),), status="void")
    counter = login_as(app, cashier)
    answer = counter.get(f"/tabs/{owing.id}/receipt")
    assert answer.status_code == 409
    assert "once the tab is paid in full" in answer.get_data(as_text=True)
    assert "void tab has no receipt" in counter.get(f"/tabs/{void.id}/receipt").get_data(True)
    assert counter.post(f"/tabs/{owing.id}/receipt/link").status_code == 409
    assert db.session.scalars(select(ReceiptLink)).all() == []


def test_an_open_tab_paid_in_full_has_its_receipt_timed_at_the_last_money(
    app, factory, bar, cashier
):
    tab = factory.tab(bar, "Meza 3", lines=(("Soda", 2, 100),))
    factory.payment(bar, tab=tab, status="paid", amount=200, receipt="SOPEN12345",
                    transaction_time=PAID_AT)  # fmt: skip
    html = login_as(app, cashier).get(f"/tabs/{tab.id}/receipt").get_data(as_text=True)
    assert "SOPEN12345" in html and "07 Dec 2026, 09:30" in html


def test_sharing_makes_a_link_shown_once_and_stored_as_its_hash(app, cashier, paid_tab):
    html, token = _share(app, cashier, paid_tab)
    link = db.session.scalars(select(ReceiptLink)).one()
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr([getattr(link, c.key) for c in ReceiptLink.__table__.columns])
    assert (link.bar_id, link.tab_id, link.created_by_id) == (
        paid_tab.bar_id, paid_tab.id, cashier.id,
    )  # fmt: skip
    assert timedelta(days=29) < link.expires_at - utcnow() <= timedelta(days=30)
    audit = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert audit.action == "receipt.link_created" and audit.user_id == cashier.id
    # The QR code is a real PNG, on the printed receipt.
    qr = re.search(r'<img src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(qr).startswith(b"\x89PNG\r\n\x1a\n")
    sentence = quote("Your receipt from Kwa Mama Pub: " + LINK.search(html).group(0), safe="")
    assert f'href="https://wa.me/?text={sentence}"' in html
    # The STK payer's number, normalised as WhatsApp wants it; the menu payer's is masked.
    assert 'href="https://wa.me/254708374149?text=' in html
    # Shown once: the receipt page afterwards never shows it again.
    again = login_as(app, cashier).get(f"/tabs/{paid_tab.id}/receipt").get_data(as_text=True)
    assert token not in again and f"receipt-link-{link.id}" in again


def test_a_signed_out_visitor_sees_that_receipt_and_nothing_else(
    app, client, cashier, paid_tab, other_tab
):
    _html, token = _share(app, cashier, paid_tab)
    answer = client.get(f"/r/{token}")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    for text in ("Kwa Mama Pub", "Meza 7", "SGR1ABCDEF", "UKM4ABC13E", "KES 1,300",
                 "07 Dec 2026, 09:30", "P051234567Q"):  # fmt: skip
        assert text in html, text
    for text in ("Meza 12", "Guinness", "QOTHER1234", "254708374149", "2547****149", "KES 999",
                 "Akinyi", "csrf"):  # fmt: skip
        assert text not in html, text
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in answer.headers["X-Robots-Tag"]
    assert "Set-Cookie" not in answer.headers
    # No way into the app from here: the only link goes to WhatsApp.
    sentence = f"Your receipt from Kwa Mama Pub: http://127.0.0.1:5000/r/{token}"
    assert re.findall(r'<a [^>]*href="([^"]+)"', html) == [
        "https://wa.me/?text=" + quote(sentence, safe="")
    ]
    assert re.search(r'<img src="data:image/png;base64,', html)


def _missing(client, token: str):
    answer = client.get(f"/r/{token}")
    assert answer.status_code == 404
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in answer.headers
    return answer.get_data(as_text=True)


def test_revoked_expired_unknown_and_tampered_links_answer_the_same_404(
    app, client, cashier, paid_tab
):
    _html, revoked = _share(app, cashier, paid_tab)
    _html, expired = _share(app, cashier, paid_tab)
    _html, good = _share(app, cashier, paid_tab)
    first, second, _third = db.session.scalars(select(ReceiptLink).order_by(ReceiptLink.id))
    login_as(app, cashier).post(f"/tabs/{paid_tab.id}/receipt/link/{first.id}/revoke")
    second.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    pages = {
        _missing(client, t) for t in (revoked, expired, tampered, "x" * 43, "nope", good + "A")
    }
    assert len(pages) == 1 and "does not work" in pages.pop()
    assert client.get(f"/r/{good}").status_code == 200


def test_revoking_is_audited_once_and_ends_on_the_tab_page(app, manager, paid_tab):
    _html, token = _share(app, manager, paid_tab)
    link = db.session.scalars(select(ReceiptLink)).one()
    desk = login_as(app, manager)
    tab_page = desk.get(f"/tabs/{paid_tab.id}").get_data(as_text=True)
    assert f"receipt-link-{link.id}" in tab_page and f"/receipt/link/{link.id}/revoke" in tab_page
    answer = desk.post(f"/tabs/{paid_tab.id}/receipt/link/{link.id}/revoke", data={"back": "tab"})
    assert answer.status_code == 302 and answer.headers["Location"] == f"/tabs/{paid_tab.id}"
    again = desk.post(f"/tabs/{paid_tab.id}/receipt/link/{link.id}/revoke", follow_redirects=True)
    assert "already stopped working" in again.get_data(as_text=True)
    db.session.expire_all()
    assert link.revoked_at is not None and link.revoked_by_id == manager.id
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert actions.count("receipt.link_revoked") == 1
    assert f"receipt-link-{link.id}" not in desk.get(f"/tabs/{paid_tab.id}").get_data(True)
    assert app.test_client().get(f"/r/{token}").status_code == 404


def test_another_bars_tab_and_link_answer_404(app, factory, cashier, outsider, paid_tab):
    _html, token = _share(app, cashier, paid_tab)
    link = db.session.scalars(select(ReceiptLink)).one()
    stranger = login_as(app, outsider)
    assert stranger.get(f"/tabs/{paid_tab.id}/receipt").status_code == 404
    assert stranger.post(f"/tabs/{paid_tab.id}/receipt/link").status_code == 404
    assert stranger.post(f"/tabs/{paid_tab.id}/receipt/link/{link.id}/revoke").status_code == 404
    # Their own tab with our link's id: still not theirs.
    theirs = factory.tab(outsider.bar, "Their tab")
    assert stranger.post(f"/tabs/{theirs.id}/receipt/link/{link.id}/revoke").status_code == 404
    # Our own link through another of our tabs is not that tab's either.
    other = factory.tab(paid_tab_bar(paid_tab), "Meza 99")
    assert login_as(app, cashier).post(
        f"/tabs/{other.id}/receipt/link/{link.id}/revoke"
    ).status_code == 404  # fmt: skip
    db.session.expire_all()
    assert link.revoked_at is None
    assert app.test_client().get(f"/r/{token}").status_code == 200


def paid_tab_bar(tab) -> Bar:
    return db.session.get(Bar, tab.bar_id)


@pytest.mark.parametrize(
    ("typed", "kept"),
    [("p051 234 567q", "P051234567Q"), ("A123456789Z", "A123456789Z"), ("", None)],
)
def test_the_owner_sets_the_address_and_a_kra_pin(app, bar, owner, typed, kept):
    desk = login_as(app, owner)
    answer = desk.post(
        "/settings/receipts/", data={"address": "  Moi Avenue \n\n Nairobi ", "kra_pin": typed}
    )
    assert answer.status_code == 302
    db.session.expire_all()
    assert (bar.address, bar.kra_pin) == ("Moi Avenue\nNairobi", kept)
    assert "Moi Avenue" in desk.get("/settings/receipts/").get_data(as_text=True)
    audit = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert audit.action == "bar.receipt_details"


@pytest.mark.parametrize("typed", ["P05123456Q", "P0512345678", "1051234567Q", "P051234567QQ",
                                   "PO51234567Q"])  # fmt: skip
def test_a_kra_pin_that_is_not_one_is_refused_with_a_sentence(app, bar, owner, typed):
    answer = login_as(app, owner).post(
        "/settings/receipts/", data={"address": "Moi Avenue", "kra_pin": typed}
    )
    assert answer.status_code == 400
    assert "A KRA PIN is a letter, 9 digits and a letter, like P051234567Q." in (
        answer.get_data(as_text=True)
    )
    db.session.expire_all()
    assert bar.address is None and bar.kra_pin is None


def test_only_the_owner_changes_the_receipt_details(app, bar, manager):
    answer = login_as(app, manager).post("/settings/receipts/", data={"kra_pin": "P051234567Q"})
    assert answer.status_code == 403
    db.session.expire_all()
    assert bar.kra_pin is None


def test_the_public_link_is_rate_limited_per_address(app, client, cashier, paid_tab):
    _html, token = _share(app, cashier, paid_tab)
    app.config["RECEIPT_LIMIT_PER_ADDRESS"] = "3 per minute"
    assert [client.get(f"/r/{t}").status_code for t in (token, "a" * 43, token)] == [200, 404, 200]
    answer = client.get(f"/r/{token}")
    assert answer.status_code == 429 and "Too many tries" in answer.get_data(as_text=True)
    assert answer.headers["Referrer-Policy"] == "no-referrer"


def test_the_token_never_reaches_a_log_line():
    token = "AbC_dEf-1234567890xyzAbC_dEf-1234567890xyz1"
    line = redact(f'127.0.0.1 - - "GET /r/{token} HTTP/1.1" 200 -')
    assert token not in line and "/r/[redacted]" in line
    gunicorn_conf = runpy.run_path(str(Path(__file__).parent.parent / "gunicorn.conf.py"))
    assert gunicorn_conf["mask_path"](f"/r/{token}") == "/r/***"


def test_the_receipt_and_its_public_page_are_in_kiswahili(app, client, bar, cashier, paid_tab):
    _html, token = _share(app, cashier, paid_tab)
    data = {bar.name, "Moi Avenue, Nairobi", "Meza 7", "Tusker", "Nyama choma", cashier.name}
    pages = {}
    for locale in ("en", "sw"):
        cashier.locale = locale
        db.session.commit()
        pages[locale] = login_as(app, cashier).get(f"/tabs/{paid_tab.id}/receipt").get_data(True)
    assert english_left(pages["en"], pages["sw"], data) == []
    en = client.get(f"/r/{token}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    sw = client.get(f"/r/{token}", headers={"Accept-Language": "sw"}).get_data(as_text=True)
    assert 'lang="sw"' in sw and "Saa (EAT)" in sw
    assert english_left(en, sw, data) == []
    missing = client.get("/r/nope", headers={"Accept-Language": "sw"}).get_data(as_text=True)
    assert "Risiti haikupatikana" in missing


def test_links_found_by_the_domain_are_only_live_ones(app, paid_tab):
    link, token = links.issue(paid_tab, None, days=1)
    assert links.find_usable(token) == link
    assert links.live_links(paid_tab) == [link]
    assert links.revoke(link, None) is True and links.revoke(link, None) is False
    assert links.find_usable(token) is None and links.live_links(paid_tab) == []

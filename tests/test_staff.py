"""The owner's staff page: adding people, set-password links, deactivation."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, SetPasswordLink, User, utcnow
from tests.conftest import Client, login_as
from tests.factories import Factory

CHROMIUM = os.environ.get("PESATAB_CHROMIUM", "/usr/bin/chromium")


def add_person(client, name="Baraka", email="baraka@kwa-mama.example.com", role="cashier"):
    response = client.post("/settings/staff/", data={"name": name, "email": email, "role": role})
    assert response.status_code == 200, response.data
    link = re.search(rb'value="(http://[^"]+/set-password/[^"]+)"', response.data).group(1).decode()
    return link.split("localhost", 1)[1]


def fresh_client(app) -> Client:
    app.test_client_class = Client
    return app.test_client()


def test_owner_adds_a_cashier_who_sets_a_password_with_the_link(app, owner):
    link = add_person(login_as(app, owner))
    person = db.session.scalar(select(User).where(User.email == "baraka@kwa-mama.example.com"))
    assert (
        person.role == "cashier" and person.bar_id == owner.bar_id and person.password_hash is None
    )

    newcomer = fresh_client(app)
    assert b"Welcome, Baraka" in newcomer.get(link).data
    response = newcomer.post(
        link, data={"password": "baraka's password", "confirm": "baraka's password"}
    )
    assert response.status_code == 302
    assert newcomer.get("/dashboard").status_code == 200
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"staff.added", "user.password_set"} <= actions


def test_the_link_works_once(app, owner):
    link = add_person(login_as(app, owner))
    first = fresh_client(app)
    first.post(link, data={"password": "first password!", "confirm": "first password!"})
    second = fresh_client(app)
    response = second.get(link)
    assert response.status_code == 404 and b"This link no longer works" in response.data
    response = second.post(
        link, data={"password": "attacker password", "confirm": "attacker password"}
    )
    assert response.status_code == 404


def test_the_link_expires_after_48_hours(app, owner):
    link = add_person(login_as(app, owner))
    stored = db.session.scalar(select(SetPasswordLink))
    assert timedelta(hours=47) < stored.expires_at - utcnow() <= timedelta(hours=48)
    stored.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert fresh_client(app).get(link).status_code == 404


def test_a_new_link_replaces_the_old_one(app, owner):
    c = login_as(app, owner)
    old = add_person(c)
    person = db.session.scalar(select(User).where(User.role == "cashier"))
    response = c.post(f"/settings/staff/{person.id}/link")
    new = re.search(rb"/set-password/[^\"]+", response.data).group(0).decode()
    assert fresh_client(app).get(old).status_code == 404
    assert fresh_client(app).get(new).status_code == 200


def test_the_link_token_is_stored_hashed(app, owner):
    link = add_person(login_as(app, owner))
    token = link.rsplit("/", 1)[1]
    assert db.session.scalar(select(SetPasswordLink.token_hash)) != token


def test_mismatched_passwords_are_explained(app, owner):
    link = add_person(login_as(app, owner))
    response = fresh_client(app).post(
        link, data={"password": "one password!", "confirm": "another one!!"}
    )
    assert b"The two passwords differ." in response.data


def test_adding_someone_with_a_taken_email_says_so(app, owner, cashier):
    c = login_as(app, owner)
    response = c.post(
        "/settings/staff/", data={"name": "X", "email": cashier.email, "role": "cashier"}
    )
    assert response.status_code == 400
    assert b"An account with this email already exists." in response.data


def test_owner_cannot_add_another_owner(app, owner):
    c = login_as(app, owner)
    response = c.post(
        "/settings/staff/", data={"name": "X", "email": "x@example.com", "role": "owner"}
    )
    assert response.status_code == 400
    assert db.session.scalar(select(User).where(User.email == "x@example.com")) is None


def test_a_deactivated_cashier_is_signed_out_on_the_next_request(app, owner, cashier):
    cashier_client = login_as(app, cashier)
    assert cashier_client.get("/dashboard").status_code == 200
    login_as(app, owner).post(f"/settings/staff/{cashier.id}/deactivate")
    response = cashier_client.get("/dashboard")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert cashier_client.login(cashier).status_code == 200  # and cannot sign back in


def test_a_reactivated_cashier_can_sign_in_again(app, owner, cashier):
    c = login_as(app, owner)
    c.post(f"/settings/staff/{cashier.id}/deactivate")
    c.post(f"/settings/staff/{cashier.id}/reactivate")
    assert fresh_client(app).login(cashier).status_code == 302


def test_the_owner_cannot_be_deactivated(app, owner):
    response = login_as(app, owner).post(
        f"/settings/staff/{owner.id}/deactivate", follow_redirects=True
    )
    assert b"The owner&#39;s account cannot be deactivated." in response.data
    db.session.refresh(owner)
    assert owner.active


def test_another_bars_people_answer_404(app, owner, outsider):
    c = login_as(app, owner)
    for action in ("deactivate", "reactivate", "link"):
        assert c.post(f"/settings/staff/{outsider.id}/{action}").status_code == 404
    db.session.refresh(outsider)
    assert outsider.active


def test_the_staff_page_lists_only_this_bars_people(app, owner, cashier, outsider):
    page = login_as(app, owner).get("/settings/staff/").get_data(as_text=True)
    assert cashier.email in page and outsider.email not in page


def test_the_link_page_has_a_copy_button_and_a_whatsapp_share(app, owner):
    c = login_as(app, owner)
    response = c.post(
        "/settings/staff/",
        data={"name": "Baraka & Co", "email": "baraka@kwa-mama.example.com", "role": "cashier"},
    )
    html = response.get_data(as_text=True)
    link = re.search(r'value="(http://localhost/set-password/[^"]+)"', html).group(1)
    assert 'id="set-password-link"' in html
    assert '<button type="button" class="primary" data-copy="set-password-link">' in html
    share = re.search(r'href="(https://wa\.me/\?text=[^"]+)"', html).group(1)
    text = unquote(share.removeprefix("https://wa.me/?text=").replace("&amp;", "&"))
    assert text == (
        f"Hi Baraka & Co, choose your PesaTab password for {owner.bar.name} with this link "
        f"(it works once, within 48 hours): {link}"
    )
    assert "&" not in share.removeprefix("https://wa.me/?text=").replace("&amp;", "")
    assert "<script" not in html.split("</head>", 1)[1]  # the CSP allows no inline script
    script = (Path(app.static_folder) / "app.js").read_text()
    assert "data-copy" in script and "navigator.clipboard" in script


def test_a_300_character_name_is_refused_with_a_sentence(app, owner):
    response = login_as(app, owner).post(
        "/settings/staff/", data={"name": "N" * 300, "email": "n@example.com", "role": "cashier"}
    )
    assert response.status_code == 400
    assert b"A name has at most 120 characters." in response.data
    assert db.session.scalar(select(User).where(User.email == "n@example.com")) is None


def test_long_words_on_the_staff_page_wrap(app, owner, factory, bar):
    factory.user(bar, "cashier", name="W" * 120, email="w" * 60 + "@example.com")
    page = login_as(app, owner).get("/settings/staff/").get_data(as_text=True)
    assert '<table class="list staff">' in page
    css = (Path(app.static_folder) / "app.css").read_text()
    assert re.search(r"table\.staff td[^{]*\{[^}]*overflow-wrap:\s*anywhere", css)


def test_a_manager_gives_cashiers_new_links_and_nobody_else(
    app, owner, manager, cashier, factory, bar
):
    c = login_as(app, manager)
    page = c.get("/settings/staff/").get_data(as_text=True)
    assert f"/settings/staff/{cashier.id}/link" in page
    assert f"/settings/staff/{owner.id}/link" not in page
    assert f"/settings/staff/{manager.id}/link" not in page
    assert "deactivate" not in page and "Add a person" not in page

    response = c.post(f"/settings/staff/{cashier.id}/link")
    assert response.status_code == 200 and b"/set-password/" in response.data
    other_manager = factory.user(bar, "manager", name="Second Manager")
    for other in (owner, other_manager):
        response = c.post(f"/settings/staff/{other.id}/link", follow_redirects=True)
        assert b"Managers give new links to cashiers only" in response.data
    response = c.post(f"/settings/staff/{manager.id}/link", follow_redirects=True)
    assert b"You are signed in" in response.data
    issued = db.session.scalars(select(SetPasswordLink.user_id)).all()
    assert issued == [cashier.id]
    assert c.post("/settings/staff/", data={"name": "X", "role": "cashier"}).status_code == 403


def test_an_owner_gives_new_links_to_everyone_else(app, owner, manager, cashier, factory, bar):
    second_owner = factory.user(bar, "owner", name="Second Owner")
    c = login_as(app, owner)
    for person in (manager, cashier, second_owner):
        assert b"/set-password/" in c.post(f"/settings/staff/{person.id}/link").data
    response = c.post(f"/settings/staff/{owner.id}/link", follow_redirects=True)
    assert b"You are signed in" in response.data
    page = c.get("/settings/staff/").get_data(as_text=True)
    assert f"/settings/staff/{owner.id}/link" not in page


def test_a_deactivated_person_gets_no_new_link(app, owner, cashier):
    c = login_as(app, owner)
    c.post(f"/settings/staff/{cashier.id}/deactivate")
    response = c.post(f"/settings/staff/{cashier.id}/link", follow_redirects=True)
    assert b"is deactivated: reactivate them first" in response.data
    assert db.session.scalar(select(SetPasswordLink)) is None


@pytest.mark.browser
def test_on_a_phone_the_staff_page_fits_and_copy_copies_the_link(live, factory, bar, owner):
    """In Debian's Chromium at a phone's width: a 120-character name without a space wraps
    instead of widening the page, and the Copy button puts the link on the clipboard."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser`.")
    from playwright.sync_api import sync_playwright

    factory.user(bar, "cashier", name="W" * 120, email="w" * 60 + "@example.com")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 390, "height": 844})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live.url}/login")
        page.fill("#email", owner.email)
        page.fill("#password", Factory.PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{live.url}/settings/staff/")
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], width

        page.fill("#name", "Baraka")
        page.fill("#phone", "0712 345 678")
        page.click("text=Add and get their link")
        link = page.input_value("#set-password-link")
        page.click("[data-copy]")
        page.locator(".copy-status", has_text="Copied.").wait_for(timeout=5_000)
        assert page.evaluate("navigator.clipboard.readText()") == link
        assert errors == []
        browser.close()

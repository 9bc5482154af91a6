"""A cashier added with a phone number and no email signs in with the phone number (normalised
once, however it is typed); every auth and staff text field states and enforces its length."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import User
from tests.conftest import Client, login_as

NO_MATCH = b"That email or phone number and password do not match an active account."


def add(client: Client, **fields):
    data = {"name": "Baraka", "email": "", "phone": "", "role": "cashier", **fields}
    return client.post("/settings/staff/", data=data)


def link_in(response) -> str:
    found = re.search(rb'value="http://localhost(/set-password/[^"]+)"', response.data)
    return found.group(1).decode()


def fresh(app) -> Client:
    app.test_client_class = Client
    return app.test_client()


def people() -> int:
    return db.session.scalar(select(func.count(User.id)))


def test_a_cashier_added_with_a_phone_alone_signs_in_with_it(app, owner):
    response = add(login_as(app, owner), phone="0712 345 678")
    assert response.status_code == 200, response.data
    assert b"sign in with <strong>0712 345 678</strong>" in response.data
    person = db.session.scalar(select(User).where(User.name == "Baraka"))
    assert (person.phone, person.email, person.role) == ("254712345678", None, "cashier")

    newcomer = fresh(app)
    link = link_in(response)
    assert b"Choose a password for <strong>0712 345 678</strong>" in newcomer.get(link).data
    newcomer.post(link, data={"password": "baraka's pass", "confirm": "baraka's pass"})
    for typed in ("0712345678", "+254 712 345 678", "254712345678", "712-345-678"):
        response = fresh(app).post("/login", data={"email": typed, "password": "baraka's pass"})
        assert response.status_code == 302 and response.headers["Location"] == "/tabs/", typed


def test_a_phone_and_a_wrong_password_get_the_one_answer(app, owner):
    add(login_as(app, owner), phone="0110 123 456")
    response = fresh(app).post("/login", data={"email": "0110123456", "password": "nope nope!"})
    assert response.status_code == 200 and NO_MATCH in response.data


def test_a_cashier_with_both_signs_in_with_either(app, owner):
    response = add(login_as(app, owner), email="b@kwa.example.com", phone="0712345678")
    fresh(app).post(
        link_in(response), data={"password": "baraka's pass", "confirm": "baraka's pass"}
    )
    for typed in ("b@kwa.example.com", "0712 345 678"):
        response = fresh(app).post("/login", data={"email": typed, "password": "baraka's pass"})
        assert response.status_code == 302, typed


def test_a_phone_already_taken_however_typed_is_refused(app, owner):
    client = login_as(app, owner)
    add(client, phone="0712 345 678")
    response = add(client, name="Other", phone="+254712345678")
    assert response.status_code == 400
    assert b"An account with this phone number already exists." in response.data
    assert people() == 2


@pytest.mark.parametrize(
    ("phone", "sentence"),
    [
        ("0712", "too short"),
        ("07123456789012", "too long"),
        ("0712 345 67x", "only digits"),
        ("+44 7700 900123", "Enter a Kenyan mobile number (07… or 01…), like 0712 345 678."),
        ("0" * 30, "A phone number has at most 20 characters."),
    ],
)
def test_a_phone_that_is_not_a_kenyan_mobile_is_refused_with_a_sentence(
    app, owner, phone, sentence
):
    response = add(login_as(app, owner), phone=phone)
    assert response.status_code == 400
    assert sentence in response.get_data(as_text=True)
    assert people() == 1


def test_a_manager_needs_an_email(app, owner):
    response = add(login_as(app, owner), role="manager", phone="0712345678")
    assert response.status_code == 400
    assert b"A manager needs an email" in response.data and people() == 1


def test_someone_with_neither_email_nor_phone_is_refused(app, owner):
    response = add(login_as(app, owner))
    assert response.status_code == 400
    assert b"Enter their email, or a cashier&#39;s phone number." in response.data
    assert people() == 1


def test_the_staff_page_shows_the_phone_as_people_write_it(app, owner):
    client = login_as(app, owner)
    add(client, phone="254712345678")
    page = client.get("/settings/staff/").get_data(as_text=True)
    assert "0712 345 678" in page and "None" not in page


def test_a_sign_in_name_that_is_neither_email_nor_phone_gets_a_sentence(client, owner):
    response = client.post("/login", data={"email": "baraka", "password": "whatever12"})
    assert b"Enter your email, or your phone number like 0712 345 678." in response.data


# Every text input on the auth and staff pages: (page, input name, its longest value).
def _inputs(html: str) -> list[dict]:
    found = []
    for tag in re.findall(r"<input\b[^>]*>", html):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        if attrs.get("type") in ("text", "email", "password", "tel") and "readonly" not in tag:
            found.append(attrs)
    return found


def _field_block(html: str, name: str) -> str:
    start = html.index(f'name="{name}"')
    return html[start : html.index("</div>", start)]


def test_every_text_field_states_its_longest_value(app, owner):
    signed_out = fresh(app)
    owner_client = login_as(app, owner)
    from app.auth import accounts

    token = accounts.reissue_link(owner, None)
    pages = {
        "/login": signed_out,
        "/signup": signed_out,
        "/forgot-password": signed_out,
        f"/set-password/{token}": fresh(app),
        "/settings/staff/": owner_client,
    }
    seen = 0
    for path, client in pages.items():
        html = client.get(path).get_data(as_text=True)
        fields = _inputs(html)
        assert fields, path
        for attrs in fields:
            limit = attrs.get("maxlength")
            assert limit and int(limit) > 0, (path, attrs)
            hint = _field_block(html, attrs["name"])
            assert re.search(rf'class="hint">[^<]*\b{limit} characters', hint), (path, attrs)
            seen += 1
    assert seen >= 12


@pytest.mark.parametrize(
    ("path", "data", "sentence"),
    [
        ("/signup", {"bar_name": "B" * 121}, "The bar&#39;s name has at most 120 characters."),
        ("/signup", {"owner_name": "O" * 300}, "Your name has at most 120 characters."),
        ("/signup", {"password": "p" * 201}, "A password has at most 200 characters."),
        ("/login", {"password": "p" * 201}, "A password has at most 200 characters."),
        ("/login", {"email": "e" * 255}, "An email address has at most 254 characters."),
    ],
)
def test_a_value_longer_than_stated_is_refused_with_a_sentence(client, path, data, sentence):
    form = {"bar_name": "Bar", "owner_name": "Me", "email": "me@bar.example.com"}
    response = client.post(path, data={**form, "password": "long enough pass", **data})
    assert response.status_code == 200
    assert sentence in response.get_data(as_text=True)

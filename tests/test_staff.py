"""The owner's staff page: adding people, set-password links, deactivation."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent, SetPasswordLink, User, utcnow
from tests.conftest import Client, login_as


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

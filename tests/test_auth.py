"""Sign-up, signing in and out, remembering, throttling and CSRF."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import AuditEvent, Bar, User
from tests.conftest import Client

SIGNUP = {
    "bar_name": "Mama Oliech's Bar",
    "owner_name": "Grace Oliech",
    "email": "Grace@Oliech.example.com",
    "password": "a long enough password",
}
NO_MATCH = b"That email or phone number and password do not match an active account."


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_signup_creates_the_bar_and_its_owner_and_signs_in(client):
    response = client.post("/signup", data=SIGNUP)
    assert response.status_code == 302
    bar = db.session.scalar(select(Bar))
    owner = db.session.scalar(select(User))
    assert (bar.name, bar.slug, bar.setup_state) == (
        "Mama Oliech's Bar",
        "mama-oliechs-bar",
        "no_credentials",
    )
    assert (owner.email, owner.role, owner.bar_id) == ("grace@oliech.example.com", "owner", bar.id)
    assert owner.password_hash.startswith("scrypt:")
    page = client.get("/dashboard")
    assert b"Mama Oliech&#39;s Bar" in page.data
    assert db.session.scalar(select(AuditEvent.action)) == "bar.created"


def test_signup_with_a_taken_email_says_so_and_writes_nothing(client, owner):
    response = client.post("/signup", data={**SIGNUP, "email": owner.email.upper()})
    assert response.status_code == 200
    assert b"An account with this email already exists." in response.data
    assert count(Bar) == 1 and count(User) == 1


def test_signup_rejects_a_short_password_with_a_clear_message(client):
    response = client.post("/signup", data={**SIGNUP, "password": "short"})
    assert b"Use at least 10 characters." in response.data
    assert count(Bar) == 0


def test_same_bar_name_gets_its_own_slug(client, bar):
    client.post("/signup", data={**SIGNUP, "bar_name": bar.name})
    slugs = sorted(db.session.scalars(select(Bar.slug)))
    assert slugs == sorted([bar.slug, f"{bar.slug}-2"])


def test_owner_logs_in_and_out(client, owner):
    assert client.login(owner).headers["Location"] == "/dashboard"
    assert client.get("/dashboard").status_code == 200
    assert client.post("/logout").status_code == 302
    response = client.get("/dashboard")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_wrong_password_is_refused_with_one_message(client, owner):
    response = client.login(owner, password="not the password")
    assert response.status_code == 200
    assert NO_MATCH in response.data
    assert client.get("/dashboard").status_code == 302


def test_unknown_email_gets_the_same_answer_as_a_wrong_password(client, owner):
    response = client.post("/login", data={"email": "nobody@example.com", "password": "whatever12"})
    assert NO_MATCH in response.data


def test_login_only_follows_local_next_urls(client, owner):
    response = client.post(
        "/login?next=https://evil.example.com/",
        data={"email": owner.email, "password": "correct horse battery"},
    )
    assert response.headers["Location"] == "/dashboard"
    client.post("/logout")
    response = client.post(
        "/login?next=/settings/staff/",
        data={"email": owner.email, "password": "correct horse battery"},
    )
    assert response.headers["Location"] == "/settings/staff/"


# Every way found to make a browser leave the host after sign-in. Each is the query string as it
# travels on the wire; a browser drops tabs and newlines, trims leading spaces and control
# characters, and reads a backslash as a slash, so most of these are "//evil.example".
REDIRECT_TRICKS = [
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "//evil.example",
    "///evil.example",
    "////evil.example/x",
    "/%09/evil.example",
    "/%0a/evil.example",
    "/%0d/evil.example",
    "%09//evil.example",
    "%20//evil.example",
    "%00//evil.example",
    "/%5Cevil.example",
    "%5C%5Cevil.example",
    "/%5C/evil.example",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%252F/evil.example",
    "/%25252F%25252Fevil.example",
    "/%2509/evil.example",
    "/%5c%5cevil.example",
    "%2f%5cevil.example",
    "/%0B/evil.example",
    "/%7F/evil.example",
    "evil.example",
    "%E3%80%82/evil.example",
]


@pytest.mark.parametrize("trick", REDIRECT_TRICKS)
def test_sign_in_never_redirects_off_this_host(client, owner, trick):
    response = client.post(
        f"/login?next={trick}", data={"email": owner.email, "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard"


@pytest.mark.parametrize(
    ("wire", "location"),
    [
        ("/settings/staff/", "/settings/staff/"),
        ("/payments/%3Fstatus%3Dpaid%26page%3D2", "/payments/?status=paid&page=2"),
        ("/tabs/3%23pay", "/tabs/3#pay"),
        ("/payments/%3Fphone%3D%252B254708374149", "/payments/?phone=%2B254708374149"),
    ],
)
def test_sign_in_follows_a_path_on_this_host(client, owner, wire, location):
    response = client.post(
        f"/login?next={wire}", data={"email": owner.email, "password": "correct horse battery"}
    )
    assert response.headers["Location"] == location


def test_too_many_failed_logins_for_one_account_answer_429(app, client, owner):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "3 per 5 minutes"
    for _ in range(3):
        assert client.login(owner, password="wrong password").status_code == 200
    response = client.login(owner)  # even the right password waits now
    assert response.status_code == 429
    assert b"Too many attempts" in response.data
    assert client.get("/dashboard").status_code == 302


def test_too_many_failed_logins_from_one_address_answer_429(app, client, owner):
    app.config["LOGIN_LIMIT_PER_ADDRESS"] = "4 per 5 minutes"
    for n in range(4):
        client.post("/login", data={"email": f"guess{n}@example.com", "password": "guess guess"})
    assert client.login(owner).status_code == 429


def test_successful_logins_do_not_use_up_the_limit(app, client, owner):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "2 per 5 minutes"
    for _ in range(4):
        assert client.login(owner).status_code == 302
        client.post("/logout")


def test_a_form_posted_without_the_csrf_token_is_rejected_and_writes_nothing(client):
    response = client.post("/signup", data=SIGNUP, csrf=False)
    assert response.status_code == 400
    assert b"This form has expired" in response.data
    assert count(Bar) == 0


def test_the_csrf_token_is_accepted_from_the_htmx_header(client, owner):
    token = client.csrf_token()
    response = client.post(
        "/login",
        data={"email": owner.email, "password": "correct horse battery"},
        headers={"X-CSRFToken": token},
        csrf=False,
    )
    assert response.status_code == 302


def test_remember_me_keeps_the_person_signed_in_without_the_session_cookie(client, owner):
    client.login(owner, remember="y")
    remember = client.get_cookie("remember_token")
    assert remember is not None and remember.http_only
    client.delete_cookie("session")
    assert client.get("/dashboard").status_code == 200


def test_sessions_survive_a_restart(app, client, owner, test_config):
    client.login(owner)
    cookie = client.get_cookie("session").value
    restarted = create_app(dict(test_config))
    restarted.test_client_class = Client
    other = restarted.test_client()
    other.set_cookie("session", cookie)
    with restarted.app_context():
        assert other.get("/dashboard").status_code == 200
        db.session.remove()
        db.engine.dispose()


def test_a_password_change_signs_out_other_sessions(app, client, owner):
    client.login(owner)
    owner.set_password("a brand new password", app.config["PASSWORD_HASH_METHOD"])
    db.session.commit()
    assert client.get("/dashboard").status_code == 302


def test_session_cookie_is_httponly_and_lax(client, owner):
    response = client.login(owner)
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in header and "SameSite=Lax" in header


def test_a_cashier_lands_on_the_tab_list(client, cashier):
    assert client.login(cashier).headers["Location"] == "/tabs/"


# One email rule: every way a person is made refuses what the sign-in form would refuse.
UNSIGNABLE_EMAILS = [
    "owner",  # no domain
    "owner@",
    "@bar.example.com",
    "owner@localhost",  # no dot in the domain
    "owner@bar",
    "owner@bar..example.com",
    "owner name@bar.example.com",
    "owner@bar.example.com.",
    "o" * 250 + "@bar.example.com",  # over 254 characters
]


@pytest.mark.parametrize("email", UNSIGNABLE_EMAILS)
def test_flask_bars_create_refuses_an_email_sign_in_would_refuse(app, runner, client, email):
    result = runner.invoke(
        args=["bars", "create", "--name", "Odd Email Bar", "--owner-email", email],
        env={"PESATAB_OWNER_PASSWORD": "a strong password"},
    )
    assert result.exit_code != 0
    assert (
        "at most 254 characters" in result.output or "Enter a valid email address" in result.output
    )
    assert db.session.scalar(select(func.count(Bar.id))) == 0
    # ...because the sign-in form would never let that owner in:
    page = client.post("/login", data={"email": email, "password": "a strong password"})
    assert page.status_code == 200 and b"Signed in" not in page.data


@pytest.mark.parametrize("email", ["owner@localhost", "not-an-email"])
def test_signup_staff_and_operators_share_the_rule(app, email):
    from app.auth import accounts
    from app.ops import operators

    with pytest.raises(accounts.AccountError, match="Enter a valid email address"):
        accounts.create_bar_with_owner("Bar", "Owner", email, "a strong password")
    with pytest.raises(accounts.AccountError, match="Enter a valid email address"):
        operators.create_operator("Op", email, "a long operator password")
    assert db.session.scalar(select(func.count(User.id))) == 0


def test_an_owner_made_by_the_cli_can_sign_in(runner, client):
    result = runner.invoke(
        args=[
            "bars",
            "create",
            "--name",
            "Kwa Mama",
            "--owner-email",
            " Mama@Kwa-Mama.example.com ",
        ],
        env={"PESATAB_OWNER_PASSWORD": "a strong password"},
    )
    assert result.exit_code == 0, result.output
    response = client.post(
        "/login", data={"email": "mama@kwa-mama.example.com", "password": "a strong password"}
    )
    assert response.status_code == 302

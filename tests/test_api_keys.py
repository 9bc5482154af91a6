"""API keys: the owner makes and revokes them; operators make them from the command line."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import select

from app.cli.api import api_keys_cli
from app.cli.api import init_app as init_cli
from app.extensions import db
from app.models import ApiKey, AuditEvent
from tests.conftest import login_as

KEY = re.compile(r"pt_live_[A-Za-z0-9_-]{43}")


@pytest.fixture
def owner_client(app, owner):
    return login_as(app, owner)


def make_key(owner_client, label: str = "Till 1 POS") -> tuple[str, str]:
    """Create a key on the page; returns the page and the key it showed."""
    page = owner_client.post("/settings/api-keys/", data={"label": label}).get_data(as_text=True)
    found = KEY.findall(page)
    assert len(found) == 1, page
    return page, found[0]


def api_status(client, secret: str) -> int:
    return client.get("/api/v1/payments", headers={"Authorization": f"Bearer {secret}"}).status_code


def test_a_new_key_is_shown_once_and_stored_as_a_hash(owner_client, owner):
    page, secret = make_key(owner_client)
    assert "shown <strong>only this once</strong>" in page
    key = db.session.scalar(select(ApiKey))
    assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert (key.prefix, key.label, key.bar_id, key.created_by_id) == (
        secret[:12],
        "Till 1 POS",
        owner.bar_id,
        owner.id,
    )
    listing = owner_client.get("/settings/api-keys/").get_data(as_text=True)
    assert secret not in listing and secret[12:20] not in listing
    assert f"<code>{key.prefix}…</code>" in listing and "Till 1 POS" in listing


def test_the_page_showing_the_key_is_not_cached(owner_client):
    response = owner_client.post("/settings/api-keys/", data={"label": "Till 1 POS"})
    assert response.headers["Cache-Control"] == "no-store"


def test_a_new_key_works_and_its_use_shows_on_the_list(owner_client, client):
    _, secret = make_key(owner_client)
    assert "Never" in owner_client.get("/settings/api-keys/").get_data(as_text=True)
    assert api_status(client, secret) == 200
    assert "Never" not in owner_client.get("/settings/api-keys/").get_data(as_text=True)
    assert db.session.scalar(select(ApiKey.last_used_at)) is not None


def test_making_and_revoking_are_audited_without_the_key(owner_client, owner):
    _, secret = make_key(owner_client)
    key = db.session.scalar(select(ApiKey))
    owner_client.post(f"/settings/api-keys/{key.id}/revoke")
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action.like("api_key.%")).order_by(AuditEvent.id)
    ).all()
    assert [(e.action, e.user_id, e.bar_id) for e in events] == [
        ("api_key.created", owner.id, owner.bar_id),
        ("api_key.revoked", owner.id, owner.bar_id),
    ]
    assert all(secret not in repr(e.details) and e.details["prefix"] == key.prefix for e in events)


def test_a_revoked_key_stops_working(owner_client, client):
    _, secret = make_key(owner_client)
    key = db.session.scalar(select(ApiKey))
    response = owner_client.post(f"/settings/api-keys/{key.id}/revoke", follow_redirects=True)
    assert "is revoked; requests with it now get 401" in response.get_data(as_text=True)
    assert api_status(client, secret) == 401
    listing = owner_client.get("/settings/api-keys/").get_data(as_text=True)
    assert "Revoked" in listing and f"/settings/api-keys/{key.id}/revoke" not in listing


def test_revoking_twice_changes_nothing(owner_client):
    make_key(owner_client)
    key = db.session.scalar(select(ApiKey))
    owner_client.post(f"/settings/api-keys/{key.id}/revoke")
    revoked_at = db.session.scalar(select(ApiKey.revoked_at))
    assert owner_client.post(f"/settings/api-keys/{key.id}/revoke").status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(ApiKey.revoked_at)) == revoked_at
    assert (
        len(
            db.session.scalars(
                select(AuditEvent).where(AuditEvent.action == "api_key.revoked")
            ).all()
        )
        == 1
    )


def test_revoking_needs_the_csrf_token(owner_client, client):
    _, secret = make_key(owner_client)
    key = db.session.scalar(select(ApiKey))
    assert owner_client.post(f"/settings/api-keys/{key.id}/revoke", csrf=False).status_code == 400
    assert api_status(client, secret) == 200


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("", "Give the key a name"),
        ("   ", "Give the key a name"),
        ("x" * 61, "at most 60 characters"),
    ],
)
def test_a_key_needs_a_sensible_name(owner_client, label, message):
    response = owner_client.post("/settings/api-keys/", data={"label": label})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and not KEY.search(page)
    assert db.session.scalar(select(ApiKey)) is None


@pytest.mark.parametrize("role", ["manager", "cashier"])
def test_only_the_owner_manages_keys(app, factory, bar, owner_client, role):
    make_key(owner_client)
    key = db.session.scalar(select(ApiKey))
    staff = login_as(app, factory.user(bar, role))
    assert staff.get("/settings/api-keys/").status_code == 403
    assert staff.post("/settings/api-keys/", data={"label": "Mine"}).status_code == 403
    assert staff.post(f"/settings/api-keys/{key.id}/revoke").status_code == 403
    db.session.expire_all()
    assert db.session.scalar(select(ApiKey.revoked_at)) is None
    assert len(db.session.scalars(select(ApiKey)).all()) == 1


def test_another_bars_owner_gets_404_and_sees_none_of_ours(app, owner_client, outsider, client):
    _, secret = make_key(owner_client)
    key = db.session.scalar(select(ApiKey))
    thief = login_as(app, outsider)
    assert thief.post(f"/settings/api-keys/{key.id}/revoke").status_code == 404
    page = thief.get("/settings/api-keys/").get_data(as_text=True)
    assert (
        key.prefix not in page and f'id="api-key-{key.id}"' not in page and "No keys yet." in page
    )
    assert api_status(client, secret) == 200


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/settings/api-keys/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_the_cli_prints_a_working_key_once(app, runner, bar, client):
    init_cli(app)
    result = runner.invoke(args=["api-keys", "create", "--bar", bar.slug, "--label", "Back office"])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert KEY.fullmatch(secret)
    assert result.output.count(secret) == 1 and "shown only now" in result.stderr
    key = db.session.scalar(select(ApiKey))
    assert (key.bar_id, key.label, key.created_by_id) == (bar.id, "Back office", None)
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "api_key.created"))
    assert audit.details["by"] == "operator" and secret not in repr(audit.details)
    assert api_status(client, secret) == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bar", "no-such-bar", "--label", "POS"], "No bar with the slug 'no-such-bar'"),
        (["--label", "   "], "Give the key a name"),
    ],
)
def test_the_cli_refuses_what_it_cannot_do(runner, bar, args, message):
    args = args if "--bar" in args else ["--bar", bar.slug, *args]
    result = runner.invoke(api_keys_cli, ["create", *args])
    assert result.exit_code == 1 and message in result.output
    assert not KEY.search(result.output)
    assert db.session.scalar(select(ApiKey)) is None


# A sandbox bar's keys say so: pt_test_, no real money behind them. Both kinds open the API.

TEST_KEY = re.compile(r"pt_test_[A-Za-z0-9_-]{43}")


def set_environment(bar, environment: str) -> None:
    from app.settings import vault
    from app.simulator import (
        SANDBOX_PASSKEY,
        SANDBOX_SHORTCODE,
        SIM_CONSUMER_KEY,
        SIM_CONSUMER_SECRET,
    )

    vault.save(
        bar,
        vault.CredentialInput(
            environment=environment,
            kind="paybill",
            shortcode=SANDBOX_SHORTCODE,
            till_number=None,
            consumer_key=SIM_CONSUMER_KEY,
            consumer_secret=SIM_CONSUMER_SECRET,
            passkey=SANDBOX_PASSKEY,
        ),
    )


def test_a_sandbox_bars_key_is_a_test_key_and_works(app, owner_client, bar, outsider, client):
    set_environment(bar, "sandbox")
    page = owner_client.post("/settings/api-keys/", data={"label": "Till 1 POS"})
    found = TEST_KEY.findall(page.get_data(as_text=True))
    assert len(found) == 1 and not KEY.search(page.get_data(as_text=True))
    secret = found[0]
    key = db.session.scalar(select(ApiKey))
    assert key.prefix == secret[:12] and key.prefix.startswith("pt_test_")
    assert f"<code>{key.prefix}…</code>" in owner_client.get("/settings/api-keys/").get_data(
        as_text=True
    )
    assert api_status(client, secret) == 200
    assert api_status(client, "pt_test_" + secret[8:-1]) == 401  # a key is checked whole
    owner_client.post(f"/settings/api-keys/{key.id}/revoke")
    assert api_status(client, secret) == 401
    # A production bar's keys stay live keys.
    set_environment(outsider.bar, "production")
    _, live_key = make_key(login_as(app, outsider))
    assert api_status(client, live_key) == 200


def test_live_and_test_keys_work_side_by_side(app, runner, owner_client, bar, client):
    _, live_key = make_key(owner_client, "Before the sandbox")  # no credentials yet: live
    set_environment(bar, "sandbox")
    init_cli(app)
    result = runner.invoke(args=["api-keys", "create", "--bar", bar.slug, "--label", "Back office"])
    assert result.exit_code == 0, result.output
    test_key = result.stdout.strip()
    assert TEST_KEY.fullmatch(test_key)
    assert api_status(client, live_key) == 200 and api_status(client, test_key) == 200
    for wrong in ("pt_prod_" + test_key[8:], test_key.replace("pt_test_", "pt_live_")):
        assert api_status(client, wrong) == 401

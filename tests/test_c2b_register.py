"""Registering a bar's C2B URLs, over real HTTP against the simulator: managers and owners may,
each refusal Daraja gives is one clear sentence (a URL word, no C2B product on the app, URLs
registered already in production), PUBLIC_BASE_URL is checked before Daraja is asked, and the
page shows the registered state, the version and the last confirmation seen in EAT."""

from __future__ import annotations

import html
import json
from datetime import datetime

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEvent
from app.mpesa.classify import classify
from app.payments import c2b, c2b_refusals
from app.settings import vault
from app.simulator import (
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    SIM_CONSUMER_KEY,
    SIM_CONSUMER_SECRET,
    errors,
)
from app.simulator.faults import Faults
from tests.conftest import login_as

REGISTER = "/settings/mpesa/c2b/register"


def register_calls(sim_state) -> list[dict]:
    return [e for e in sim_state.events("request") if e["path"].endswith("/registerurl")]


def said(response) -> str:
    assert response.status_code == 200
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def production(factory, bar, app, live):
    """`bar` on production credentials; Daraja is still the simulator (DARAJA_BASE_URL), and
    PesaTab's public address is https, as production needs."""
    vault.save(
        bar,
        vault.CredentialInput(
            environment="production",
            kind="paybill",
            shortcode=SANDBOX_SHORTCODE,
            till_number=None,
            consumer_key=SIM_CONSUMER_KEY,
            consumer_secret=SIM_CONSUMER_SECRET,
            passkey=SANDBOX_PASSKEY,
        ),
    )
    app.config["DARAJA_BASE_URL"] = f"{live.url}/_daraja"
    app.config["PUBLIC_BASE_URL"] = "https://desk.pesatab.example"


@pytest.fixture
def paybill(factory, bar, live):
    factory.live_credentials(bar)
    return bar


def test_a_manager_registers_with_v1_and_sees_the_state(app, paybill, manager, sim_state):
    desk = login_as(app, manager)
    assert "Not registered yet." in said(desk.get("/settings/mpesa/c2b"))
    page = said(desk.post(REGISTER, data={"v1": "1"}, follow_redirects=True))
    assert "Registered: money paid from the M-Pesa menu now reaches PesaTab." in page
    assert "(with C2B v1)" in page and 'name="v1" value="1" checked' in page
    (call,) = register_calls(sim_state)
    assert call["path"].endswith("/mpesa/c2b/v1/registerurl") and call["status"] == 200
    assert sim_state.c2b_urls(SANDBOX_SHORTCODE)[0].endswith("/confirmation")
    assert c2b.registration_of(paybill).registered_at is not None


def test_the_owner_lands_back_on_the_mpesa_page_and_a_cashier_may_not(app, paybill, owner, cashier):
    response = login_as(app, owner).post(REGISTER)
    assert response.headers["Location"].endswith("/settings/mpesa/#c2b")
    assert c2b.registered_version(paybill) == "v2"
    assert login_as(app, cashier).post(REGISTER).status_code == 403


def test_the_last_confirmation_is_shown_in_eat(app, paybill, owner):
    registration = c2b.registration_for(paybill)
    registration.last_confirmation_at = datetime(2026, 12, 7, 18, 5)  # naive UTC
    db.session.commit()
    page = said(login_as(app, owner).get("/settings/mpesa/"))
    assert "Last payment seen 07 Dec 2026, 21:05 EAT." in page


@pytest.mark.parametrize("word", ["safaricom", "mpesa", "exec", "sql", "query"])
def test_a_refused_word_in_public_base_url_is_named_before_daraja_is_asked(
    app, paybill, owner, live, sim_state, word
):
    app.config["PUBLIC_BASE_URL"] = f"{live.url}/{word}-desk"
    page = said(login_as(app, owner).post(REGISTER, follow_redirects=True))
    assert f"PUBLIC_BASE_URL ({live.url}/{word}-desk) contains “{word}”" in page
    assert f"must not contain '{word}'" in page and "Not registered yet." in page
    assert register_calls(sim_state) == []


def test_a_url_secret_never_holds_a_refused_word(paybill):
    registration = c2b.registration_for(paybill)
    registration.url_secret = "abcSQLdefghijklmnopqrstuvwxyz012"
    db.session.commit()
    fresh = c2b.registration_for(paybill).url_secret
    assert fresh != "abcSQLdefghijklmnopqrstuvwxyz012" and c2b_refusals.refused_word(fresh) is None
    registration.url_secret, registration.registered_at = "abcCMDdefghijkl", datetime(2026, 1, 1)
    db.session.commit()  # registered: Safaricom calls this one, so it stays
    assert c2b.registration_for(paybill).url_secret == "abcCMDdefghijkl"


def test_an_app_without_the_c2b_v2_product_is_told_to_use_v1_or_add_it(
    app, paybill, owner, sim_state
):
    sim_state.set_faults(c2b_product="v1")
    desk = login_as(app, owner)
    page = said(desk.post(REGISTER, follow_redirects=True))
    assert (
        "Daraja answered “no apiproduct match found” (401.003.01): the app on the Daraja portal "
        "has no M-Pesa C2B v2 product. Add the C2B product to the app, or register with C2B v1 "
        "instead" in page
    )
    assert len(register_calls(sim_state)) == 1  # refused once, not retried
    page = said(desk.post(REGISTER, data={"v1": "1"}, follow_redirects=True))
    assert "Registered: money paid from the M-Pesa menu now reaches PesaTab." in page


def test_an_app_with_no_c2b_product_at_all_is_told_so_for_v1_too(app, paybill, owner, sim_state):
    sim_state.set_faults(c2b_product="none")
    page = said(login_as(app, owner).post(REGISTER, data={"v1": "1"}, follow_redirects=True))
    assert "has no M-Pesa C2B v1 product" in page and "register with C2B v2 instead" in page
    assert c2b.registration_of(paybill).registered_at is None


def test_urls_registered_already_in_production_are_said_so(
    app, factory, bar, owner, live, sim_state
):
    production(factory, bar, app, live)
    sim_state.set_faults(c2b_register_once=True)
    sim_state.register_c2b(SANDBOX_SHORTCODE, "https://old.example/c", "https://old.example/v")
    page = said(login_as(app, owner).post(REGISTER, follow_redirects=True))
    assert (
        "Daraja says the C2B URLs of short code 174379 are registered already. In production "
        "they are registered once; changing them goes through Safaricom's self-service portal."
        in page
    )
    assert len(register_calls(sim_state)) == 1  # Daraja's 500.003.1001 is not retried
    assert sim_state.c2b_urls(SANDBOX_SHORTCODE)[0] == "https://old.example/c"
    assert c2b.registration_of(bar).registered_at is None
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "c2b.already_registered" in actions


def test_production_urls_pesatab_registered_are_not_sent_again_blindly(
    app, factory, bar, owner, live, sim_state
):
    production(factory, bar, app, live)
    sim_state.set_faults(c2b_register_once=True)
    desk = login_as(app, owner)
    assert "Registered: money" in said(desk.post(REGISTER, follow_redirects=True))
    page = said(desk.post(REGISTER, follow_redirects=True))
    assert "The C2B URLs of short code 174379 were registered on " in page
    assert "changes go through Safaricom's self-service portal" in page
    assert 'id="c2b-production"' in page and 'name="again"' in page
    assert len(register_calls(sim_state)) == 1  # the second press never reached Daraja
    page = said(desk.post(REGISTER, data={"again": "1"}, follow_redirects=True))
    assert "are registered already" in page and len(register_calls(sim_state)) == 2


def test_production_needs_an_https_public_base_url(app, factory, bar, owner, live, sim_state):
    production(factory, bar, app, live)
    app.config["PUBLIC_BASE_URL"] = "http://desk.pesatab.example"
    page = said(login_as(app, owner).post(REGISTER, follow_redirects=True))
    assert "In production Daraja takes only https:// addresses" in page
    assert register_calls(sim_state) == []


def test_a_refusal_echoing_the_url_never_shows_its_secret(app, paybill, owner, monkeypatch):
    from app.mpesa import DarajaClient, DarajaError

    def echoing(self, creds, *, confirmation_url, **kwargs):
        raise DarajaError(f"Unexpected URL {confirmation_url}", error_code="500.001.1001")

    monkeypatch.setattr(DarajaClient, "c2b_register", echoing)
    page = said(login_as(app, owner).post(REGISTER, follow_redirects=True))
    secret = c2b.registration_for(paybill).url_secret
    assert "Daraja did not register the URLs (Unexpected URL " in page
    assert "/hooks/c2b/***/confirmation" in page and secret not in page


def test_daraja_refusing_a_url_names_it_and_public_base_url():
    body = json.dumps(errors.bad_request("ConfirmationURL").body()).encode()
    err = classify(400, body)
    assert c2b_refusals.kind_of(err) == c2b_refusals.URL_REFUSED
    text = c2b_refusals.sentence(err, version="v2", shortcode="174379", base="https://x.example")
    assert text.startswith("Daraja refused the ConfirmationURL PesaTab gave it")
    assert "https://x.example" in text


def test_the_simulator_refuses_an_unknown_c2b_product_setting():
    with pytest.raises(ValueError, match="c2b_product"):
        Faults(c2b_product="v3")


def test_the_command_needs_again_for_a_production_bar_registered_already(
    app, factory, bar, live, runner, sim_state
):
    production(factory, bar, app, live)
    assert runner.invoke(args=["c2b", "register", "--bar", bar.slug]).exit_code == 0
    refused = runner.invoke(args=["c2b", "register", "--bar", bar.slug])
    assert refused.exit_code != 0 and "were registered on" in refused.output
    again = runner.invoke(args=["c2b", "register", "--bar", bar.slug, "--again"])
    assert again.exit_code == 0, again.output
    assert len(register_calls(sim_state)) == 2

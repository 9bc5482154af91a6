"""Who may drive the simulator's control API, and what its record shows over HTTP.

Mounted in PesaTab (/_daraja/_control/...): a signed-in operator, or the instance's secret in
X-Simulator-Secret; anyone else (signed out, a wrong secret, a bar's owner, manager or cashier)
gets the 404 of an unknown path and changes nothing. The record and the transactions served
over HTTP never carry a callback token; the in-process state still does, for tests.
"""

from __future__ import annotations

import os
import socket
import stat

import pytest
import requests
from flask import Flask

import app.simulator as simulator
from app import create_app
from app.config import ConfigError
from app.ops.operators import create_operator
from app.payments.push import PushRequest, start_push
from app.simulator import (
    CONTROL_ENV,
    CONTROL_HEADER,
    INSTANT_TIMING,
    STATE_EXTENSION,
    SimulatorState,
    create_sim_app,
    register_cli,
)
from app.simulator.control import redact_url
from app.simulator.mount import CONTROL_CONFIG, CONTROL_EXTENSION, load_or_create_secret
from app.simulator.testing import SimulatorClient
from tests.factories import Factory

PREFIX = "/_daraja"
STRANGER_APP = {"key": "stranger-key", "secret": "stranger-secret"}
STRANGER_SHORTCODE = {"shortcode": "7654321", "passkey": "stranger-passkey", "kind": "paybill"}
VALIDATION_ON = {"shortcode": "174379", "enabled": True}

# What each control call does to the state, seen from outside: (state, token issued before).
EFFECTS = {
    "faults_set": lambda state, token: state.faults.callback_lost,
    "faults_cleared": lambda state, token: not state.faults.lock_subscriber,
    "record_forgotten": lambda state, token: state.events() == [],
    "tokens_revoked": lambda state, token: not state.token_valid(token),
    "app_added": lambda state, token: state.app("stranger-key") is not None,
    "shortcode_added": lambda state, token: state.shortcode("7654321") is not None,
    "validation_on": lambda state, token: bool(state.c2b_validation("174379").get("enabled")),
}
# Every control route: method, path, JSON body, status when allowed, its effect.
ROUTES = [
    ("GET", "/_control/faults", None, 200, None),
    ("POST", "/_control/faults", {"callback_lost": True}, 200, "faults_set"),
    ("DELETE", "/_control/faults", None, 200, "faults_cleared"),
    ("POST", "/_control/reset", None, 200, "record_forgotten"),
    ("POST", "/_control/revoke-tokens", None, 200, "tokens_revoked"),
    ("GET", "/_control/record", None, 200, None),
    ("GET", "/_control/transactions", None, 200, None),
    ("POST", "/_control/apps", STRANGER_APP, 201, "app_added"),
    ("POST", "/_control/shortcodes", STRANGER_SHORTCODE, 201, "shortcode_added"),
    ("GET", "/_control/c2b-validation", None, 200, None),
    ("POST", "/_control/c2b-validation", VALIDATION_ON, 200, "validation_on"),
    ("POST", "/_control/qr-scan", {"payload": "not a QR"}, 400, None),
]
ROUTE_IDS = [f"{method} {path}" for method, path, *_ in ROUTES]


@pytest.fixture
def secret(app) -> str:
    return app.extensions[CONTROL_EXTENSION]


@pytest.fixture
def token(sim_state) -> str:
    """A state every control call would visibly change: a fault on, a token, one event."""
    sim_state.set_faults(lock_subscriber=True)
    sim_state.add_event("request", api="probe")
    return sim_state.issue_token()


@pytest.fixture
def operator(app):
    return create_operator("Nuru Operator", "nuru@ops.pesatab.example.com", Factory.PASSWORD)


def call(client, method, path, body, headers=None, **kwargs):
    return client.open(PREFIX + path, method=method, json=body, headers=headers or {}, **kwargs)


def assert_refused(response, path, state, token) -> None:
    """The unknown-path 404 of Daraja's gateway, and nothing changed."""
    assert response.status_code == 404
    fault = response.get_json()["fault"]
    assert fault["faultstring"] == f"Unable to identify proxy for host: default and url: {path}"
    assert fault["detail"]["errorcode"] == "messaging.adaptors.http.flow.ApplicationNotFound"
    changed = [name for name, effect in EFFECTS.items() if effect(state, token)]
    assert changed == []


def assert_allowed(response, status, effect, state, token) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    if effect is not None:
        assert EFFECTS[effect](state, token)


def test_every_mounted_control_route_is_in_the_table_and_refuses_a_stranger(
    app, client, sim_state, token
):
    mounted = {
        (method, rule.rule.removeprefix(PREFIX))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("daraja_sim.control_")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert mounted == {(method, path) for method, path, *_ in ROUTES}
    for method, path in sorted(mounted):
        assert_refused(call(client, method, path, None), path, sim_state, token)


# Refused ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body", "status", "effect"), ROUTES, ids=ROUTE_IDS)
def test_signed_out_without_a_secret_is_refused(
    client, sim_state, token, method, path, body, status, effect
):
    assert_refused(call(client, method, path, body), path, sim_state, token)


@pytest.mark.parametrize(("method", "path", "body", "status", "effect"), ROUTES, ids=ROUTE_IDS)
def test_a_wrong_secret_is_refused_on_every_route(
    client, sim_state, token, method, path, body, status, effect
):
    headers = {CONTROL_HEADER: "not-the-simulator-secret-0123456789"}
    assert_refused(call(client, method, path, body, headers), path, sim_state, token)


@pytest.mark.parametrize("wrong", ["", "cut", "prefix", "longer", "upper"])
def test_near_misses_of_the_secret_are_refused(client, sim_state, token, secret, wrong):
    given = {
        "": "",
        "cut": secret[:-1],
        "prefix": secret[:16],
        "longer": secret + "0",
        "upper": secret.upper(),
    }[wrong]
    response = call(client, "POST", "/_control/reset", None, {CONTROL_HEADER: given})
    assert_refused(response, "/_control/reset", sim_state, token)


@pytest.mark.parametrize("role", ["owner", "manager", "cashier"])
@pytest.mark.parametrize(("method", "path", "body", "status", "effect"), ROUTES, ids=ROUTE_IDS)
def test_a_bars_people_are_refused(
    client, factory, bar, sim_state, token, role, method, path, body, status, effect
):
    client.login(factory.user(bar, role))
    assert_refused(call(client, method, path, body), path, sim_state, token)


def test_an_operators_unsafe_call_needs_the_csrf_token(client, operator, sim_state, token):
    client.login(operator)
    response = call(client, "POST", "/_control/reset", None, csrf=False)
    assert response.status_code == 400
    assert [name for name, effect in EFFECTS.items() if effect(sim_state, token)] == []


# Allowed ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body", "status", "effect"), ROUTES, ids=ROUTE_IDS)
def test_the_instance_secret_opens_every_route(
    client, sim_state, token, secret, method, path, body, status, effect
):
    assert_refused(call(client, method, path, body, csrf=False), path, sim_state, token)
    response = call(client, method, path, body, {CONTROL_HEADER: secret}, csrf=False)
    assert_allowed(response, status, effect, sim_state, token)


@pytest.mark.parametrize(("method", "path", "body", "status", "effect"), ROUTES, ids=ROUTE_IDS)
def test_a_signed_in_operator_opens_every_route(
    client, operator, sim_state, token, method, path, body, status, effect
):
    assert_refused(call(client, method, path, body), path, sim_state, token)
    client.login(operator)
    assert_allowed(call(client, method, path, body), status, effect, sim_state, token)


# No callback token over HTTP ----------------------------------------------------------------


def test_a_pesatab_payments_callback_token_is_not_in_the_record_served(
    app, live, factory, bar, sim_state, secret
):
    factory.live_credentials(bar)
    payment = start_push(
        bar,
        PushRequest(
            phone="254708374149",
            amount=2500,
            purpose="api",
            account_reference="API42",
            description="Bar tab",
        ),
    )
    assert sim_state.wait_for_callbacks(1, timeout=5)
    callback_token = payment.callback_token
    # In-process the record is whole, as the tests that read it need.
    (delivered,) = sim_state.events("callback")
    assert delivered["url"].endswith(f"/hooks/stk/{callback_token}")
    assert delivered["status"] == 200
    access_token = next(
        e["response"]["access_token"] for e in sim_state.events("request") if e["api"] == "oauth"
    )
    headers = {CONTROL_HEADER: secret}
    for path in ("/_control/record", "/_control/transactions"):
        served = requests.get(f"{live.url}{PREFIX}{path}", headers=headers, timeout=5)
        assert served.status_code == 200
        assert callback_token not in served.text
        assert access_token not in served.text
        assert f"{live.url}/hooks/stk/***" in served.text
    (callback,) = requests.get(
        f"{live.url}{PREFIX}/_control/record",
        params={"kind": "callback"},
        headers=headers,
        timeout=5,
    ).json()
    assert (callback["url"], callback["status"]) == (f"{live.url}/hooks/stk/***", 200)
    assert callback["checkout_request_id"] == payment.checkout_request_id


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_no_token_is_served_from_bodies_errors_or_dropped_callbacks(
    client, operator, sim_state, receiver
):
    refused, unreachable, dropped, garbled = (f"{n}" * 40 for n in "abcd")
    daraja = SimulatorClient(client, prefix=PREFIX)
    # A push Daraja refuses still has its CallBackURL in the recorded body.
    daraja.push(amount="450", callback_url=f"http://127.0.0.1:5000/hooks/stk/{refused}")
    # A callback that cannot be delivered: the error text names the path.
    daraja.push(callback_url=f"http://127.0.0.1:{_closed_port()}/hooks/stk/{unreachable}")
    assert sim_state.wait_for_callbacks(1, timeout=5)
    sim_state.set_faults(callback_lost=True)
    daraja.push(callback_url=receiver.url(f"hooks/stk/{dropped}"))
    # A body that is not JSON is kept as text.
    daraja.post(daraja.PUSH, f'{{"CallBackURL": "http://127.0.0.1:5000/hooks/stk/{garbled}", oops')
    (failed,) = sim_state.events("callback")
    assert failed["status"] is None and f"/hooks/stk/{unreachable}" in failed["error"]
    assert sim_state.events("callback_dropped")[0]["url"].endswith(dropped)
    assert garbled in sim_state.events("request")[-1]["body"]

    client.login(operator)
    record = call(client, "GET", "/_control/record", None).get_data(as_text=True)
    truth = call(client, "GET", "/_control/transactions", None).get_data(as_text=True)
    for served in (record, truth):
        for callback_token in (refused, unreachable, dropped, garbled):
            assert callback_token not in served
    assert "http://127.0.0.1:5000/hooks/stk/***" in record
    assert "/hooks/stk/***" in truth


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:5000/hooks/stk/abc123", "http://127.0.0.1:5000/hooks/stk/***"),
        ("https://bar.example.com/hooks/stk/abc123/", "https://bar.example.com/hooks/stk/***/"),
        ("https://h.example.com/cb?token=s3cr3t#frag", "https://h.example.com/***?***#***"),
        ("https://user:pass@h.example.com/cb", "https://***@h.example.com/***"),
        ("https://h.example.com", "https://h.example.com"),
    ],
)
def test_a_url_is_shown_without_its_secret_parts(url, shown):
    assert redact_url(url) == shown


# The standalone simulator -------------------------------------------------------------------


def test_a_standalone_simulator_without_a_secret_refuses_every_control_call():
    with SimulatorState(**INSTANT_TIMING) as state:
        sim = create_sim_app(state).test_client()
        for method, path, body, *_ in ROUTES:
            response = sim.open(path, method=method, json=body, headers={CONTROL_HEADER: ""})
            assert response.status_code == 404, path
        assert (state.faults.callback_lost, state.app("stranger-key")) == (False, None)


def test_a_standalone_simulator_opens_to_its_own_secret_only():
    own = "standalone-own-secret-0123456789"
    with SimulatorState(**INSTANT_TIMING) as state:
        sim = create_sim_app(state, control_secret=own).test_client()
        wrong = sim.post(
            "/_control/faults",
            json={"callback_lost": True},
            headers={CONTROL_HEADER: own[:-1] + "X"},
        )
        assert wrong.status_code == 404 and state.faults.callback_lost is False
        right = sim.post(
            "/_control/faults", json={"callback_lost": True}, headers={CONTROL_HEADER: own}
        )
        assert right.status_code == 200 and state.faults.callback_lost is True


def test_a_short_control_secret_is_refused():
    with pytest.raises(ValueError, match="16"):
        create_sim_app(SimulatorState(), control_secret="short")


def _serve_with_cli(monkeypatch) -> tuple[object, dict]:
    served = {}

    def fake_run_simple(host, port, application, threaded):
        served["app"] = application

    monkeypatch.setattr(simulator, "run_simple", fake_run_simple)
    host = Flask("host")
    register_cli(host)
    return host.test_cli_runner().invoke(args=["daraja-sim", "--port", "5077"]), served


def test_the_cli_prints_the_secret_it_made_and_the_simulator_takes_it(monkeypatch):
    monkeypatch.delenv(CONTROL_ENV, raising=False)
    result, served = _serve_with_cli(monkeypatch)
    assert result.exit_code == 0, result.output
    printed = result.output.split(f"{CONTROL_HEADER}: ", 1)[1].split()[0]
    sim = served["app"]
    assert sim.test_client().get("/_control/faults").status_code == 404
    answer = sim.test_client().get("/_control/faults", headers={CONTROL_HEADER: printed})
    assert answer.status_code == 200
    sim.extensions[STATE_EXTENSION].close()


def test_the_cli_takes_the_secret_from_the_environment_and_does_not_print_it(monkeypatch):
    given = "secret-from-the-environment-0123"
    monkeypatch.setenv(CONTROL_ENV, given)
    result, served = _serve_with_cli(monkeypatch)
    assert result.exit_code == 0 and given not in result.output
    sim = served["app"].test_client()
    assert sim.get("/_control/faults").status_code == 404
    assert sim.get("/_control/faults", headers={CONTROL_HEADER: given}).status_code == 200


def test_the_cli_refuses_a_short_secret_with_a_sentence(monkeypatch):
    monkeypatch.setenv(CONTROL_ENV, "short")
    result, served = _serve_with_cli(monkeypatch)
    assert result.exit_code != 0 and "app" not in served
    assert f"{CONTROL_ENV}: the simulator's control secret needs 16+ characters" in result.output


# The instance's secret, the demo, production --------------------------------------------------


def test_the_instance_secret_is_made_once_private_and_kept(tmp_path):
    first = load_or_create_secret(tmp_path / "instance")
    path = tmp_path / "instance" / "simulator_secret"
    assert len(first) >= 32 and path.read_text().strip() == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_secret(tmp_path / "instance") == first


def test_without_a_configured_secret_the_app_uses_the_instance_file(
    monkeypatch, tmp_path, test_config, sim_state
):
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    config = {k: v for k, v in test_config.items() if k != CONTROL_CONFIG}
    made = create_app({**config, "DARAJA_SIM_STATE": sim_state})
    secret = (tmp_path / "simulator_secret").read_text().strip()
    assert made.extensions[CONTROL_EXTENSION] == secret != test_config[CONTROL_CONFIG]
    with made.app_context():
        visitor = made.test_client()
        assert visitor.get(f"{PREFIX}/_control/faults").status_code == 404
        headers = {CONTROL_HEADER: secret}
        assert visitor.get(f"{PREFIX}/_control/faults", headers=headers).status_code == 200


def test_flask_demo_shows_the_control_secret(runner, secret):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0
    assert f"{CONTROL_HEADER}: {secret}" in result.output


def test_the_simulator_is_never_mounted_in_production(test_config, sim_state):
    production = {**test_config, "DARAJA_SIM_STATE": sim_state, "PESATAB_ENV": "production"}
    with pytest.raises(ConfigError, match="never mounted in production"):
        create_app(production)

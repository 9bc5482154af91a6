"""Logs: one line per event, with the request and the bar, and never a secret or a whole phone.

Two places are read: pytest's caplog (every record, at any level, after our filter) and what
the handler PesaTab configures writes to stderr (text or JSON lines).
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from flask_login import login_required
from sqlalchemy import select

from app import create_app, logging_setup, redaction
from app.config import ConfigError, load_config
from app.crypto import generate_key
from app.extensions import db
from app.models import Payment
from app.simulator import (
    SANDBOX_PASSKEY,
    SANDBOX_SHORTCODE,
    SIM_CONSUMER_KEY,
    SIM_CONSUMER_SECRET,
    LiveServer,
)
from tests.conftest import TEST_SECRET_KEY, login_as
from tests.factories import Factory

PAYBILL = {
    "environment": "sandbox",
    "kind": "paybill",
    "shortcode": SANDBOX_SHORTCODE,
    "till_number": "",
    "consumer_key": SIM_CONSUMER_KEY,
    "consumer_secret": SIM_CONSUMER_SECRET,
    "passkey": SANDBOX_PASSKEY,
}
HX = {"HX-Request": "true"}
# a number standing on its own; not the same digits inside a random hex id (a request id
# from uuid4().hex can hold "0130645298" between two letters, and once did in CI)
WHOLE_PHONE = re.compile(
    r"(?<![0-9A-Za-z])(?:\+?254[17][0-9]{8}|0[17][0-9]{2} ?[0-9]{3} ?[0-9]{3})(?![0-9A-Za-z])"
)
API_KEY = re.compile(r"pt_(?:live|test)_[A-Za-z0-9_-]{43}")
CALLBACK_TOKEN = "0123456789abcdef0123456789abcdef01234567"
log = logging.getLogger("app.test_logging")


@pytest.fixture
def stderr_lines(capsys):
    """What PesaTab's own handler wrote since the last call, line by line."""
    capsys.readouterr()
    return lambda: capsys.readouterr().err.splitlines()


@pytest.fixture
def json_logs(app):
    logging_setup.configure("DEBUG", "json")
    yield
    logging_setup.configure(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])


@pytest.fixture
def loud_live(app):
    """The app over real HTTP with werkzeug's request lines on (they carry callback paths)."""
    with LiveServer(app, quiet=False) as server:
        app.config["PUBLIC_BASE_URL"] = server.url
        yield server


@pytest.fixture
def encryption_key(test_config) -> str:
    return test_config["PESATAB_ENCRYPTION_KEYS"].partition(":")[2].rstrip("=")


def assert_clean(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret[:6]}… reached the log"
    assert not WHOLE_PHONE.findall(text), WHOLE_PHONE.findall(text)


# -- a whole evening, from onboarding to the POS API ---------------------------------------------


def run_full_flow(app, sim_state, owner, cashier) -> list[str]:
    """Onboard with real secrets, go live, a cashier's push paid by callback, an API key and
    an API push. Returns every secret the flow handled."""
    boss = login_as(app, owner)
    assert boss.post("/settings/mpesa/", data=PAYBILL).status_code == 302
    boss.post("/settings/mpesa/check")
    boss.post("/settings/mpesa/test-push", data={"phone": "0708 374 149", "amount": 1})
    assert sim_state.wait_for_callbacks(1, timeout=10)
    assert boss.post("/settings/mpesa/go-live").status_code == 302

    counter = login_as(app, cashier)
    tab_id = int(
        counter.post("/tabs/", data={"label": "Table 4"}).headers["Location"].rsplit("/", 1)[1]
    )
    counter.post(
        f"/tabs/{tab_id}/lines", data={"description": "Tusker", "quantity": 2, "unit_price": 250}
    )
    assert (
        counter.post(
            f"/tabs/{tab_id}/pay", data={"phone": "0110 123 456", "amount": 500}, headers=HX
        ).status_code
        == 200
    )
    assert sim_state.wait_for_callbacks(2, timeout=10)

    page = boss.post("/settings/api-keys/", data={"label": "Till 1 POS"}).get_data(as_text=True)
    api_key = API_KEY.findall(page)[0]
    pos = app.test_client()
    answer = pos.post(
        "/api/v1/payments",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"phone": "0711 000 001", "amount": 40, "reference": "T7"},
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert sim_state.wait_for_callbacks(3, timeout=10)

    db.session.expire_all()
    tokens = [p.callback_token for p in db.session.scalars(select(Payment))]
    assert len(tokens) == 3 and all(p.status != "sent" for p in db.session.scalars(select(Payment)))
    access_tokens = list(sim_state._tokens)
    assert access_tokens
    return [
        SIM_CONSUMER_KEY,
        SIM_CONSUMER_SECRET,
        SANDBOX_PASSKEY,
        TEST_SECRET_KEY,
        Factory.PASSWORD,
        api_key,
        *tokens,
        *access_tokens,
    ]


def test_a_full_flow_logs_no_secret_and_no_whole_phone(
    app, sim_state, loud_live, owner, cashier, encryption_key, caplog, stderr_lines, json_logs
):
    caplog.set_level(logging.DEBUG)
    secrets = run_full_flow(app, sim_state, owner, cashier) + [encryption_key]
    lines = stderr_lines()
    assert_clean(caplog.text, secrets)
    assert_clean("\n".join(lines), secrets)
    # werkzeug logged Safaricom's callbacks (and urllib3 the simulator's POSTs) without tokens
    assert any(
        '"POST /hooks/stk/[redacted] HTTP/1.1" 200' in r.getMessage() for r in caplog.records
    )
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert len(entries) > 10
    assert all(
        {"time", "level", "logger", "message", "request_id", "bar_id"} <= set(e) for e in entries
    )
    assert any(e["request_id"] and e["bar_id"] == owner.bar_id for e in entries)


# -- logging secrets on purpose ------------------------------------------------------------------


def test_secrets_logged_on_purpose_are_scrubbed(app, caplog, stderr_lines, encryption_key):
    redaction.register_secret("SimConsumerSecret0001PesaTab")
    caplog.set_level(logging.DEBUG)
    body = {
        "BusinessShortCode": 174379,
        "Password": "MTc0Mzc5YmZiMjc5ZjlhYTliZGJj",
        "PhoneNumber": 254708374149,
    }
    log.info(
        "consumer secret %s, secret key %s, encryption key %s",
        "SimConsumerSecret0001PesaTab",
        TEST_SECRET_KEY,
        encryption_key,
    )
    log.info("Daraja body %s", body)
    log.info(
        "headers %r", {"Authorization": "Basic U2ltQ29uc3VtZXJLZXk6U2ltU2VjcmV0", "Accept": "json"}
    )
    log.warning("Authorization: Bearer c9SQxWWhmdVRlyh0zh8gZDTkubVF refused")
    log.info("POS used pt_live_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg")
    log.info("Sandbox POS used pt_test_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg")
    log.info("phones 254708374149, +254110123456, 0708374149, 0110 123 456")
    log.info("database postgresql+psycopg://pesatab:hunter2-password@db:5432/pesatab")
    text, out = caplog.text, "\n".join(stderr_lines())
    for seen in (text, out):
        assert_clean(
            seen,
            [
                "SimConsumerSecret0001PesaTab",
                TEST_SECRET_KEY,
                encryption_key,
                "MTc0Mzc5YmZiMjc5ZjlhYTliZGJj",
                "U2ltQ29uc3VtZXJLZXk6U2ltU2VjcmV0",
                "c9SQxWWhmdVRlyh0zh8gZDTkubVF",
                "EfGhIjKlMnOpQrSt",
                "hunter2-password",
            ],
        )
        assert "'Password': '[redacted]'" in seen and "Bearer [redacted]" in seen
        assert "pt_live_AbCd[redacted]" in seen
        assert "pt_test_AbCd[redacted]" in seen and "0123456789abcdefg" not in seen
        assert "phones 2547****149, +2541****456, 0708****149, 0110****456" in seen


def test_an_exception_carrying_a_secret_is_scrubbed(app, caplog, stderr_lines):
    redaction.register_secret("bfb279f9aa9bdbcf158e97dd71a467cd2e0c8930")
    caplog.set_level(logging.INFO)
    try:
        raise RuntimeError(
            "passkey bfb279f9aa9bdbcf158e97dd71a467cd2e0c8930 refused for 254708374149"
        )
    except RuntimeError:
        log.exception("push failed")
    out = "\n".join(stderr_lines())
    for seen in (caplog.text, out):
        assert "RuntimeError: passkey [redacted] refused for 2547****149" in seen
        assert_clean(seen, ["bfb279f9aa9bdbcf158e97dd71a467cd2e0c8930"])
    assert len(out.splitlines()) == 1  # the traceback stays on the event's one line


def test_third_party_loggers_below_our_level_are_scrubbed_too(app, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("werkzeug").info(
        '127.0.0.1 - - "POST /hooks/stk/%s HTTP/1.1" 200 -', CALLBACK_TOKEN
    )
    logging.getLogger("urllib3.connectionpool").debug(
        'http://127.0.0.1:5000 "POST /hooks/stk/%s"', CALLBACK_TOKEN
    )
    logging.getLogger("app.payments").debug("event for token %s", CALLBACK_TOKEN)
    logging.getLogger("app.payments").info(
        "set-password link /set-password/AbC_dEf-1234567890xyz sent"
    )
    assert CALLBACK_TOKEN not in caplog.text and "AbC_dEf-1234567890xyz" not in caplog.text
    assert caplog.text.count("/hooks/stk/[redacted]") == 2


def test_extras_are_scrubbed_and_kept_in_json(app, stderr_lines, json_logs):
    log.info("checked", extra={"phone": "254708374149", "note": f"token {CALLBACK_TOKEN}"})
    entry = json.loads(stderr_lines()[-1])
    assert (entry["message"], entry["phone"], entry["note"]) == (
        "checked",
        "2547****149",
        "token [redacted]",
    )


def test_a_text_line_is_one_line_with_the_request_and_bar(app, stderr_lines):
    log.warning("forged\n2025-01-01 INFO app everything is fine")
    lines = stderr_lines()
    assert len(lines) == 1
    assert lines[0].endswith("[req=- bar=-] forged\\n2025-01-01 INFO app everything is fine")


def test_secret_settings_are_registered_when_the_app_starts(test_config, caplog):
    create_app(
        {
            **test_config,
            "METRICS_TOKEN": "metrics-token-0123456789",
            "SMTP_PASSWORD": "smtp-pass-0123456789",
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://pesatab:db-pass-0123456789@db/pesatab",
        }
    )
    caplog.set_level(logging.INFO)
    log.info(
        "scrape with metrics-token-0123456789, mail with smtp-pass-0123456789, "
        "db db-pass-0123456789"
    )
    assert caplog.text.count("[redacted]") == 3 and "0123456789" not in caplog.text


def test_every_key_of_the_ring_is_registered_as_the_ring_spells_it(test_config, caplog):
    current, old = generate_key("knew"), generate_key("kold")
    create_app({**test_config, "PESATAB_ENCRYPTION_KEYS": f"{current}, {old.rstrip('=')}"})
    keys = [entry.partition(":")[2] for entry in (current, old)]
    caplog.set_level(logging.INFO)
    log.info("keys %s and %s", *keys)
    assert caplog.text.count("[redacted]") == 2
    assert_clean(caplog.text, [key.rstrip("=") for key in keys])


def test_short_values_are_not_registered(app, caplog):
    redaction.register_secret("x")
    redaction.register_secret("1234")
    caplog.set_level(logging.INFO)
    log.info("x marks 1234")
    assert "x marks 1234" in caplog.text


# -- the request id and the bar ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("pos-7f3a_2024-05-31", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("bad id with spaces", False),
        ("semi;colon", False),
        (None, False),
    ],
)
def test_the_request_id_is_echoed_or_made(client, sent, kept):
    headers = {"X-Request-ID": sent} if sent is not None else {}
    answer = client.get("/login", headers=headers)
    echoed = answer.headers["X-Request-ID"]
    if kept:
        assert echoed == sent
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)


@pytest.mark.fresh_app  # adds a route
def test_every_line_in_a_request_names_the_request_and_the_bar(app, owner, stderr_lines, json_logs):
    @login_required
    def noisy():
        log.info("serving %s", "254708374149")
        return "ok"

    app.add_url_rule("/_test/noisy", "noisy", noisy)
    client = login_as(app, owner)
    stderr_lines()
    assert client.get("/_test/noisy", headers={"X-Request-ID": "till-1-req-42"}).status_code == 200
    entry = next(json.loads(line) for line in stderr_lines() if "serving" in line)
    assert (entry["request_id"], entry["bar_id"], entry["message"]) == (
        "till-1-req-42",
        owner.bar_id,
        "serving 2547****149",
    )


def test_a_callback_can_name_its_bar(app, stderr_lines, json_logs):
    with app.test_request_context("/hooks/stk/x"):
        app.preprocess_request()
        logging_setup.bind(bar_id=42)
        log.info("applied")
    entry = json.loads(stderr_lines()[-1])
    assert entry["bar_id"] == 42 and re.fullmatch(r"[0-9a-f]{32}", entry["request_id"])


# -- configuration -------------------------------------------------------------------------------


def test_configuring_again_never_stacks_handlers(test_config, app):
    for fmt in ("json", "text", "json"):
        create_app({**test_config, "LOG_FORMAT": fmt})
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, logging_setup._StderrHandler)]
    assert len(ours) == 1 and root.handlers[0] is ours[0]
    assert isinstance(ours[0].formatter, logging_setup.JsonFormatter)


@pytest.mark.parametrize(
    ("raw", "level"), [(None, "INFO"), ("debug", "DEBUG"), ("WARNING", "WARNING")]
)
def test_the_level_comes_from_log_level(tmp_path, raw, level):
    environ = {} if raw is None else {"LOG_LEVEL": raw}
    assert load_config(environ, instance_path=str(tmp_path))["LOG_LEVEL"] == level


def test_a_bad_log_level_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        load_config({"LOG_LEVEL": "loud"}, instance_path=str(tmp_path))


def test_daraja_access_tokens_are_scrubbed_once_fetched(app, factory, bar, live, caplog):
    """A token the client fetched is registered as a secret, so logging it by mistake hides it."""
    import logging

    from app.payments.daraja import client_for
    from app.settings import vault

    factory.live_credentials(bar)
    creds = vault.open_credentials(vault.credential_for(bar))
    token = client_for("sandbox").fetch_token(creds)
    caplog.set_level(logging.INFO)
    logging.getLogger("pesatab.test").warning("leaked %s and again %s", token, creds.passkey)
    assert token not in caplog.text and creds.passkey not in caplog.text

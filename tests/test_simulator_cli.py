"""`flask daraja-sim` for a customer paying from the menu: options that set the C2B faults from
the start (masked or hashed MSISDN, duplicate and lost confirmation shares, their seed), and
`flask daraja-sim pay`, one menu payment to a PayBill account or a till of a running simulator."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from flask import Flask

import app.simulator as simulator
from app.simulator import (
    INSTANT_TIMING,
    SANDBOX_SHORTCODE,
    STATE_EXTENSION,
    TILL_NUMBER,
    TILL_STORE_NUMBER,
    LiveServer,
    SimulatorState,
    create_sim_app,
    register_cli,
)

PHONE = "254712345678"


@pytest.fixture
def cli():
    host = Flask("host")
    register_cli(host)
    return host.test_cli_runner()


def serve(cli, monkeypatch, *options: str):
    """`flask daraja-sim <options>` with run_simple faked: (result, the app it would serve)."""
    served = {}
    monkeypatch.setattr(
        simulator, "run_simple", lambda host, port, app, threaded: served.update(app=app)
    )
    result = cli.invoke(args=["daraja-sim", "--port", "5077", *options])
    return result, served.get("app")


def confirmations(receiver, count: int, timeout: float = 5) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(receiver.calls()) < count:
        time.sleep(0.05)
    return [json.loads(call["raw"]) for call in receiver.calls()]


def test_the_c2b_options_set_the_faults_from_the_start(cli, monkeypatch):
    result, sim = serve(
        cli, monkeypatch, "--c2b-msisdn", "hashed", "--c2b-duplicate-share", "0.25",
        "--c2b-lost-share", "0.5", "--c2b-seed", "7",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    state = sim.extensions[STATE_EXTENSION]
    faults = state.faults
    assert (faults.c2b_msisdn, faults.c2b_duplicate_rate, faults.c2b_lost_rate) == (
        "hashed",
        0.25,
        0.5,
    )
    assert faults.c2b_seed == 7
    state.clear_faults()  # they are the baseline: clearing the faults keeps them
    assert state.faults.c2b_msisdn == "hashed" and state.faults.c2b_lost_rate == 0.5
    assert "--c2b-lost-share" in cli.invoke(args=["daraja-sim", "--help"]).output


def test_shares_that_cannot_be_are_refused_with_a_sentence(cli, monkeypatch):
    result, sim = serve(cli, monkeypatch, "--c2b-duplicate-share", "0.6", "--c2b-lost-share", "0.6")
    assert result.exit_code == 2 and sim is None
    assert "c2b-lost-share + c2b-duplicate-share must not pass 1" in result.output
    result, sim = serve(cli, monkeypatch, "--c2b-lost-share", "1.5")
    assert result.exit_code == 2 and sim is None
    result, sim = serve(cli, monkeypatch, "--c2b-msisdn", "plain")
    assert result.exit_code == 2 and sim is None


def test_the_served_simulator_hashes_and_repeats_as_told(cli, monkeypatch, receiver):
    receiver.clear()
    result, sim = serve(cli, monkeypatch, "--c2b-msisdn", "hashed", "--c2b-duplicate-share", "1")
    assert result.exit_code == 0, result.output
    state = sim.extensions[STATE_EXTENSION]
    state.set_faults(**INSTANT_TIMING)
    state.register_c2b(SANDBOX_SHORTCODE, receiver.url("hooks/c2b/s/confirmation"), receiver.url())
    with LiveServer(sim) as server:
        paid = cli.invoke(
            args=["daraja-sim", "pay", "--url", server.url, "--shortcode", SANDBOX_SHORTCODE,
                  "--account", "TAB42", "--amount", "800", "--phone", PHONE]
        )  # fmt: skip
        assert paid.exit_code == 0, paid.output
        sent = confirmations(receiver, 2)
    state.close()
    assert len(sent) == 2 and sent[0] == sent[1]  # the duplicate share: every one twice
    assert sent[0]["MSISDN"] == hashlib.sha256(PHONE.encode()).hexdigest()
    assert (sent[0]["BillRefNumber"], sent[0]["TransAmount"]) == ("TAB42", "800.00")
    assert sent[0]["TransactionType"] == "Pay Bill"
    assert f"KES 800 paid from {PHONE} to PayBill {SANDBOX_SHORTCODE}, account TAB42" in paid.output


def test_pay_to_a_till_and_what_pay_refuses(cli, receiver):
    receiver.clear()
    with SimulatorState(**INSTANT_TIMING) as state, LiveServer(create_sim_app(state)) as server:
        state.register_c2b(TILL_STORE_NUMBER, receiver.url("hooks/c2b/t/confirmation"), "http://x")
        paid = cli.invoke(
            args=[
                "daraja-sim",
                "pay",
                "--url",
                server.url,
                "--till",
                TILL_NUMBER,
                "--amount",
                "300",
            ]
        )
        assert paid.exit_code == 0, paid.output
        (sent,) = confirmations(receiver, 1)
        assert sent["TransactionType"] == "Buy Goods" and sent["BusinessShortCode"] == TILL_NUMBER
        assert sent["BillRefNumber"] == "" and sent["MSISDN"] == "2547 ***** 149"  # masked

        def refused(*args: str) -> str:
            result = cli.invoke(args=["daraja-sim", "pay", "--url", server.url, *args])
            assert result.exit_code != 0, result.output
            return result.output

        assert "needs --account" in refused("--shortcode", SANDBOX_SHORTCODE, "--amount", "5")
        assert "either --shortcode" in refused("--amount", "5")
        assert "has no account" in refused("--till", TILL_NUMBER, "--account", "A", "--amount", "5")
        # A PayBill nobody registered URLs for: the simulator's own sentence.
        unregistered = refused("--shortcode", "600000", "--account", "A", "--amount", "5")
        assert "No ConfirmationURL registered" in unregistered
    assert (
        "No simulator at"
        in cli.invoke(
            args=[
                "daraja-sim",
                "pay",
                "--url",
                "http://127.0.0.1:9",
                "--till",
                "1",
                "--amount",
                "5",
            ]
        ).output
    )

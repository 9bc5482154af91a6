"""Keys, rotation and the operator commands for credentials."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import create_app
from app.crypto import KeyRing, generate_key
from app.extensions import db
from app.models import AuditEvent, Bar, MpesaCredential, Payment
from app.settings import vault
from app.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET
from tests.conftest import Client

SECRETS_ENV = {
    "MPESA_CONSUMER_KEY": SIM_CONSUMER_KEY,
    "MPESA_CONSUMER_SECRET": SIM_CONSUMER_SECRET,
    "MPESA_PASSKEY": SANDBOX_PASSKEY,
}


def set_credentials(runner, bar, **extra):
    args = [
        "credentials",
        "set",
        "--bar",
        bar.slug,
        "--environment",
        "sandbox",
        "--kind",
        "paybill",
        "--shortcode",
        SANDBOX_SHORTCODE,
    ]
    return runner.invoke(args=args, env={**SECRETS_ENV, **extra})


def use_keys(app, text: str) -> None:
    app.extensions["pesatab_keyring"] = KeyRing.parse(text)


def test_credentials_set_reads_secrets_from_the_environment_only(runner, bar, caplog):
    result = set_credentials(runner, bar)
    assert result.exit_code == 0, result.output
    assert "Saved" in result.output and "credentials_saved" in result.output
    for secret in SECRETS_ENV.values():
        assert secret not in result.output and secret not in caplog.text
    assert vault.open_credentials(vault.credential_for(bar)).passkey == SANDBOX_PASSKEY


def test_credentials_set_prompts_when_the_environment_has_none(runner, bar):
    result = runner.invoke(
        args=[
            "credentials",
            "set",
            "--bar",
            bar.slug,
            "--environment",
            "sandbox",
            "--kind",
            "till",
            "--shortcode",
            "174380",
            "--till",
            "5123456",
        ],
        input="KeyFromPrompt000000000000\nSecretFromPrompt\n" + "ab" * 32 + "\n",
        env={"MPESA_CONSUMER_KEY": None, "MPESA_CONSUMER_SECRET": None, "MPESA_PASSKEY": None},
    )
    assert result.exit_code == 0, result.output
    assert "KeyFromPrompt" not in result.output
    assert vault.credential_for(bar).till_number == "5123456"


def test_rotation_reseals_everything_and_old_data_opens_before_it(app, runner, factory):
    old, new = generate_key("kold"), generate_key("knew")
    use_keys(app, old)
    bars = [factory.bar(f"Bar {n}") for n in range(3)]
    for bar in bars:
        assert set_credentials(runner, bar).exit_code == 0
    use_keys(app, f"{new},{old}")  # the new key first: it seals; the old one still opens
    for bar in bars:
        assert vault.open_credentials(vault.credential_for(bar)).consumer_key == SIM_CONSUMER_KEY
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code == 0 and "Re-sealed 3 credential set(s) under key knew" in result.output
    use_keys(app, new)  # the old key can now be retired
    for cred in db.session.scalars(select(MpesaCredential)):
        assert cred.key_id == "knew" and all(
            getattr(cred, c).startswith("v1.knew.")
            for c in ("consumer_key_sealed", "consumer_secret_sealed", "passkey_sealed")
        )
        assert vault.open_credentials(cred).passkey == SANDBOX_PASSKEY
    again = runner.invoke(args=["keys", "rotate"])
    assert again.exit_code == 0 and "Re-sealed 0" in again.output
    assert (
        db.session.scalar(select(AuditEvent).where(AuditEvent.action == "keys.rotated")).details[
            "credentials"
        ]
        == 3
    )


def test_rotation_reports_what_the_keys_cannot_open(app, runner, bar):
    set_credentials(runner, bar)
    use_keys(app, generate_key("kother"))
    result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code != 0
    assert "1 credential set(s) cannot be opened with the configured keys" in result.output


def test_keys_generate_prints_a_usable_entry(runner):
    entry = runner.invoke(args=["keys", "generate"]).output.strip()
    assert KeyRing.parse(entry).current_kid == entry.split(":")[0]


def test_a_missing_key_gives_the_clear_message_and_no_500(app, runner, owner, test_config):
    set_credentials(runner, owner.bar)
    other = create_app({**test_config, "PESATAB_ENCRYPTION_KEYS": generate_key("kwrong")})
    other.test_client_class = Client
    c = other.test_client()
    # Sign in before entering the other app's context: reading `owner` (an object of the test's
    # own session) inside it would load it through the other app's engine and leak a connection.
    assert c.login(owner).status_code == 302
    with other.app_context():
        dashboard = c.get("/dashboard")
        settings = c.get("/settings/mpesa/")
        db.session.remove()
        db.engine.dispose()
    assert dashboard.status_code == 200 and settings.status_code == 200
    assert "Needs attention" in dashboard.get_data(as_text=True)
    assert (
        "cannot be opened with the configured keys, so no M-Pesa request can be sent"
        in dashboard.get_data(as_text=True)
    )
    assert (
        "stored M-Pesa credentials cannot be opened with the configured keys"
        in settings.get_data(as_text=True)
    )


def test_credentials_check_from_the_command_line(runner, bar, live):
    set_credentials(runner, bar)
    ok = runner.invoke(args=["credentials", "check", "--bar", bar.slug])
    assert ok.exit_code == 0 and "Safaricom accepted" in ok.output
    set_credentials(runner, bar, MPESA_CONSUMER_SECRET="WrongSecret1234")
    bad = runner.invoke(args=["credentials", "check", "--bar", bar.slug])
    assert bad.exit_code != 0 and "Safaricom refused this consumer key and secret" in bad.output


def test_test_push_waits_for_the_outcome_and_go_live_follows(runner, bar, live):
    set_credentials(runner, bar)
    refused = runner.invoke(args=["bars", "go-live", "--bar", bar.slug])
    assert refused.exit_code != 0 and "test push" in refused.output
    result = runner.invoke(
        args=[
            "credentials",
            "test-push",
            "--bar",
            bar.slug,
            "--phone",
            "0708374149",
            "--wait",
            "10",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "paid: Paid. Receipt" in result.output and "Bar state: verified" in result.output
    assert runner.invoke(args=["bars", "go-live", "--bar", bar.slug]).exit_code == 0
    db.session.expire_all()
    assert db.session.get(Bar, bar.id).setup_state == "live"


def test_a_cancelled_test_push_exits_non_zero(runner, bar, live):
    set_credentials(runner, bar)
    result = runner.invoke(
        args=[
            "credentials",
            "test-push",
            "--bar",
            bar.slug,
            "--phone",
            "0711001032",
            "--wait",
            "10",
        ]
    )
    assert result.exit_code == 1 and "cancelled: The customer cancelled." in result.output


def test_unknown_bar_is_a_clear_error(runner):
    result = runner.invoke(args=["credentials", "check", "--bar", "nowhere"])
    assert result.exit_code != 0 and "No bar with slug 'nowhere'" in result.output


def test_the_global_switch_stops_pushes_but_not_callbacks(app, runner, bar, live, sim_state):
    set_credentials(runner, bar)
    assert runner.invoke(args=["mpesa", "disable-all"]).exit_code == 0
    result = runner.invoke(
        args=["credentials", "test-push", "--bar", bar.slug, "--phone", "0708374149", "--wait", "5"]
    )
    assert result.exit_code != 0 and "paused by PesaTab's operators" in result.output
    assert db.session.scalar(select(Payment)) is None
    runner.invoke(args=["mpesa", "enable-all"])
    sim_state.set_faults(callback_delay=0.3)
    result = runner.invoke(
        args=["credentials", "test-push", "--bar", bar.slug, "--phone", "0708374149", "--wait", "0"]
    )
    runner.invoke(args=["mpesa", "disable-all"])  # switched off while the push is in flight
    assert sim_state.wait_for_callbacks(1, timeout=10)
    db.session.expire_all()
    assert db.session.scalar(select(Payment.status)) == "paid"


def test_the_environment_can_switch_pushes_off(app, runner, bar):
    set_credentials(runner, bar)
    app.config["MPESA_PUSHES_DISABLED"] = True
    result = runner.invoke(
        args=["credentials", "test-push", "--bar", bar.slug, "--phone", "0708374149"]
    )
    assert "paused by PesaTab's operators" in result.output


def test_demo_bar_is_live_on_the_simulator(runner):
    runner.invoke(args=["demo"])
    bar = db.session.scalar(select(Bar))
    cred = vault.credential_for(bar)
    assert bar.setup_state == "live" and cred.is_verified
    assert vault.open_credentials(cred).consumer_key == SIM_CONSUMER_KEY


@pytest.mark.parametrize("entry", ["", "k1", "k1:short"])
def test_a_bad_key_ring_stops_start_up_with_its_name(test_config, entry):
    from app.config import ConfigError

    with pytest.raises(ConfigError, match="PESATAB_ENCRYPTION_KEYS"):
        create_app({**test_config, "PESATAB_ENCRYPTION_KEYS": entry or " , "})

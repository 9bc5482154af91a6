"""Operators can switch a live bar to its waiting credentials, or drop them, from the command
line as the owner can from the page: the same rules (checked, proved by a paid test push)."""

from __future__ import annotations

from app.extensions import db
from tests import test_settings_live as settings
from tests.test_settings_live import NEW, fresh_credential, state_of
from tests.test_settings_live import test_push as paid_test_push

boss, live_bar, simulator = settings.boss, settings.live_bar, settings.simulator  # fixtures


def run(runner, *args):
    db.session.expire_all()  # the command reads the database as a new process would
    return runner.invoke(args=["credentials", *args])


def test_use_pending_refuses_until_proved_then_switches(boss, live_bar, simulator, runner):
    nothing = run(runner, "use-pending", "--bar", live_bar.slug)
    assert nothing.exit_code != 0 and "no new credentials waiting" in nothing.output
    boss.post("/settings/mpesa/", data=NEW)
    early = run(runner, "use-pending", "--bar", live_bar.slug)
    assert early.exit_code != 0 and "Check the new credentials" in early.output
    boss.post("/settings/mpesa/check")
    assert paid_test_push(boss, simulator).status == "paid"
    done = run(runner, "use-pending", "--bar", live_bar.slug)
    assert done.exit_code == 0, done.output
    cred = fresh_credential(live_bar)
    assert cred.shortcode == NEW["shortcode"] and not cred.has_pending
    assert state_of(live_bar) == "live"


def test_discard_pending_keeps_the_set_in_use(boss, live_bar, simulator, runner):
    boss.post("/settings/mpesa/", data=NEW)
    result = run(runner, "discard-pending", "--bar", live_bar.slug)
    assert result.exit_code == 0, result.output
    cred = fresh_credential(live_bar)
    assert not cred.has_pending and cred.shortcode != NEW["shortcode"]

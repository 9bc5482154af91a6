"""Operator commands: creating and listing bars, seeding the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.cli.bars import DEMO_OWNER_EMAIL
from app.crypto import KeyRing
from app.extensions import db
from app.models import Bar, User

ROOT = Path(__file__).resolve().parent.parent


def flask_in_production(*args: str) -> subprocess.CompletedProcess:
    """`flask ARGS` as an operator runs it on a production host with no settings made yet."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "FLASK_APP": "wsgi.py",
        "PESATAB_ENV": "production",
    }
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_generate_needs_no_settings_in_production():
    result = flask_in_production("keys", "generate")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    ring = KeyRing.parse(result.stdout.strip())
    assert len(ring.kids) == 1


@pytest.mark.parametrize("command", [["keys", "rotate"], ["bars", "list"], ["db", "upgrade"]])
def test_other_commands_refuse_incomplete_production_settings_in_a_sentence(command):
    result = flask_in_production(*command)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: PesaTab will not start in production without SECRET_KEY, DATABASE_URL, "
        "PESATAB_ENCRYPTION_KEYS. Set them in the environment (see README, Configuration)."
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_bars_create_reads_the_password_from_the_environment(runner):
    result = runner.invoke(
        args=[
            "bars",
            "create",
            "--name",
            "Sunset Grill",
            "--owner-email",
            "boss@sunset.example.com",
        ],
        env={"PESATAB_OWNER_PASSWORD": "a strong password"},
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "sunset-grill"
    owner = db.session.scalar(select(User).where(User.email == "boss@sunset.example.com"))
    assert owner.role == "owner" and owner.check_password("a strong password")
    assert "a strong password" not in result.output


def test_bars_create_prompts_when_no_password_is_given(runner):
    result = runner.invoke(
        args=["bars", "create", "--name", "Prompted", "--owner-email", "p@prompted.example.com"],
        input="another password\nanother password\n",
        env={"PESATAB_OWNER_PASSWORD": None},
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("prompted")


def test_bars_create_refuses_a_short_password_and_a_taken_email(runner, owner):
    short = runner.invoke(
        args=["bars", "create", "--name", "X", "--owner-email", "x@x.example.com"],
        env={"PESATAB_OWNER_PASSWORD": "short"},
    )
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    taken = runner.invoke(
        args=["bars", "create", "--name", "X", "--owner-email", owner.email],
        env={"PESATAB_OWNER_PASSWORD": "long enough pw"},
    )
    assert taken.exit_code != 0 and "already exists" in taken.output
    assert db.session.scalar(select(func.count(Bar.id))) == 1


def test_bars_list_shows_each_bar(runner, owner, outsider):
    output = runner.invoke(args=["bars", "list"]).output
    assert owner.bar.slug in output and outsider.bar.slug in output


def test_demo_seeds_once(runner):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0 and DEMO_OWNER_EMAIL in first.output and "password" in first.output
    second = runner.invoke(args=["demo"])
    assert second.exit_code == 0 and "password (both)" not in second.output
    assert db.session.scalar(select(func.count(Bar.id))) == 1

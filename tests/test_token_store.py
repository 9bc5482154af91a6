"""Daraja tokens shared through the database: one fetch per credential set for every process.

Two caches on one `DatabaseTokenStore` stand for two worker processes; the last tests start real
processes. On SQLite by default, on PostgreSQL with TEST_DATABASE_URL.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from app.crypto import KeyRing, generate_key
from app.extensions import db
from app.models import Bar, DarajaToken
from app.mpesa import Credentials, DarajaAuthError, TokenCache
from app.payments.daraja import build_token_cache, token_cache
from app.payments.push import PushRequest, start_push
from app.payments.token_store import DatabaseTokenStore, shares_between_processes
from app.simulator import SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET

ROOT = Path(__file__).resolve().parent.parent
CREDS = Credentials(environment="sandbox", kind="paybill", shortcode="174379",
                    consumer_key="otienos-consumer-key-0001",
                    consumer_secret="otienos-consumer-secret",
                    passkey="otienos-passkey")  # fmt: skip
KEY = CREDS.cache_key
SIM_CREDS = Credentials(
    environment="sandbox",
    kind="paybill",
    shortcode="174379",
    consumer_key=SIM_CONSUMER_KEY,
    consumer_secret=SIM_CONSUMER_SECRET,
    passkey="x",
)


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Fetches:
    """Hands out distinct tokens, counting calls across every cache and thread."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self) -> tuple[str, float]:
        with self._lock:
            self.calls += 1
            token = f"Tok{self.calls:03d}-{os.urandom(6).hex()}"
        time.sleep(self.delay)
        return token, 3599.0


@pytest.fixture
def store(app) -> DatabaseTokenStore:
    return DatabaseTokenStore(
        db.engine, app.extensions["pesatab_keyring"], app.config["SECRET_KEY"]
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def rows() -> list[DarajaToken]:
    db.session.expire_all()
    return list(db.session.scalars(select(DarajaToken)))


def sim_token_requests(sim_state) -> int:
    return sum(e["path"].endswith("/oauth/v1/generate") for e in sim_state.events("request"))


# -- two caches, one database ------------------------------------------------------------------


def test_two_processes_share_one_fetch(store, clock):
    a, b = TokenCache(store=store, clock=clock), TokenCache(store=store, clock=clock)
    fetch = Fetches()

    token = a.get(KEY, fetch)
    assert b.get(KEY, fetch) == token
    assert (fetch.calls, a.fetch_count, b.fetch_count) == (1, 1, 0)
    assert len(rows()) == 1


def test_threads_of_two_processes_racing_cost_one_fetch(store):
    caches = [TokenCache(store=store), TokenCache(store=store)]
    fetch = Fetches(delay=0.2)  # the others pile up on the row lock meanwhile
    start = threading.Barrier(8)
    seen: list[str] = []

    def ask(cache: TokenCache) -> None:
        start.wait()
        seen.append(cache.get(KEY, fetch))

    threads = [threading.Thread(target=ask, args=(caches[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert fetch.calls == 1
    assert len(set(seen)) == 1 and len(seen) == 8


def test_an_expired_token_is_fetched_once_for_every_process(store, clock):
    a, b = TokenCache(store=store, clock=clock), TokenCache(store=store, clock=clock)
    fetch = Fetches()
    first = a.get(KEY, fetch)
    assert b.get(KEY, fetch) == first

    clock.now += 3599 - 60 - 1
    assert (a.get(KEY, fetch), b.get(KEY, fetch)) == (first, first)
    clock.now += 1  # inside the 60 s margin: stale for both
    second = b.get(KEY, fetch)
    assert second != first
    assert a.get(KEY, fetch) == second
    assert fetch.calls == 2
    # Daraja's expiry in naive UTC (each cache takes its own margin off)
    assert rows()[0].expires_at.replace(tzinfo=UTC).timestamp() == pytest.approx(
        clock.now + 3599, abs=0.001
    )


def test_a_refused_token_is_replaced_in_the_database_for_every_process(store, clock):
    a, b = TokenCache(store=store, clock=clock), TokenCache(store=store, clock=clock)
    fetch = Fetches()
    old = a.get(KEY, fetch)
    b.get(KEY, fetch)

    a.invalidate(KEY, old)  # Daraja refused it (revoked before its time)
    new = a.get(KEY, fetch)
    assert new != old
    assert store.load(KEY).token == new  # the row was replaced
    b.invalidate(KEY, old)  # refused for b too: it takes the row's, no fetch
    assert b.get(KEY, fetch) == new
    c = TokenCache(store=store, clock=clock)  # a process starting now never sees the old one
    assert c.get(KEY, fetch) == new
    assert fetch.calls == 2


def test_a_refused_fetch_stores_nothing_and_raises_as_it_is(store, clock):
    cache = TokenCache(store=store, clock=clock)
    refused = DarajaAuthError("refused", reason="bad_credentials")

    def fail() -> tuple[str, float]:
        raise refused

    with pytest.raises(DarajaAuthError) as caught:
        cache.get(KEY, fail)
    assert caught.value is refused
    assert rows() == []  # not even the lock row: its transaction rolled back
    assert cache.get(KEY, Fetches()).startswith("Tok001")


def test_the_caller_s_transaction_is_left_alone(store, clock, factory):
    bar = factory.bar("Pending Bar")
    bar.name = "Renamed, never committed"
    if db.engine.dialect.name != "sqlite":
        # The session holds a write transaction meanwhile (SQLite has one writer: the push
        # paths commit before Daraja is called, so there the session never holds one here).
        db.session.flush()
    TokenCache(store=store, clock=clock).get(KEY, Fetches())
    db.session.rollback()
    assert db.session.get(Bar, bar.id).name == "Pending Bar"
    assert len(rows()) == 1


# -- what the row holds ------------------------------------------------------------------------


def test_the_row_holds_neither_the_token_nor_the_credentials(store, clock):
    token = TokenCache(store=store, clock=clock).get(KEY, Fetches())
    (row,) = rows()

    assert token not in row.sealed_token and row.sealed_token.startswith("v1.ktest.")
    assert row.cache_key != KEY and len(row.cache_key) == 64
    texts = [row.cache_key, row.sealed_token, str(row.expires_at)]
    for secret in (token, CREDS.consumer_key, CREDS.consumer_secret, KEY):
        assert all(secret not in text for text in texts)


def test_the_row_key_depends_on_the_secret_key(app, store):
    ring = app.extensions["pesatab_keyring"]
    other = DatabaseTokenStore(db.engine, ring, "another-secret-key-that-is-long-enough-0123")
    assert other.row_key(KEY) != store.row_key(KEY)
    assert store.row_key(KEY) == store.row_key(KEY)


def test_a_sealed_token_moved_to_another_row_does_not_open(store, clock):
    fetch = Fetches()
    TokenCache(store=store, clock=clock).get(KEY, fetch)
    other_key = Credentials(**{**CREDS.__dict__, "consumer_secret": "another-secret"}).cache_key
    db.session.add(
        DarajaToken(
            cache_key=store.row_key(other_key),
            sealed_token=rows()[0].sealed_token,
            expires_at=rows()[0].expires_at,
        )
    )
    db.session.commit()

    assert store.load(other_key) is None
    assert TokenCache(store=store, clock=clock).get(other_key, fetch).startswith("Tok002")


def test_a_token_sealed_with_a_dropped_key_is_fetched_again(app, store, clock, caplog):
    old_ring = KeyRing.parse(generate_key("kold"))
    old = DatabaseTokenStore(db.engine, old_ring, app.config["SECRET_KEY"])
    fetch = Fetches()
    TokenCache(store=old, clock=clock).get(KEY, fetch)

    with caplog.at_level(logging.INFO):
        assert store.load(KEY) is None
        token = TokenCache(store=store, clock=clock).get(KEY, fetch)
    assert fetch.calls == 2
    assert store.load(KEY).token == token
    assert rows()[0].sealed_token.startswith("v1.ktest.")
    assert "cannot be opened (unknown_key)" in caplog.text
    assert token not in caplog.text


def test_tokens_read_from_the_database_are_kept_out_of_logs(app, store, clock, caplog):
    token = TokenCache(store=store, clock=clock).get(KEY, Fetches())
    from app import redaction

    redaction.forget_secrets()  # as in a process that never fetched it itself
    TokenCache(store=store, clock=clock).get(KEY, Fetches())
    with caplog.at_level(logging.INFO):
        logging.getLogger("app.test").info("the token is %s", token)
    assert token not in caplog.text


def test_a_database_without_the_table_falls_back_to_a_token_of_its_own(
    app, tmp_path, clock, caplog
):
    empty = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    broken = DatabaseTokenStore(empty, app.extensions["pesatab_keyring"], app.config["SECRET_KEY"])
    cache, fetch = TokenCache(store=broken, clock=clock), Fetches()

    with caplog.at_level(logging.WARNING):
        token = cache.get(KEY, fetch)
    assert cache.get(KEY, fetch) == token and fetch.calls == 1
    assert "token store failed (OperationalError)" in caplog.text
    assert token not in caplog.text and "daraja_token" not in caplog.text
    empty.dispose()


def test_an_in_memory_sqlite_database_keeps_tokens_per_process():
    assert not shares_between_processes(create_engine("sqlite://"))
    assert not shares_between_processes(create_engine("sqlite:///:memory:"))
    assert shares_between_processes(create_engine("sqlite:///instance/pesatab.sqlite3"))
    assert shares_between_processes(create_engine("postgresql+psycopg://u@127.0.0.1/pesatab"))


# -- the app ------------------------------------------------------------------------------------


def test_the_app_s_token_cache_is_shared_through_the_database(app):
    cache = token_cache()
    assert cache.shared and token_cache() is cache


def push(bar: Bar, n: int):
    return start_push(
        bar,
        PushRequest(
            phone=f"2547083741{n:02d}",
            amount=10,
            purpose="api",
            account_reference=f"R{n}",
            description="Bar tab",
        ),
    )


def as_process(app, cache: TokenCache) -> None:
    """Make the app use `cache` and new clients, as a second worker process would have."""
    app.extensions["pesatab_daraja_tokens"] = cache
    app.extensions["pesatab_daraja_clients"] = {}


def test_two_app_processes_push_with_one_token(app, factory, bar, live, sim_state):
    factory.live_credentials(bar)
    sim_state.set_faults(callback_lost=True)
    first, second = token_cache(), build_token_cache()

    assert push(bar, 1).status == "sent"
    as_process(app, second)
    assert push(bar, 2).status == "sent"
    sim_state.revoke_tokens()  # a forced expiry: each process is refused once, one fetch
    assert push(bar, 3).status == "sent"
    as_process(app, first)
    assert push(bar, 4).status == "sent"

    assert sim_token_requests(sim_state) == 2
    assert (first.fetch_count, second.fetch_count) == (1, 1)


def test_a_token_sealed_with_an_old_key_means_a_fetch_not_an_error(
    app, factory, bar, live, sim_state
):
    factory.live_credentials(bar)
    sim_state.set_faults(callback_lost=True)
    old = DatabaseTokenStore(
        db.engine, KeyRing.parse(generate_key("kold")), app.config["SECRET_KEY"]
    )
    TokenCache(store=old).get(SIM_CREDS.cache_key, lambda: ("sealed-with-a-dropped-key", 3599.0))

    assert push(bar, 1).status == "sent"
    assert sim_token_requests(sim_state) == 1
    (row,) = rows()
    assert row.sealed_token.startswith("v1.ktest.")


# -- real processes -----------------------------------------------------------------------------

CHILD = """
import hashlib, sys, time
from app import create_app
from app.settings import vault
from app.extensions import db
from app.models import Bar
from app.mpesa import DarajaClient, DarajaError
from app.payments.daraja import client_for, token_cache

real_fetch = DarajaClient._fetch_token

def slow_fetch(self, creds):
    time.sleep(0.3)  # the other processes queue behind the row lock meanwhile
    return real_fetch(self, creds)

DarajaClient._fetch_token = slow_fetch
bar_id, start_at = int(sys.argv[1]), float(sys.argv[2])

def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()[:12]

app = create_app()
with app.app_context():
    creds = vault.open_credentials(vault.credential_for(db.session.get(Bar, bar_id)))
    client, cache = client_for(creds.environment), token_cache()
    db.session.remove()
    time.sleep(max(0.0, start_at - time.time()))
    token = client.access_token(creds)
    print("FIRST", cache.fetch_count, digest(token), flush=True)
    sys.stdin.readline()  # the parent revoked every token
    try:
        client.stk_query(creds, "ws_CO_000000000000000000")
    except DarajaError as err:
        print("QUERY", err.kind, flush=True)
    print("AFTER", cache.fetch_count, digest(cache.peek(creds.cache_key)), flush=True)
"""


@pytest.mark.slow
def test_three_processes_fetch_one_token_and_one_after_a_revocation(
    app, test_config, database_url, factory, bar, live, sim_state
):
    factory.live_credentials(bar)
    env = {**os.environ, "FLASK_APP": "wsgi.py", "DATABASE_URL": database_url,
           "PESATAB_ENCRYPTION_KEYS": test_config["PESATAB_ENCRYPTION_KEYS"],
           "SECRET_KEY": test_config["SECRET_KEY"], "DARAJA_BASE_URL": f"{live.url}/_daraja",
           "DARAJA_SIMULATOR": "0", "SCHEDULER_ENABLED": "0", "LOG_LEVEL": "warning"}  # fmt: skip
    start_at = time.time() + 4.0  # every process is up by then; they ask together
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(bar.id), str(start_at)],
                              cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for _ in range(3)]  # fmt: skip
    try:
        first = [proc.stdout.readline().split() for proc in procs]
        assert all(line and line[0] == "FIRST" for line in first), [p.stderr.read() for p in procs]
        assert sum(int(line[1]) for line in first) == 1
        assert len({line[2] for line in first}) == 1
        assert sim_token_requests(sim_state) == 1

        sim_state.revoke_tokens()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None and not stream.closed:
                    stream.close()
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    after = [out.split("AFTER", 1)[1].split() for out, _ in outputs]
    assert "invalid_token" not in "".join(out for out, _ in outputs)
    assert sum(int(fetches) for fetches, _ in after) == 2  # one each time, for all three
    assert len({digest for _, digest in after}) == 1
    assert sim_token_requests(sim_state) == 2
    shared = DatabaseTokenStore(
        db.engine, app.extensions["pesatab_keyring"], test_config["SECRET_KEY"]
    )
    stored = shared.load(SIM_CREDS.cache_key)
    assert hashlib.sha256(stored.token.encode()).hexdigest()[:12] == after[0][1]

"""TokenCache with a shared store: processes (here: caches) share one token per credential set.

These use an in-memory store; tests/test_token_store.py runs the same against the database,
across threads and real processes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from app.mpesa import DarajaAuthError, DarajaError, TokenCache
from app.mpesa.tokens import StoredToken


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class MemoryStore:
    """What the database store does, in a dict: one lock for every "process"."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredToken] = {}
        self.lock = threading.Lock()
        self.loads = 0
        self.refreshes = 0

    def load(self, key: str) -> StoredToken | None:
        self.loads += 1
        return self.rows.get(key)

    def refresh(
        self, key: str, usable: Callable[[StoredToken], bool], fetch: Callable[[], StoredToken]
    ) -> StoredToken:
        with self.lock:
            self.refreshes += 1
            stored = self.rows.get(key)
            if stored is not None and usable(stored):
                return stored
            fresh = fetch()
            self.rows[key] = fresh
            return fresh


class Fetches:
    """A fetcher handing out t1, t2, ... and counting calls, across every cache."""

    def __init__(self, lifetime: float = 3599.0, delay: float = 0.0) -> None:
        self.calls = 0
        self.lifetime = lifetime
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self) -> tuple[str, float]:
        with self._lock:
            self.calls += 1
            token = f"token-{self.calls}"
        time.sleep(self.delay)
        return token, self.lifetime


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def two_caches(store, clock) -> tuple[TokenCache, TokenCache]:
    return TokenCache(store=store, clock=clock), TokenCache(store=store, clock=clock)


def test_a_second_process_uses_the_first_ones_token(store, clock):
    a, b = two_caches(store, clock)
    fetch = Fetches()

    assert a.get("bar", fetch) == "token-1"
    assert b.get("bar", fetch) == "token-1"
    assert (fetch.calls, a.fetch_count, b.fetch_count) == (1, 1, 0)
    assert b.get("bar", fetch) == "token-1"
    assert store.loads == 2  # b's second ask came from its memory


def test_the_stored_expiry_is_daraja_s_and_each_cache_keeps_the_margin(store, clock):
    a, b = two_caches(store, clock)
    fetch = Fetches()
    a.get("bar", fetch)
    assert store.rows["bar"].expires_at == clock.now + 3599

    clock.now += 3599 - 60 - 0.5
    assert b.get("bar", fetch) == "token-1"
    clock.now += 0.5  # both caches see it stale now: one fetch between them
    assert b.get("bar", fetch) == "token-2"
    assert a.get("bar", fetch) == "token-2"
    assert fetch.calls == 2


def test_a_refused_token_is_replaced_once_for_every_process(store, clock):
    a, b = two_caches(store, clock)
    fetch = Fetches()
    a.get("bar", fetch)
    b.get("bar", fetch)

    # Daraja refuses token-1 (revoked): a drops it and fetches; the store now has token-2.
    assert a.invalidate("bar", "token-1") is True
    assert a.get("bar", fetch) == "token-2"
    assert store.rows["bar"].token == "token-2"
    # b still holds token-1 until Daraja refuses it too; then it takes the store's, no fetch.
    assert b.peek("bar") == "token-1"
    b.invalidate("bar", "token-1")
    assert b.get("bar", fetch) == "token-2"
    assert fetch.calls == 2


def test_a_refused_token_still_in_the_store_is_not_taken_again(store, clock):
    a, b = two_caches(store, clock)
    fetch = Fetches()
    a.get("bar", fetch)

    b.invalidate("bar", "token-1")  # b was refused before anyone replaced it
    assert b.get("bar", fetch) == "token-2"
    assert fetch.calls == 2


def test_threads_of_two_processes_share_one_fetch(store):
    caches = two_caches(store, time.time)
    fetch = Fetches(delay=0.05)
    start = threading.Barrier(20)
    seen: list[str] = []

    def ask(cache: TokenCache) -> None:
        start.wait()
        seen.append(cache.get("bar", fetch))

    threads = [threading.Thread(target=ask, args=(caches[n % 2],)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert fetch.calls == 1
    assert seen == ["token-1"] * 20


def test_a_failed_fetch_propagates_as_it_is_and_stores_nothing(store, clock):
    cache = TokenCache(store=store, clock=clock)
    refused = DarajaAuthError("refused", reason="bad_credentials")

    def fail() -> tuple[str, float]:
        raise refused

    with pytest.raises(DarajaAuthError) as caught:
        cache.get("bar", fail)
    assert caught.value is refused
    assert store.rows == {}
    assert cache.get("bar", Fetches()) == "token-1"


class BrokenStore(MemoryStore):
    def __init__(self, *, load_fails: bool = False, write_fails: bool = False) -> None:
        super().__init__()
        self.load_fails, self.write_fails = load_fails, write_fails

    def load(self, key: str) -> StoredToken | None:
        if self.load_fails:
            raise ConnectionError("database unreachable")
        return super().load(key)

    def refresh(self, key, usable, fetch):
        if self.write_fails:
            fetch()
            raise ConnectionError("connection lost after the fetch")
        return super().refresh(key, usable, fetch)


def test_a_broken_store_never_stops_a_token(clock, caplog):
    cache = TokenCache(store=BrokenStore(load_fails=True), clock=clock)
    fetch = Fetches()

    with caplog.at_level(logging.WARNING, logger="app.mpesa.tokens"):
        assert cache.get("bar", fetch) == "token-1"
    assert cache.get("bar", fetch) == "token-1"  # kept in memory
    assert fetch.calls == 1
    assert "shared Daraja token store failed (ConnectionError)" in caplog.text
    assert "token-1" not in caplog.text and "unreachable" not in caplog.text


def test_a_store_failing_after_the_fetch_keeps_that_token(clock):
    cache = TokenCache(store=BrokenStore(write_fails=True), clock=clock)
    fetch = Fetches()

    assert cache.get("bar", fetch) == "token-1"
    assert fetch.calls == 1


def test_a_fetch_error_is_not_mistaken_for_a_store_failure(clock):
    cache = TokenCache(store=BrokenStore(), clock=clock)

    def busy() -> tuple[str, float]:
        raise DarajaError("busy", transient=True)

    with pytest.raises(DarajaError, match="busy"):
        cache.get("bar", busy)


def test_with_a_store_the_clock_is_wall_time(store):
    cache = TokenCache(store=store)
    cache.get("bar", Fetches())
    assert abs(store.rows["bar"].expires_at - (time.time() + 3599)) < 5
    assert cache.shared and not TokenCache().shared


def test_a_stored_token_never_shows_in_its_repr():
    assert "secret-token" not in repr(StoredToken("secret-token", 1.0))

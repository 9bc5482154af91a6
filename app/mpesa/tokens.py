"""A thread-safe cache of Daraja OAuth tokens, one per credential set, optionally shared.

On its own a `TokenCache` keeps the tokens in this process's memory. Given a `SharedTokenStore`
(the app gives it one backed by its database: `app/payments/token_store.py`), every process
using that store shares each token: a process with no fresh token in memory reads the store,
and only when the store has none either does one process, holding the store's lock, ask
Daraja; the others wait for that lock, find the new token and keep a copy. Fetches are then
one per credential set per token lifetime (plus one per forced expiry), whatever the number
of worker processes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)

# A fetcher returns the token and its lifetime in seconds.
Fetcher = Callable[[], tuple[str, float]]


@dataclass(frozen=True, repr=False)
class StoredToken:
    """A token and when Daraja stops accepting it, on the cache's clock (no margin taken off)."""

    token: str
    expires_at: float

    def __repr__(self) -> str:
        return f"StoredToken(token='***', expires_at={self.expires_at!r})"


class SharedTokenStore(Protocol):
    """Where processes share tokens. Keys are `Credentials.cache_key` values; tokens are secret.

    Times are on the clock of the caches that use the store (wall time: `time.time`), so every
    process sharing a store must use the same kind of clock.
    """

    def load(self, key: str) -> StoredToken | None:
        """The stored token for `key`, or None when there is none (or it cannot be read)."""
        ...

    def refresh(
        self, key: str, usable: Callable[[StoredToken], bool], fetch: Callable[[], StoredToken]
    ) -> StoredToken:
        """Holding a lock every process sharing the store respects, for `key`: read the stored
        token again and return it if `usable` says so (another process may have just fetched);
        otherwise call `fetch`, store what it returns (replacing the old token) and return it.
        An exception from `fetch` propagates unchanged and nothing is stored.
        """
        ...


@dataclass(frozen=True)
class _Entry:
    token: str
    expires_at: float  # fresh until: Daraja's expiry less the margin


class TokenCache:
    """Holds one token per `Credentials.cache_key` and refreshes it before it expires.

    Only one refresh runs at a time per key: threads that ask while a refresh is under way wait
    for it and share its token, so a burst of requests costs one call to the OAuth endpoint.
    With a `store`, the same holds across processes (see the module's docstring); the clock
    then defaults to wall time, which every process agrees on.
    """

    def __init__(
        self,
        *,
        margin: float = 60.0,
        clock: Callable[[], float] | None = None,
        store: SharedTokenStore | None = None,
    ) -> None:
        self.margin = margin
        self._clock = clock or (time.time if store is not None else time.monotonic)
        self._store = store
        self._entries: dict[str, _Entry] = {}
        self._rejected: dict[str, str] = {}  # the last token Daraja refused, per key
        self._key_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.fetch_count = 0

    @property
    def shared(self) -> bool:
        """True when tokens are shared with other processes through a store."""
        return self._store is not None

    def get(self, key: str, fetch: Fetcher) -> str:
        """Return a fresh token for `key`, calling `fetch` only when none is cached."""
        token = self.peek(key)
        if token is not None:
            return token
        with self._lock_for(key):
            token = self.peek(key)  # another thread may have refreshed while we waited
            if token is not None:
                return token
            if self._store is None:
                return self._refresh(key, fetch)
            return self._refresh_shared(key, fetch)

    def peek(self, key: str) -> str | None:
        """The cached token for `key` if it is still fresh, without fetching."""
        with self._guard:
            entry = self._entries.get(key)
        if entry is None or self._clock() >= entry.expires_at:
            return None
        return entry.token

    def invalidate(self, key: str, token: str) -> bool:
        """Drop `key`'s token if it is still `token` (not one another thread just fetched).

        With a store, `token` is also never taken from the store again: the next `get` fetches
        a new one and replaces it there, unless another process already has.
        """
        with self._guard:
            if self._store is not None:
                self._rejected[key] = token
            entry = self._entries.get(key)
            if entry is None or entry.token != token:
                return False
            del self._entries[key]
            return True

    def clear(self) -> None:
        """Forget every token held in memory (for tests and credential changes)."""
        with self._guard:
            self._entries.clear()

    def _refresh(self, key: str, fetch: Fetcher) -> str:
        stored = self._fetch(fetch)
        self._keep(key, stored)
        return stored.token

    def _fetch(self, fetch: Fetcher) -> StoredToken:
        fetched_at = self._clock()  # before the call: the lifetime started no later than this
        with self._guard:
            self.fetch_count += 1
        token, expires_in = fetch()
        return StoredToken(token, fetched_at + expires_in)

    def _keep(self, key: str, stored: StoredToken) -> None:
        with self._guard:
            self._entries[key] = _Entry(stored.token, stored.expires_at - self.margin)

    def _refresh_shared(self, key: str, fetch: Fetcher) -> str:
        """The store's token if it is usable, else one fetched under the store's lock.

        The store failing (database down, lock wait too long) never stops a push: this process
        then fetches on its own, as it would without a store. Daraja refusing the fetch is the
        caller's business and propagates as it is.
        """
        assert self._store is not None
        with self._guard:
            rejected = self._rejected.get(key)

        def usable(stored: StoredToken) -> bool:
            return stored.token != rejected and self._clock() < stored.expires_at - self.margin

        fetched: list[StoredToken] = []
        failed: list[BaseException] = []

        def fetch_now() -> StoredToken:
            try:
                fetched.append(self._fetch(fetch))
            except BaseException as exc:
                failed.append(exc)
                raise
            return fetched[-1]

        try:
            stored = self._store.load(key)
            if stored is None or not usable(stored):
                stored = self._store.refresh(key, usable, fetch_now)
        except Exception as exc:
            if failed:
                if exc is failed[0]:
                    raise
                raise failed[0] from None
            # Only the exception's type: a driver's message can carry statement parameters.
            logger.warning(
                "The shared Daraja token store failed (%s); this process fetches its own token",
                type(exc).__name__,
            )
            stored = fetched[-1] if fetched else fetch_now()
        self._keep(key, stored)
        return stored.token

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._key_locks.setdefault(key, threading.Lock())

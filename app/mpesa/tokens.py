"""A thread-safe cache of Daraja OAuth tokens, one per credential set."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# A fetcher returns the token and its lifetime in seconds.
Fetcher = Callable[[], tuple[str, float]]


@dataclass(frozen=True)
class _Entry:
    token: str
    expires_at: float


class TokenCache:
    """Holds one token per `Credentials.cache_key` and refreshes it before it expires.

    Only one refresh runs at a time per key: threads that ask while a refresh is under way wait
    for it and share its token, so a burst of requests costs one call to the OAuth endpoint.
    """

    def __init__(
        self, *, margin: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.margin = margin
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.fetch_count = 0

    def get(self, key: str, fetch: Fetcher) -> str:
        """Return a fresh token for `key`, calling `fetch` only when none is cached."""
        token = self.peek(key)
        if token is not None:
            return token
        with self._lock_for(key):
            token = self.peek(key)  # another thread may have refreshed while we waited
            if token is not None:
                return token
            return self._refresh(key, fetch)

    def peek(self, key: str) -> str | None:
        """The cached token for `key` if it is still fresh, without fetching."""
        with self._guard:
            entry = self._entries.get(key)
        if entry is None or self._clock() >= entry.expires_at:
            return None
        return entry.token

    def invalidate(self, key: str, token: str) -> bool:
        """Drop `key`'s token if it is still `token` (not one another thread just fetched)."""
        with self._guard:
            entry = self._entries.get(key)
            if entry is None or entry.token != token:
                return False
            del self._entries[key]
            return True

    def clear(self) -> None:
        """Forget every token (for tests and credential changes)."""
        with self._guard:
            self._entries.clear()

    def _refresh(self, key: str, fetch: Fetcher) -> str:
        fetched_at = self._clock()  # before the call: the lifetime started no later than this
        with self._guard:
            self.fetch_count += 1
        token, expires_in = fetch()
        with self._guard:
            self._entries[key] = _Entry(token, fetched_at + expires_in - self.margin)
        return token

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._key_locks.setdefault(key, threading.Lock())

"""The one Daraja client each process uses, pointed at the right place, and its token cache:
shared with every other process through the database (app/payments/token_store.py)."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from app import redaction
from app.extensions import db
from app.health import metrics
from app.mpesa import DarajaClient, TokenCache, base_url_for
from app.payments.token_store import store_for

_CLIENTS = "pesatab_daraja_clients"
_TOKENS = "pesatab_daraja_tokens"


def base_url(environment: str) -> str:
    """DARAJA_BASE_URL if set; the built-in simulator when it is on; else Safaricom's host."""
    config = current_app.config
    if config.get("DARAJA_BASE_URL"):
        return config["DARAJA_BASE_URL"].rstrip("/")
    if config.get("DARAJA_SIMULATOR"):
        return config["PUBLIC_BASE_URL"].rstrip("/") + "/_daraja"
    return base_url_for(environment)


def token_cache() -> TokenCache:
    """One token cache per process, shared by every client, backed by the database: one token
    per credential set across all the app's processes."""
    cache = current_app.extensions.get(_TOKENS)
    if cache is None:
        cache = current_app.extensions.setdefault(_TOKENS, build_token_cache())
    return cache


def build_token_cache(clock: Callable[[], float] | None = None) -> TokenCache:
    """A token cache on the current app's database (in memory only for an in-memory SQLite
    database). `clock` is wall time in seconds unless a benchmark or test fakes it."""
    store = store_for(current_app, db.engine)
    return TokenCache(store=store, clock=clock)


def client_for(environment: str, *, max_retries: int = 2) -> DarajaClient:
    """The process's client for `environment` (sandbox or production). Background jobs ask for
    `max_retries=0`: they have their own, slower back-off and must not sleep in a tick."""
    url = base_url(environment)
    clients: dict[tuple[str, int], DarajaClient] = current_app.extensions.setdefault(_CLIENTS, {})
    key = (url, max_retries)
    if key not in clients:
        clients[key] = DarajaClient(
            url,
            token_cache=token_cache(),
            max_amount=current_app.config["MPESA_MAX_AMOUNT"],
            read_timeout=current_app.config["DARAJA_READ_TIMEOUT"],
            max_retries=max_retries,
            observer=metrics.observe_daraja,
            on_token=redaction.register_secret,
        )
    return clients[key]

"""Daraja OAuth tokens shared by every process through the database (a `SharedTokenStore`).

gunicorn runs several worker processes, and the scheduler may run in yet another; each used to
fetch its own token per bar. With this store they share one: `app.mpesa.TokenCache` keeps a copy
in memory and comes here only when its copy is missing or stale, or Daraja refused it.

- A row per credential set (`daraja_token`), keyed by an HMAC of `Credentials.cache_key` under
  the app's SECRET_KEY; the token sealed with the key ring (app/crypto.py) with that row key as
  associated data, so a sealed token copied to another row does not open. A row that cannot be
  opened (a key dropped from the ring, tampering) counts as no token: the next fetch replaces it.
- One fetch at a time across processes: `refresh` inserts the row if missing (ON CONFLICT DO
  NOTHING), locks it (SELECT … FOR UPDATE on PostgreSQL; on SQLite the INSERT takes the
  database's write lock, which serialises writers), reads it again, and fetches only if it still
  holds no usable token. The others wait on the lock and then find the new token.
- Its own short transaction on its own pooled connection: the caller's `db.session` (a push's
  payment row) is never committed or rolled back by this. On SQLite that relies on the rule the
  push paths keep anyway: the payment row is committed before Daraja is called, so the session
  holds no write lock while a token is fetched.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from app import redaction
from app.crypto import KeyRing, UnsealError
from app.models import DarajaToken, utcnow
from app.mpesa.tokens import StoredToken

logger = logging.getLogger(__name__)

TABLE = DarajaToken.__table__
# How long a process waits for another's fetch before fetching on its own (PostgreSQL's
# lock_timeout; SQLite's busy_timeout is the engine's own, 15 s). A fetch with its retries
# normally takes well under this.
LOCK_WAIT_SECONDS = 30.0
NO_BAR = 0  # tokens belong to a credential set, not a bar: sealed under bar 0, which never exists
_ROW_KEY_LABEL = b"pesatab/daraja-token-row/v1"
EPOCH = datetime(1970, 1, 1)  # naive UTC, as every DateTime column


class DatabaseTokenStore:
    """A `SharedTokenStore` on the app's database (PostgreSQL in production, SQLite locally)."""

    def __init__(
        self,
        engine: Engine,
        keyring: KeyRing,
        secret_key: str | bytes,
        *,
        lock_wait: float = LOCK_WAIT_SECONDS,
        on_open: Callable[[str], None] = redaction.register_secret,
    ) -> None:
        if not secret_key:
            raise ValueError("the shared token store needs the app's SECRET_KEY")
        material = secret_key.encode() if isinstance(secret_key, str) else secret_key
        self._engine = engine
        self._keyring = keyring
        self._row_secret = hmac.new(material, _ROW_KEY_LABEL, hashlib.sha256).digest()
        self._lock_wait = lock_wait
        self._on_open = on_open  # every token read here is kept out of this process's logs

    def __repr__(self) -> str:
        return f"DatabaseTokenStore(dialect={self._engine.dialect.name!r})"

    def row_key(self, key: str) -> str:
        """The row's primary key for a cache key: an HMAC, useless without the SECRET_KEY."""
        return hmac.new(self._row_secret, key.encode(), hashlib.sha256).hexdigest()

    # -- SharedTokenStore ---------------------------------------------------------------------

    def load(self, key: str) -> StoredToken | None:
        row_key = self.row_key(key)
        with self._engine.connect() as conn:
            row = conn.execute(_select(row_key)).first()
        return self._open(row_key, row)

    def refresh(
        self, key: str, usable: Callable[[StoredToken], bool], fetch: Callable[[], StoredToken]
    ) -> StoredToken:
        row_key = self.row_key(key)
        with self._engine.connect() as conn, conn.begin():
            self._lock(conn, row_key)
            stored = self._open(row_key, conn.execute(_select(row_key).with_for_update()).first())
            if stored is not None and usable(stored):
                return stored  # another process fetched while we waited for the lock
            fresh = fetch()  # raises: the transaction rolls back, the old row stays as it was
            conn.execute(
                update(TABLE)
                .where(TABLE.c.cache_key == row_key)
                .values(
                    sealed_token=self._seal(row_key, fresh.token),
                    expires_at=_to_datetime(fresh.expires_at),
                    updated_at=utcnow(),
                )
            )
            return fresh

    # -- the row ------------------------------------------------------------------------------

    def _lock(self, conn: Connection, row_key: str) -> None:
        """Make sure the row exists and hold the write lock on it until the commit."""
        dialect = conn.dialect.name
        values = {"cache_key": row_key, "updated_at": utcnow()}
        if dialect == "postgresql":
            milliseconds = str(max(int(self._lock_wait * 1000), 1))
            conn.execute(select(func.set_config("lock_timeout", milliseconds, True)))
            conn.execute(pg_insert(TABLE).values(values).on_conflict_do_nothing())
        elif dialect == "sqlite":
            conn.execute(sqlite_insert(TABLE).values(values).on_conflict_do_nothing())
        else:  # any other database: insert, and let the row lock below do the rest
            try:
                with conn.begin_nested():
                    conn.execute(TABLE.insert().values(values))
            except IntegrityError:
                pass

    def _seal(self, row_key: str, token: str) -> str:
        return self._keyring.seal(token, bar_id=NO_BAR, field=_field(row_key))

    def _open(self, row_key: str, row) -> StoredToken | None:
        if row is None or row.sealed_token is None or row.expires_at is None:
            return None
        try:
            token = self._keyring.unseal(row.sealed_token, bar_id=NO_BAR, field=_field(row_key))
        except UnsealError as err:
            logger.info(
                "A shared Daraja token cannot be opened (%s); another is fetched", err.reason
            )
            return None
        self._on_open(token)
        return StoredToken(token, _to_timestamp(row.expires_at))


def _select(row_key: str):
    return select(TABLE.c.sealed_token, TABLE.c.expires_at).where(TABLE.c.cache_key == row_key)


def _field(row_key: str) -> str:
    return f"daraja_token:{row_key}"


def _to_datetime(timestamp: float) -> datetime:
    """Naive UTC, rounded down to the microsecond the column keeps: never later than Daraja's."""
    return EPOCH + timedelta(microseconds=math.floor(timestamp * 1_000_000))


def _to_timestamp(moment: datetime) -> float:
    return (moment - EPOCH) / timedelta(seconds=1)


def shares_between_processes(engine: Engine) -> bool:
    """False for an in-memory SQLite database: no other process can see it, and a second
    connection to it may be the session's own (its transaction is not ours to commit)."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return True
    database = url.database or ""
    return database not in ("", ":memory:") and url.query.get("mode") != "memory"


def store_for(app: Flask, engine: Engine) -> DatabaseTokenStore | None:
    """The app's shared store, or None when the database cannot share tokens between processes."""
    if not shares_between_processes(engine):
        return None
    return DatabaseTokenStore(engine, app.extensions["pesatab_keyring"], app.config["SECRET_KEY"])

"""API keys: made once, shown once, stored as a SHA-256 of the whole key.

A key is `pt_live_` plus 43 random URL-safe characters (256 bits), or `pt_test_` for a bar whose
credentials in use are Daraja's sandbox, so a key says whether it can move real money. Its first
12 characters are kept in the clear so people can tell keys apart; nothing else about it is
stored or logged. Either kind opens the API.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from app import audit
from app.api.errors import ApiError
from app.enums import Role
from app.extensions import db
from app.i18n import _
from app.models import ApiKey, Bar, utcnow
from app.settings import sandbox

KEY_START = "pt_live_"
TEST_KEY_START = "pt_test_"  # a sandbox bar's keys: no real money behind them
KEY_STARTS = (KEY_START, TEST_KEY_START)
PREFIX_LENGTH = 12
LABEL_MAX = 60
# last_used_at is shown to the minute; writing it on every poll would only add write load.
LAST_USED_PRECISION = timedelta(minutes=1)

MISSING = "Send the API key in an Authorization: Bearer header."
WRONG = (
    "That API key is not valid. Check it was copied whole, or ask the bar's owner for a new one."
)
REVOKED = "That API key was revoked. Ask the bar's owner for a new one."


class ApiKeyError(ValueError):
    """A request about keys that cannot be done; the message is for the person."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class NewKey:
    api_key: ApiKey
    secret: str  # the whole key: show it once, never store or log it


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def clean_label(label: str | None) -> str:
    label = " ".join((label or "").split())
    if not label:
        raise ApiKeyError(_("Give the key a name, like “Till 1 POS”."), field="label")
    if len(label) > LABEL_MAX:
        raise ApiKeyError(
            _("A key's name is at most %(max)d characters.", max=LABEL_MAX), field="label"
        )
    return label


def create_key(
    bar: Bar, label: str, *, created_by_id: int | None = None, by: str = Role.OWNER
) -> NewKey:
    """Make a key for `bar`. The returned secret is the only copy there will ever be. Commits."""
    label = clean_label(label)
    start = TEST_KEY_START if sandbox.bar_is_sandbox(bar.id) else KEY_START
    secret = start + secrets.token_urlsafe(32)
    key = ApiKey(
        bar_id=bar.id,
        label=label,
        prefix=secret[:PREFIX_LENGTH],
        key_hash=hash_key(secret),
        created_by_id=created_by_id,
    )
    db.session.add(key)
    db.session.flush()
    audit.record(
        "api_key.created",
        bar_id=bar.id,
        user_id=created_by_id,
        api_key_id=key.id,
        label=label,
        prefix=key.prefix,
        by=by,
    )
    db.session.commit()
    return NewKey(key, secret)


def revoke_key(key: ApiKey, *, user_id: int | None = None) -> bool:
    """Stop `key` working from its next request. Returns False if it was already revoked.
    Commits."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = utcnow()
    audit.record(
        "api_key.revoked",
        bar_id=key.bar_id,
        user_id=user_id,
        api_key_id=key.id,
        label=key.label,
        prefix=key.prefix,
    )
    db.session.commit()
    return True


def bar_keys(bar_id: int) -> list[ApiKey]:
    """The bar's keys, working ones first, newest first."""
    query = (
        select(ApiKey)
        .where(ApiKey.bar_id == bar_id)
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    return list(db.session.scalars(query))


def authenticate(authorization: str | None) -> ApiKey:
    """The working key in an `Authorization: Bearer …` header; raises a 401 ApiError otherwise.
    Notes the time of use (to the minute)."""
    scheme, _, secret = (authorization or "").strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized(MISSING)
    if not secret.startswith(KEY_STARTS):  # not one of ours: no need to look it up
        raise _unauthorized(WRONG)
    key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    if key is None:
        raise _unauthorized(WRONG)
    if key.revoked_at is not None:
        raise _unauthorized(REVOKED)
    _touch(key)
    return key


def _touch(key: ApiKey) -> None:
    now = utcnow()
    if key.last_used_at is not None and key.last_used_at > now - LAST_USED_PRECISION:
        return
    key.last_used_at = now
    db.session.commit()


def _unauthorized(message: str) -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="PesaTab"'}
    )

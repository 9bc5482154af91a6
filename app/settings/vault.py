"""Saving and opening a bar's M-Pesa credentials. Secrets are sealed before they touch the session.

The rules: secrets are write-only (a page shows that each is set and the key's last 4 only);
replacing one means typing it again; any change sends the bar back to step 1 of onboarding;
audit entries name the fields that changed, never their values.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from app import audit, redaction
from app.crypto import KeyRing, UnsealError
from app.extensions import db
from app.models import Bar, MpesaCredential
from app.mpesa import Credentials

SECRET_FIELDS = ("consumer_key", "consumer_secret", "passkey")
PLAIN_FIELDS = ("environment", "kind", "shortcode", "till_number")


class CredentialsUnavailable(Exception):
    """Stored credentials exist but cannot be opened (wrong or missing key)."""

    def __init__(self) -> None:
        super().__init__(UnsealError.MESSAGE)


@dataclass(frozen=True)
class CredentialInput:
    """What the owner typed. A secret left blank keeps the stored one."""

    environment: str
    kind: str
    shortcode: str
    till_number: str | None
    consumer_key: str | None = None
    consumer_secret: str | None = None
    passkey: str | None = None


def keyring() -> KeyRing:
    return current_app.extensions["pesatab_keyring"]


def credential_for(bar: Bar) -> MpesaCredential | None:
    return db.session.scalar(select(MpesaCredential).where(MpesaCredential.bar_id == bar.id))


def _seal(cred: MpesaCredential, field: str, value: str) -> None:
    setattr(cred, f"{field}_sealed", keyring().seal(value, bar_id=cred.bar_id, field=field))


def _secret_changed(cred: MpesaCredential, field: str, value: str) -> bool:
    sealed = getattr(cred, f"{field}_sealed", None)
    if not sealed:
        return True
    try:
        return keyring().unseal(sealed, bar_id=cred.bar_id, field=field) != value
    except UnsealError:
        return True


def save(bar: Bar, data: CredentialInput) -> list[str]:
    """Store the bar's credentials; returns the names of the fields that changed. Commits."""
    cred = credential_for(bar)
    if cred is None:
        missing = [f for f in SECRET_FIELDS if not getattr(data, f)]
        if missing:
            raise ValueError("All three secrets are needed the first time.")
        cred = MpesaCredential(bar_id=bar.id, revision=0)
        db.session.add(cred)
    till = data.till_number if data.kind == "till" else None
    changed = [
        f
        for f in PLAIN_FIELDS
        if getattr(cred, f) != (till if f == "till_number" else getattr(data, f))
    ]
    for field in PLAIN_FIELDS:
        setattr(cred, field, till if field == "till_number" else getattr(data, field))
    for field in SECRET_FIELDS:
        value = getattr(data, field)
        if value:
            redaction.register_secret(value)
        if value and _secret_changed(cred, field, value):
            _seal(cred, field, value)
            changed.append(field)
    if data.consumer_key:
        cred.consumer_key_last4 = data.consumer_key[-4:]
    if changed:
        cred.key_id = keyring().current_kid
        cred.revision = (cred.revision or 0) + 1
        bar.setup_state = "credentials_saved"
        audit.record("mpesa.credentials_saved", bar_id=bar.id, fields=sorted(changed))
    db.session.commit()
    return changed


def open_credentials(cred: MpesaCredential) -> Credentials:
    """The usable credentials; CredentialsUnavailable when the keys cannot open them."""
    ring = keyring()
    try:
        secrets = {
            f: ring.unseal(getattr(cred, f"{f}_sealed"), bar_id=cred.bar_id, field=f)
            for f in SECRET_FIELDS
        }
    except UnsealError:
        raise CredentialsUnavailable() from None
    for value in secrets.values():
        redaction.register_secret(value)
    return Credentials(
        environment=cred.environment,
        kind=cred.kind,
        shortcode=cred.shortcode,
        till_number=cred.till_number,
        **secrets,
    )


def can_open(cred: MpesaCredential) -> bool:
    try:
        open_credentials(cred)
    except CredentialsUnavailable:
        return False
    return True


def rotate_all() -> tuple[int, int]:
    """Re-seal every credential under the current key. Returns (re-sealed, unreadable)."""
    ring, resealed, unreadable = keyring(), 0, 0
    for cred in db.session.scalars(select(MpesaCredential).order_by(MpesaCredential.id)).all():
        try:
            for field in SECRET_FIELDS:
                column = f"{field}_sealed"
                sealed = getattr(cred, column)
                if ring.needs_reseal(sealed):
                    setattr(cred, column, ring.reseal(sealed, bar_id=cred.bar_id, field=field))
        except UnsealError:
            db.session.rollback()
            unreadable += 1
            continue
        if cred.key_id != ring.current_kid:
            cred.key_id = ring.current_kid
            resealed += 1
        db.session.commit()
    if resealed:
        audit.record("keys.rotated", credentials=resealed, key_id=ring.current_kid)
        db.session.commit()
    return resealed, unreadable

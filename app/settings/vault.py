"""Saving and opening a bar's M-Pesa credentials. Secrets are sealed before they touch the session.

The rules: secrets are write-only (a page shows that each is set and the key's last 4 only);
replacing one means typing it again; audit entries name the fields that changed, never their
values. A change to a bar that is not live yet sends it back to step 1 of onboarding. A live bar
is never taken off M-Pesa by a save: the new set is kept *pending* next to the one in use, sealed
the same way (same bar, same field names), until its check and a paid test push prove it and the
owner switches to it (app/settings/onboarding.py); cashiers push with the active set meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select

from app import audit, redaction
from app.crypto import KeyRing, UnsealError
from app.extensions import db
from app.i18n import N_, _
from app.models import Bar, MpesaCredential, Payment, utcnow
from app.mpesa import Credentials

SECRET_FIELDS = ("consumer_key", "consumer_secret", "passkey")
PLAIN_FIELDS = ("environment", "kind", "shortcode", "till_number")
PENDING = "pending_"
LIVE = "live"
# UnsealError.MESSAGE, said to the owner in their language.
UNREADABLE = N_("stored M-Pesa credentials cannot be opened with the configured keys")


class CredentialsUnavailable(Exception):
    """Stored credentials exist but cannot be opened (wrong or missing key)."""

    def __init__(self) -> None:
        super().__init__(_(UNREADABLE))


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


def _seal(cred: MpesaCredential, field: str, value: str) -> str:
    return keyring().seal(value, bar_id=cred.bar_id, field=field)


def _secret_changed(cred: MpesaCredential, sealed: str | None, field: str, value: str) -> bool:
    if not sealed:
        return True
    try:
        return keyring().unseal(sealed, bar_id=cred.bar_id, field=field) != value
    except UnsealError:
        return True


def _plain(data: CredentialInput, field: str) -> str | None:
    if field == "till_number":
        return data.till_number if data.kind == "till" else None
    return getattr(data, field)


def _stored(cred: MpesaCredential, prefix: str = "") -> dict[str, str | None]:
    """One set's plain values and sealed secrets: the active set, or (PENDING) the pending one."""
    names = [*PLAIN_FIELDS, *(f"{f}_sealed" for f in SECRET_FIELDS), "consumer_key_last4"]
    return {name: getattr(cred, prefix + name) for name in names}


def _apply(cred: MpesaCredential, data: CredentialInput, base: dict) -> tuple[dict, list[str]]:
    """`base` (a set as `_stored` gives it) with what the owner typed over it, and the names of
    the fields that differ from `base`. Every secret typed is kept out of the logs."""
    new, changed = dict(base), []
    for field in PLAIN_FIELDS:
        new[field] = _plain(data, field)
        if base[field] != new[field]:
            changed.append(field)
    for field in SECRET_FIELDS:
        value = getattr(data, field)
        if not value:
            continue
        redaction.register_secret(value)
        if _secret_changed(cred, base[f"{field}_sealed"], field, value):
            new[f"{field}_sealed"] = _seal(cred, field, value)
            changed.append(field)
        if field == "consumer_key":
            new["consumer_key_last4"] = value[-4:]
    return new, changed


def _differs(cred: MpesaCredential, one: dict, other: dict) -> list[str]:
    """The fields in which two stored sets differ (secrets compared opened, never shown)."""
    found = [f for f in PLAIN_FIELDS if one[f] != other[f]]
    for field in SECRET_FIELDS:
        a, b = one[f"{field}_sealed"], other[f"{field}_sealed"]
        if a == b:
            continue
        try:
            opened = keyring().unseal(a, bar_id=cred.bar_id, field=field)
        except UnsealError:
            found.append(field)
            continue
        if _secret_changed(cred, b, field, opened):
            found.append(field)
    return found


def next_revision(cred: MpesaCredential) -> int:
    """A revision no set of this bar has had and no payment carries: a paid test push proves
    exactly one set, never a later one that happens to reuse its number."""
    pushed = db.session.scalar(
        select(func.max(Payment.credential_revision)).where(Payment.bar_id == cred.bar_id)
    )
    return max(cred.revision or 0, cred.pending_revision or 0, pushed or 0) + 1


def save(bar: Bar, data: CredentialInput) -> list[str]:
    """Store the bar's credentials; returns the names of the fields that changed. Commits.

    For a live bar the new set is stored pending (see the module's docstring) and the names
    are those in which it differs from the set in use."""
    cred = credential_for(bar)
    if cred is not None and bar.setup_state == LIVE:
        return _save_pending(bar, cred, data)
    if cred is None:
        missing = [f for f in SECRET_FIELDS if not getattr(data, f)]
        if missing:
            raise ValueError("All three secrets are needed the first time.")
        cred = MpesaCredential(bar_id=bar.id, revision=0)
        db.session.add(cred)
        base = dict.fromkeys(_stored(cred))
    else:
        base = _stored(cred)
    new, changed = _apply(cred, data, base)
    if changed:
        for name, value in new.items():
            setattr(cred, name, value)
        cred.key_id = keyring().current_kid
        cred.revision = next_revision(cred) if cred.id else 1
        bar.setup_state = "credentials_saved"
        audit.record("mpesa.credentials_saved", bar_id=bar.id, fields=sorted(changed))
    db.session.commit()
    return changed


def _save_pending(bar: Bar, cred: MpesaCredential, data: CredentialInput) -> list[str]:
    """A live bar's new credentials: kept beside the active ones, which stay in use. A blank
    secret keeps the pending one if a set is pending, else the active one."""
    base = _stored(cred, PENDING) if cred.has_pending else _stored(cred)
    new, changed = _apply(cred, data, base)
    if not changed:
        db.session.commit()
        return []
    differs = _differs(cred, new, _stored(cred))
    if not differs:  # typed back to the set in use: nothing left to switch to
        clear_pending(cred, reason="same_as_active")
        db.session.commit()
        return []
    for name, value in new.items():
        setattr(cred, PENDING + name, value)
    cred.pending_revision = next_revision(cred)
    cred.pending_saved_at, cred.pending_checked_at = utcnow(), None
    audit.record("mpesa.credentials_saved", bar_id=bar.id, fields=sorted(differs), pending=True)
    db.session.commit()
    return differs


def clear_pending(cred: MpesaCredential, *, reason: str) -> None:
    """Forget the pending set (audited). Does not commit."""
    if not cred.has_pending:
        return
    revision = cred.pending_revision
    for name in _stored(cred):
        setattr(cred, PENDING + name, None)
    cred.pending_revision = cred.pending_saved_at = cred.pending_checked_at = None
    audit.record("mpesa.pending_discarded", bar_id=cred.bar_id, revision=revision, reason=reason)


def adopt_pending(cred: MpesaCredential) -> list[str]:
    """Put the pending set in use, proved (checked and paid) under its own revision; returns
    the fields that changed. Does not commit or audit: onboarding.use_pending does both."""
    pending, active = _stored(cred, PENDING), _stored(cred)
    changed = _differs(cred, pending, active)
    for name, value in pending.items():
        setattr(cred, name, value)
        setattr(cred, PENDING + name, None)
    now = utcnow()
    cred.revision = cred.pending_revision
    cred.key_id = keyring().current_kid
    cred.checked_revision, cred.checked_at = cred.revision, cred.pending_checked_at or now
    cred.verified_revision, cred.verified_at = cred.revision, now
    cred.pending_revision = cred.pending_saved_at = cred.pending_checked_at = None
    return changed


def open_credentials(cred: MpesaCredential) -> Credentials:
    """The usable credentials; CredentialsUnavailable when the keys cannot open them."""
    return _open(cred, "")


def open_pending(cred: MpesaCredential) -> tuple[int, Credentials]:
    """The pending set's revision and usable credentials (for its check and test push only)."""
    if not cred.has_pending:
        raise ValueError("no credentials are pending")
    return cred.pending_revision, _open(cred, PENDING)


def _open(cred: MpesaCredential, prefix: str) -> Credentials:
    ring = keyring()
    try:
        secrets = {
            f: ring.unseal(getattr(cred, f"{prefix}{f}_sealed"), bar_id=cred.bar_id, field=f)
            for f in SECRET_FIELDS
        }
    except UnsealError:
        raise CredentialsUnavailable() from None
    for value in secrets.values():
        redaction.register_secret(value)
    return Credentials(
        environment=getattr(cred, prefix + "environment"),
        kind=getattr(cred, prefix + "kind"),
        shortcode=getattr(cred, prefix + "shortcode"),
        till_number=getattr(cred, prefix + "till_number"),
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
                for column in (f"{field}_sealed", f"{PENDING}{field}_sealed"):
                    sealed = getattr(cred, column)
                    if sealed and ring.needs_reseal(sealed):
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

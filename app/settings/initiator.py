"""The bar's initiator credentials, kept in the vault beside the Daraja ones: the initiator name,
its password (sealed with the key ring as field `initiator_password`, never shown back, never
logged) and Safaricom's public certificate for the environment (checked to parse before it is
stored). Owners set them; Transaction Status (and later Reversal and Account Balance) open them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from app import audit, redaction
from app.crypto import UnsealError
from app.extensions import db
from app.i18n import N_, _
from app.models import Bar, InitiatorCredential, utcnow
from app.mpesa import Credentials
from app.mpesa.initiator import Initiator
from app.mpesa.security import CertificateError, read_certificate
from app.settings import vault

FIELD = "initiator_password"
NAME = re.compile(r"[A-Za-z0-9_.@-]{2,64}")
CERTIFICATE_REASONS = {
    "not_pem": N_(
        "This is not a certificate: paste the whole PEM text, from -----BEGIN CERTIFICATE----- "
        "to -----END CERTIFICATE-----."
    ),
    "damaged": N_(
        "The certificate text is damaged or incomplete: download it again from the Daraja "
        "portal and paste all of it."
    ),
    "not_rsa": N_("This certificate has no RSA key, so it is not Safaricom's."),
}


class InitiatorError(ValueError):
    """What the owner typed cannot be saved; `field` names the box, the message says why."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InitiatorUnavailable(Exception):
    """No initiator credentials, or the keys cannot open the stored password."""


@dataclass(frozen=True)
class InitiatorInput:
    name: str
    password: str | None  # blank keeps the stored one
    certificate_pem: str | None  # blank keeps the stored one


def initiator_for(bar_id: int) -> InitiatorCredential | None:
    return db.session.scalar(
        select(InitiatorCredential).where(InitiatorCredential.bar_id == bar_id)
    )


def save(bar: Bar, data: InitiatorInput) -> list[str]:
    """Check and store the initiator credentials; returns the fields that changed (audited by
    name, never by value). Commits. Raises InitiatorError with the owner's sentence."""
    name = (data.name or "").strip()
    if not NAME.fullmatch(name):
        raise InitiatorError(
            _("The initiator name is the M-Pesa portal user's name: letters and digits."), "name"
        )
    found = initiator_for(bar.id)
    pem = (data.certificate_pem or "").strip()
    if found is None and not (data.password and pem):
        raise InitiatorError(_("The password and the certificate are both needed the first time."))
    changed = []
    record = found or InitiatorCredential(bar_id=bar.id)
    if pem and pem != record.certificate_pem:
        try:
            info = read_certificate(pem)
        except CertificateError as err:
            raise InitiatorError(_(CERTIFICATE_REASONS[err.reason]), "certificate") from None
        record.certificate_pem, record.certificate_subject = pem, info.subject
        record.certificate_expires_at = info.expires_at
        changed.append("certificate")
    if data.password:
        redaction.register_secret(data.password)
        if not _same_password(record, data.password):
            record.password_sealed = vault.keyring().seal(data.password, bar_id=bar.id, field=FIELD)
            record.key_id = vault.keyring().current_kid
            changed.append("initiator_password")
    if name != record.initiator_name:
        record.initiator_name = name
        changed.append("initiator_name")
    if changed:
        record.saved_at, record.refused_at = utcnow(), None
        db.session.add(record)
        audit.record("mpesa.initiator_saved", bar_id=bar.id, fields=sorted(changed))
    db.session.commit()
    return changed


def _same_password(record: InitiatorCredential, password: str) -> bool:
    if not record.password_sealed:
        return False
    try:
        opened = vault.keyring().unseal(record.password_sealed, bar_id=record.bar_id, field=FIELD)
    except UnsealError:
        return False
    return opened == password


def open_initiator(bar_id: int) -> Initiator:
    """The usable initiator; InitiatorUnavailable when there is none or it cannot be opened."""
    record = initiator_for(bar_id)
    if record is None:
        raise InitiatorUnavailable()
    try:
        password = vault.keyring().unseal(record.password_sealed, bar_id=bar_id, field=FIELD)
    except UnsealError:
        raise InitiatorUnavailable() from None
    redaction.register_secret(password)
    return Initiator(record.initiator_name, password, record.certificate_pem)


def open_with_credentials(bar: Bar) -> tuple[Credentials, Initiator] | None:
    """The bar's Daraja credentials and its initiator, both opened, or None when either is
    missing or cannot be opened: what every initiator request (status, reversal, balance)
    needs before it is sent."""
    cred = vault.credential_for(bar)
    try:
        who = open_initiator(bar.id)
        return (vault.open_credentials(cred), who) if cred is not None else None
    except (InitiatorUnavailable, vault.CredentialsUnavailable):
        return None


def mark_refused(bar_id: int) -> None:
    """M-Pesa said 2001: the settings page then tells the owner. Does not commit."""
    record = initiator_for(bar_id)
    if record is not None:
        record.refused_at = utcnow()

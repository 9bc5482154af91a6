"""The SecurityCredential Daraja asks for with Transaction Status, Reversal, Account Balance and
B2C: the initiator's password encrypted with the public key of Safaricom's X.509 certificate
for the environment (sandbox and production certificates differ), RSA PKCS#1 v1.5, base64.

PKCS#1 v1.5 padding is random, so the same password gives a new credential every time: compute
it per request and never store it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class CertificateError(ValueError):
    """The text is not a usable certificate. `reason` (not_pem, damaged, not_rsa) lets the app
    say it in the owner's language; the message says it in English."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class CertificateInfo:
    """What the settings page says about a certificate (it is public: nothing here is secret)."""

    subject: str
    expires_at: datetime  # naive UTC


def read_certificate(pem: str) -> CertificateInfo:
    """Check that `pem` is an X.509 certificate with an RSA public key; its subject and expiry.

    Raises CertificateError (with a sentence) otherwise."""
    certificate = _load(pem)
    return CertificateInfo(
        subject=certificate.subject.rfc4514_string()[:255] or "(no subject)",
        expires_at=certificate.not_valid_after_utc.replace(tzinfo=None),
    )


def security_credential(password: str, certificate_pem: str) -> str:
    """base64 of `password` encrypted with the certificate's RSA public key (PKCS#1 v1.5)."""
    if not password:
        raise ValueError("the initiator password is empty")
    key = _load(certificate_pem).public_key()
    encrypted = key.encrypt(password.encode("utf-8"), padding.PKCS1v15())
    return base64.b64encode(encrypted).decode("ascii")


def _load(pem: str) -> x509.Certificate:
    text = (pem or "").strip()
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise CertificateError(
            "not_pem",
            "This is not a certificate: paste the whole PEM text, from "
            "-----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----.",
        )
    try:
        certificate = x509.load_pem_x509_certificate(text.encode("ascii", errors="replace"))
    except ValueError:
        raise CertificateError(
            "damaged",
            "The certificate text is damaged or incomplete: download it again from the Daraja "
            "portal and paste all of it.",
        ) from None
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        raise CertificateError("not_rsa", "This certificate has no RSA key: not Safaricom's.")
    return certificate

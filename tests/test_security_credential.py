"""The SecurityCredential: the initiator's password encrypted with the certificate's RSA public
key (PKCS#1 v1.5), base64. The test makes its own key pair and self-signed certificate and
decrypts to prove it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from app.mpesa.initiator import Initiator
from app.mpesa.security import CertificateError, read_certificate, security_credential


def self_signed(key, name: str = "Test Safaricom Sandbox") -> str:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def certificate(key) -> str:
    return self_signed(key)


def test_it_decrypts_to_the_password_with_the_private_key(key, certificate):
    credential = security_credential("Safaricom999!*!", certificate)
    encrypted = base64.b64decode(credential, validate=True)
    assert len(encrypted) == 256  # one 2048-bit RSA block
    assert key.decrypt(encrypted, padding.PKCS1v15()).decode() == "Safaricom999!*!"


def test_it_is_new_each_time_so_it_is_never_worth_storing(certificate):
    assert security_credential("pw-123456", certificate) != security_credential(
        "pw-123456", certificate
    )


def test_another_key_cannot_open_it(certificate):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encrypted = base64.b64decode(security_credential("pw-123456", certificate))
    try:  # OpenSSL's implicit rejection answers random bytes instead of raising
        opened = other.decrypt(encrypted, padding.PKCS1v15())
    except ValueError:
        opened = b""
    assert opened != b"pw-123456"


def test_it_reads_the_certificate_subject_and_expiry(certificate):
    info = read_certificate(certificate)
    assert info.subject == "CN=Test Safaricom Sandbox"
    assert info.expires_at.tzinfo is None and info.expires_at > datetime.now(UTC).replace(
        tzinfo=None
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not_pem"),
        ("hello", "not_pem"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "damaged"),
    ],
)
def test_what_is_not_a_certificate_is_refused_with_its_reason(text, reason):
    with pytest.raises(CertificateError) as caught:
        read_certificate(text)
    assert caught.value.reason == reason


def test_a_certificate_without_an_rsa_key_is_refused():
    pem = self_signed(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(CertificateError) as caught:
        security_credential("pw-123456", pem)
    assert caught.value.reason == "not_rsa"


def test_a_damaged_certificate_is_refused(certificate):
    lines = certificate.splitlines()
    damaged = "\n".join(lines[:3] + lines[5:])
    with pytest.raises(CertificateError):
        read_certificate(damaged)


def test_an_empty_password_is_refused(certificate):
    with pytest.raises(ValueError):
        security_credential("", certificate)


def test_the_initiator_never_shows_its_password(certificate):
    who = Initiator("apiop", "S3cret-Initiator!", certificate)
    assert "S3cret" not in repr(who) and "S3cret" not in str(who) and "apiop" in repr(who)

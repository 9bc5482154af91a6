"""Sealing M-Pesa credentials at rest with AES-256-GCM and a rotatable key ring.

The ring comes from ``PESATAB_ENCRYPTION_KEYS="kid1:<key>,kid2:<key>"`` where each key is
32 random bytes in URL-safe base64. The first key seals; every key can open, so rotating is:
put the new key first, keep the old one, reseal what ``needs_reseal`` reports, drop the old key.

A sealed value reads ``v1.<kid>.<urlsafe base64 of nonce + ciphertext + tag>``. The bar id,
field name and kid are bound as associated data, so a value copied to another bar's row or
into another column does not open.

Pure Python on purpose: no Flask and no database, so the app, jobs and CLI share it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION: Final = "v1"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
LOCAL_KEYS_FILENAME: Final = "encryption_keys"

_KID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
_KEY_B64_RE: Final = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_PAYLOAD_RE: Final = re.compile(r"[A-Za-z0-9_-]+")

UnsealReason = Literal["unknown_key", "tampered", "malformed"]


class CryptoError(Exception):
    """Base class for every error raised by this module."""


class KeyRingError(CryptoError, ValueError):
    """The configured key ring text is invalid; the message never contains key material."""


class UnsealError(CryptoError):
    """A sealed value could not be opened.

    ``reason`` is ``'unknown_key'``, ``'tampered'`` (altered, or sealed for another bar or
    field) or ``'malformed'``. The message is safe to show to a bar owner.
    """

    MESSAGE: Final = "stored M-Pesa credentials cannot be opened with the configured keys"

    def __init__(self, reason: UnsealReason, *, kid: str | None = None) -> None:
        self.reason: UnsealReason = reason
        self.kid = kid
        message = self.MESSAGE
        if reason == "unknown_key":
            message += f" (sealed with key '{kid}', which is not configured)"
        super().__init__(message)


class KeyRing:
    """Encryption keys by id, in order: the first seals, all of them open."""

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        """Build a ring from ``(kid, 32-byte key)`` pairs; prefer :meth:`parse` for config."""
        self._ciphers: dict[str, AESGCM] = {}
        self._texts: dict[str, None] = {}  # each key as text, see secret_texts
        for position, (kid, key) in enumerate(keys, start=1):
            _check_kid(kid, _where(position))
            if kid in self._ciphers:
                raise KeyRingError(f"{_where(position, kid)}: duplicate key id")
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"{_where(position, kid)}: key must be exactly 32 bytes")
            self._ciphers[kid] = AESGCM(key)
            self._texts[base64.urlsafe_b64encode(key).decode("ascii").rstrip("=")] = None
        if not self._ciphers:
            raise KeyRingError("encryption key ring is empty")

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """Parse ``"kid1:<urlsafe b64>,kid2:<urlsafe b64>"``; raise KeyRingError if invalid."""
        if not text or not text.strip():
            raise KeyRingError("encryption key ring is empty; expected 'kid:base64key[,...]'")
        written: list[str] = []

        def entries() -> Iterable[tuple[str, bytes]]:  # lazily: errors come in entry order
            for position, raw in enumerate(text.split(","), start=1):
                kid, key, encoded = _parse_entry(position, raw)
                written.append(encoded.rstrip("="))
                yield kid, key

        ring = cls(entries())
        ring._texts = dict.fromkeys([*written, *ring._texts])
        return ring

    @property
    def current_kid(self) -> str:
        """The id of the key that seals new values."""
        return next(iter(self._ciphers))

    @property
    def kids(self) -> list[str]:
        """All key ids, the current one first."""
        return list(self._ciphers)

    def secret_texts(self) -> list[str]:
        """Each key as text a log line must never show: as PESATAB_ENCRYPTION_KEYS (or the
        local keys file) wrote it, and in canonical URL-safe base64, both without the '='
        padding so a padded copy is caught too. app/redaction.py registers them; nothing
        else needs to read the key ring text."""
        return list(self._texts)

    def __repr__(self) -> str:
        return f"KeyRing(kids={self.kids!r}, current={self.current_kid!r})"

    def seal(self, plaintext: str, *, bar_id: int, field: str) -> str:
        """Encrypt ``plaintext`` for one bar's field with the current key."""
        kid = self.current_kid
        nonce = os.urandom(NONCE_BYTES)
        aad = _associated_data(kid, bar_id, field)
        ciphertext = self._ciphers[kid].encrypt(nonce, plaintext.encode("utf-8"), aad)
        payload = base64.urlsafe_b64encode(nonce + ciphertext).decode("ascii").rstrip("=")
        return f"{FORMAT_VERSION}.{kid}.{payload}"

    def unseal(self, sealed: str, *, bar_id: int, field: str) -> str:
        """Decrypt a value from :meth:`seal`; raise UnsealError if it cannot be opened."""
        kid, blob = _split_sealed(sealed)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UnsealError("unknown_key", kid=kid)
        nonce, ciphertext = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        try:
            plaintext = cipher.decrypt(nonce, ciphertext, _associated_data(kid, bar_id, field))
        except InvalidTag:
            raise UnsealError("tampered", kid=kid) from None
        return plaintext.decode("utf-8")

    def needs_reseal(self, sealed: str) -> bool:
        """True when ``sealed`` was sealed with a key other than the current one."""
        kid, _ = _split_sealed(sealed)
        return kid != self.current_kid

    def reseal(self, sealed: str, *, bar_id: int, field: str) -> str:
        """Open ``sealed`` and seal it again with the current key (and a fresh nonce)."""
        plaintext = self.unseal(sealed, bar_id=bar_id, field=field)
        return self.seal(plaintext, bar_id=bar_id, field=field)


def generate_key(kid: str | None = None) -> str:
    """Return a new ``kid:<urlsafe b64 key>`` entry; the default kid is like ``k20261122a1b2``."""
    if kid is None:
        kid = f"k{datetime.now(UTC):%Y%m%d}{secrets.token_hex(2)}"
    _check_kid(kid, "new encryption key")
    key = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
    return f"{kid}:{key}"


def load_or_create_local_keys(instance_dir: Path) -> str:
    """Return the key ring text in ``instance_dir/encryption_keys``, creating it if absent.

    For local runs only; production must set PESATAB_ENCRYPTION_KEYS. The file is written
    complete under a temporary name and hard-linked into place, so two processes starting
    together (the dev reloader) both end up reading the same single key.
    """
    path = instance_dir / LOCAL_KEYS_FILENAME
    if not path.exists():
        instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _create_exclusively(path, generate_key() + "\n")
    return path.read_text(encoding="ascii").strip()


def _create_exclusively(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` with mode 0o600 unless another process got there first."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as tmp:
            tmp.write(content)
            tmp.flush()
            os.fsync(tmp.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp_name, path)
    finally:
        os.unlink(tmp_name)


def _where(position: int, kid: str | None = None) -> str:
    return f"encryption key entry {position}" + (f" ('{kid}')" if kid else "")


def _check_kid(kid: str, where: str) -> None:
    # An invalid id is never echoed: it may be key material pasted in the wrong order.
    if not kid:
        raise KeyRingError(f"{where}: missing key id; expected 'kid:base64key'")
    if not _KID_RE.fullmatch(kid):
        raise KeyRingError(f"{where}: key id must be 1-32 characters of A-Z, a-z, 0-9, '_' or '-'")


def _parse_entry(position: int, raw: str) -> tuple[str, bytes, str]:
    """``(kid, key, the key as written)`` for one entry of the ring text."""
    entry = raw.strip()
    if not entry:
        raise KeyRingError(f"{_where(position)} is empty (stray comma?)")
    kid, colon, encoded = (part.strip() for part in entry.partition(":"))
    if not colon:
        raise KeyRingError(f"{_where(position)}: expected 'kid:base64key'")
    _check_kid(kid, _where(position))
    return kid, _decode_key(position, kid, encoded), encoded


def _decode_key(position: int, kid: str, encoded: str) -> bytes:
    if not encoded:
        raise KeyRingError(f"{_where(position, kid)}: key is missing after ':'")
    key = _urlsafe_b64decode(encoded, _KEY_B64_RE)
    if key is None:
        raise KeyRingError(
            f"{_where(position, kid)}: key is not URL-safe base64 "
            "(use '-' and '_' rather than '+' and '/')"
        )
    if len(key) != KEY_BYTES:
        raise KeyRingError(
            f"{_where(position, kid)}: key must decode to exactly 32 bytes, got {len(key)}"
        )
    return key


def _urlsafe_b64decode(text: str, pattern: re.Pattern[str]) -> bytes | None:
    """Strictly decode URL-safe base64, padded or not; None if it is not valid."""
    if not pattern.fullmatch(text):
        return None
    unpadded = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except binascii.Error:
        return None


def _split_sealed(sealed: str) -> tuple[str, bytes]:
    """Return ``(kid, nonce + ciphertext + tag)`` or raise UnsealError('malformed')."""
    parts = sealed.split(".") if isinstance(sealed, str) else []
    if len(parts) != 3 or parts[0] != FORMAT_VERSION or not _KID_RE.fullmatch(parts[1]):
        raise UnsealError("malformed")
    blob = _urlsafe_b64decode(parts[2], _PAYLOAD_RE)
    if blob is None or len(blob) < NONCE_BYTES + TAG_BYTES:
        raise UnsealError("malformed")
    return parts[1], blob


def _associated_data(kid: str, bar_id: int, field: str) -> bytes:
    return f"pesatab/{FORMAT_VERSION}/bar:{bar_id}/field:{field}/kid:{kid}".encode()

"""Sealing M-Pesa credentials at rest: round trips, binding, tampering, rotation, key config."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

import pytest

from app.crypto import (
    CryptoError,
    KeyRing,
    KeyRingError,
    UnsealError,
    generate_key,
    load_or_create_local_keys,
)

# Two bars on the same PesaTab install; each stores its own Daraja credentials.
KILIMANJARO_BAR = 1
TUSKER_CORNER = 2
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"

K1 = generate_key("k1")
K2 = generate_key("k2")
K1_KEY = K1.split(":", 1)[1]
K2_KEY = K2.split(":", 1)[1]
MESSAGE = "stored M-Pesa credentials cannot be opened with the configured keys"


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.parse(K1)


def seal_passkey(ring: KeyRing, bar_id: int = KILIMANJARO_BAR) -> str:
    return ring.seal(PASSKEY, bar_id=bar_id, field="passkey")


def flip_payload_byte(sealed: str, index: int) -> str:
    version, kid, payload = sealed.split(".")
    blob = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    blob[index] ^= 0x01
    return f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(blob)).decode().rstrip('=')}"


# --- sealing and opening -------------------------------------------------------------------


def test_it_round_trips_a_credential(ring: KeyRing) -> None:
    sealed = seal_passkey(ring)

    assert ring.unseal(sealed, bar_id=KILIMANJARO_BAR, field="passkey") == PASSKEY


def test_it_round_trips_non_ascii_and_empty_values(ring: KeyRing) -> None:
    for value in ["", "sïkrit-ñ-🍺"]:
        sealed = ring.seal(value, bar_id=KILIMANJARO_BAR, field="consumer_secret")
        assert ring.unseal(sealed, bar_id=KILIMANJARO_BAR, field="consumer_secret") == value


def test_it_writes_the_documented_ascii_format(ring: KeyRing) -> None:
    sealed = seal_passkey(ring)

    version, kid, payload = sealed.split(".")
    assert (version, kid) == ("v1", "k1")
    assert sealed.isascii()
    assert "=" not in payload and "+" not in payload and "/" not in payload


def test_it_never_contains_the_plaintext_or_its_base64(ring: KeyRing) -> None:
    sealed = seal_passkey(ring)

    raw = PASSKEY.encode()
    assert PASSKEY not in sealed
    assert base64.b64encode(raw).decode().rstrip("=") not in sealed
    assert base64.urlsafe_b64encode(raw).decode().rstrip("=") not in sealed


def test_it_uses_a_fresh_nonce_for_every_seal(ring: KeyRing) -> None:
    assert seal_passkey(ring) != seal_passkey(ring)


def test_it_refuses_one_bars_credential_in_another_bar(ring: KeyRing) -> None:
    sealed = seal_passkey(ring, bar_id=KILIMANJARO_BAR)

    with pytest.raises(UnsealError) as caught:
        ring.unseal(sealed, bar_id=TUSKER_CORNER, field="passkey")
    assert caught.value.reason == "tampered"
    assert str(caught.value) == MESSAGE


def test_it_refuses_a_credential_moved_to_another_field(ring: KeyRing) -> None:
    sealed = seal_passkey(ring)

    with pytest.raises(UnsealError) as caught:
        ring.unseal(sealed, bar_id=KILIMANJARO_BAR, field="consumer_secret")
    assert caught.value.reason == "tampered"


@pytest.mark.parametrize("index", [0, 11, 12, -1], ids=["nonce", "nonce-end", "body", "tag"])
def test_it_detects_a_flipped_byte(ring: KeyRing, index: int) -> None:
    tampered = flip_payload_byte(seal_passkey(ring), index)

    with pytest.raises(UnsealError) as caught:
        ring.unseal(tampered, bar_id=KILIMANJARO_BAR, field="passkey")
    assert caught.value.reason == "tampered"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_it_binds_the_key_id_into_the_associated_data() -> None:
    # The same key under another id must not open the value: the kid is authenticated too.
    renamed = KeyRing.parse(f"k9:{K1_KEY}")
    sealed = seal_passkey(KeyRing.parse(K1)).replace("v1.k1.", "v1.k9.")

    with pytest.raises(UnsealError) as caught:
        renamed.unseal(sealed, bar_id=KILIMANJARO_BAR, field="passkey")
    assert caught.value.reason == "tampered"


def test_it_reports_an_unknown_key_clearly() -> None:
    sealed = seal_passkey(KeyRing.parse(K1))

    with pytest.raises(UnsealError) as caught:
        KeyRing.parse(K2).unseal(sealed, bar_id=KILIMANJARO_BAR, field="passkey")
    error = caught.value
    assert error.reason == "unknown_key"
    assert error.kid == "k1"
    assert str(error) == f"{MESSAGE} (sealed with key 'k1', which is not configured)"
    assert isinstance(error, CryptoError)


@pytest.mark.parametrize(
    "sealed",
    [
        "",
        "garbage",
        "v1.x",
        "v1.k1",
        "v1.k1.",
        "v1..AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v2.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.k1.AAAA.AAAA",
        "v1.k1.!!!not-base64!!!",
        "v1.k1.AAAAA",  # a length base64 cannot have
        "v1.k1.AAAA",  # valid base64, too short to hold nonce and tag
        "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/AA",
        "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        "v1.k1.ÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄ",
        "v1.bad kid.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_it_rejects_malformed_values_with_one_error_type(ring: KeyRing, sealed: str) -> None:
    with pytest.raises(UnsealError) as caught:
        ring.unseal(sealed, bar_id=KILIMANJARO_BAR, field="passkey")
    assert caught.value.reason == "malformed"
    assert str(caught.value) == MESSAGE


def test_it_treats_a_missing_value_as_malformed(ring: KeyRing) -> None:
    with pytest.raises(UnsealError) as caught:
        ring.unseal(None, bar_id=KILIMANJARO_BAR, field="passkey")  # type: ignore[arg-type]
    assert caught.value.reason == "malformed"


# --- rotation --------------------------------------------------------------------------------


def test_it_rotates_from_an_old_key_to_a_new_one() -> None:
    old_value = seal_passkey(KeyRing.parse(K1))
    rotating = KeyRing.parse(f"{K2},{K1}")

    assert rotating.current_kid == "k2"
    assert rotating.unseal(old_value, bar_id=KILIMANJARO_BAR, field="passkey") == PASSKEY
    assert rotating.needs_reseal(old_value) is True

    new_value = rotating.reseal(old_value, bar_id=KILIMANJARO_BAR, field="passkey")
    assert new_value.startswith("v1.k2.")
    assert rotating.needs_reseal(new_value) is False
    only_new = KeyRing.parse(K2)
    assert only_new.unseal(new_value, bar_id=KILIMANJARO_BAR, field="passkey") == PASSKEY


def test_it_cannot_open_old_data_once_the_old_key_is_dropped() -> None:
    old_value = seal_passkey(KeyRing.parse(K1))

    with pytest.raises(UnsealError, match="sealed with key 'k1', which is not configured"):
        KeyRing.parse(K2).unseal(old_value, bar_id=KILIMANJARO_BAR, field="passkey")


def test_it_will_not_reseal_a_value_into_another_bar() -> None:
    old_value = seal_passkey(KeyRing.parse(K1), bar_id=KILIMANJARO_BAR)

    with pytest.raises(UnsealError):
        KeyRing.parse(f"{K2},{K1}").reseal(old_value, bar_id=TUSKER_CORNER, field="passkey")


def test_it_rejects_malformed_values_when_asked_about_resealing(ring: KeyRing) -> None:
    with pytest.raises(UnsealError) as caught:
        ring.needs_reseal("garbage")
    assert caught.value.reason == "malformed"


# --- key ring configuration -----------------------------------------------------------------


def test_it_parses_a_ring_with_the_first_key_current() -> None:
    ring = KeyRing.parse(f" {K2} , {K1} ")

    assert ring.kids == ["k2", "k1"]
    assert ring.current_kid == "k2"


def test_it_accepts_keys_without_base64_padding() -> None:
    ring = KeyRing.parse(f"k1:{K1_KEY.rstrip('=')}")

    assert ring.kids == ["k1"]


SHORT_KEY = base64.urlsafe_b64encode(b"\x07" * 16).decode()
LONG_KEY = base64.urlsafe_b64encode(b"\x07" * 48).decode()
PLUS_SLASH_KEY = base64.b64encode(b"\xfb\xff" * 16).decode()  # contains '+' and '/'


@pytest.mark.parametrize(
    ("text", "expected", "secret"),
    [
        ("", "empty", None),
        ("   ", "empty", None),
        (f"{K1},", "entry 2 is empty", K1_KEY),
        (f"{K1},,{K2}", "entry 2 is empty", K1_KEY),
        (f":{K1_KEY}", "entry 1: missing key id", K1_KEY),
        (K1_KEY, "entry 1: expected 'kid:base64key'", K1_KEY),
        (f"{K1},k1:{K2_KEY}", "entry 2 ('k1'): duplicate key id", K2_KEY),
        (f"k 1:{K1_KEY}", "entry 1: key id must be 1-32 characters", K1_KEY),
        (f"k.1:{K1_KEY}", "entry 1: key id must be 1-32 characters", K1_KEY),
        (f"{'k' * 33}:{K1_KEY}", "entry 1: key id must be 1-32 characters", K1_KEY),
        (f"{K1_KEY}:k1", "entry 1: key id must be 1-32 characters", K1_KEY),
        (f"{K1},k2:", "entry 2 ('k2'): key is missing", K1_KEY),
        (f"{K1},k2:not base64!!", "entry 2 ('k2'): key is not URL-safe base64", "not base64"),
        ("k1:" + PLUS_SLASH_KEY, "(use '-' and '_' rather than '+' and '/')", PLUS_SLASH_KEY),
        ("k1:" + K1_KEY[:-3], "entry 1 ('k1'): key is not URL-safe base64", K1_KEY[:-3]),
        ("k1:" + SHORT_KEY, "entry 1 ('k1'): key must decode to exactly 32 bytes", SHORT_KEY),
        ("k1:" + LONG_KEY, "entry 1 ('k1'): key must decode to exactly 32 bytes", LONG_KEY),
    ],
)
def test_it_explains_bad_key_ring_config_without_leaking_keys(
    text: str, expected: str, secret: str | None
) -> None:
    with pytest.raises(KeyRingError) as caught:
        KeyRing.parse(text)
    message = str(caught.value)
    assert expected in message
    if secret:
        assert secret not in message
        assert secret.rstrip("=") not in message
    assert isinstance(caught.value, ValueError)


def test_it_hides_keys_in_repr() -> None:
    ring = KeyRing.parse(f"{K1},{K2}")

    text = repr(ring)
    assert text == "KeyRing(kids=['k1', 'k2'], current='k1')"
    assert K1_KEY not in text and K2_KEY not in text
    assert str(ring) == text


def test_it_generates_entries_that_parse() -> None:
    entry = generate_key()

    kid = KeyRing.parse(entry).current_kid
    assert entry.startswith(f"{kid}:")
    assert re.fullmatch(r"k20\d{6}[0-9a-f]{4}", kid)  # like k20261122a1b2
    assert KeyRing.parse(generate_key("spare_2")).current_kid == "spare_2"
    assert generate_key() != generate_key()


def test_it_refuses_to_generate_a_key_with_a_bad_id() -> None:
    with pytest.raises(KeyRingError, match="key id must be"):
        generate_key("no spaces")


# --- local development keys -----------------------------------------------------------------


def test_it_creates_local_keys_once_and_privately(tmp_path: Path) -> None:
    instance_dir = tmp_path / "instance"

    first = load_or_create_local_keys(instance_dir)
    second = load_or_create_local_keys(instance_dir)

    assert first == second
    assert KeyRing.parse(first).kids == [first.split(":", 1)[0]]
    key_file = instance_dir / "encryption_keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in instance_dir.iterdir()] == ["encryption_keys"]


def test_it_keeps_an_existing_local_key_file(tmp_path: Path) -> None:
    (tmp_path / "encryption_keys").write_text(f"{K2},{K1}\n")

    assert load_or_create_local_keys(tmp_path) == f"{K2},{K1}"

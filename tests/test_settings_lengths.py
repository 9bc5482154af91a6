"""Every text box of the owner's settings says how long its value may be, and a longer one is
refused with a sentence the owner reads (in English or Kiswahili), nothing saved or sent.

The boxes: the M-Pesa credentials (PayBill/store and till numbers in digits, the consumer key
and secret, the passkey), the test push's phone, and an API key's name.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import ApiKey, MpesaCredential, Payment
from app.settings import vault
from app.settings.forms import DIGITS_MAX, KEY_MAX, PASSKEY_MAX, SECRET_MAX
from app.simulator import SANDBOX_PASSKEY, SANDBOX_SHORTCODE, SIM_CONSUMER_KEY, SIM_CONSUMER_SECRET
from tests.conftest import login_as

PAYBILL = {
    "environment": "sandbox",
    "kind": "paybill",
    "shortcode": SANDBOX_SHORTCODE,
    "till_number": "",
    "consumer_key": SIM_CONSUMER_KEY,
    "consumer_secret": SIM_CONSUMER_SECRET,
    "passkey": SANDBOX_PASSKEY,
}
# (box, its longest value, a hint's words for it)
MPESA_BOXES = [
    ("shortcode", DIGITS_MAX, f"5 to {DIGITS_MAX} digits."),
    ("till_number", DIGITS_MAX, f"5 to {DIGITS_MAX} digits."),
    ("consumer_key", KEY_MAX, f"Up to {KEY_MAX} characters."),
    ("consumer_secret", SECRET_MAX, f"Up to {SECRET_MAX} characters."),
    ("passkey", PASSKEY_MAX, f"Up to {PASSKEY_MAX} characters."),
    ("phone", 20, "Up to 20 characters."),
]
TOO_LONG = [
    ({"shortcode": "1" * (DIGITS_MAX + 1)}, "A PayBill or store number has at most 7 digits."),
    (
        {"kind": "till", "till_number": "5" * (DIGITS_MAX + 1)},
        "A till number has at most 7 digits.",
    ),
    ({"consumer_key": "A" * (KEY_MAX + 1)}, "The consumer key has at most 100 characters."),
    (
        {"consumer_secret": "b" * (SECRET_MAX + 1)},
        "The consumer secret has at most 100 characters.",
    ),
    ({"passkey": "c" * (PASSKEY_MAX + 1)}, "The passkey has at most 128 characters."),
]


def _box(html: str, name: str) -> tuple[str, str]:
    """The input named `name` and the hint that follows it in its field."""
    found = re.search(
        rf'(<input[^>]*name="{name}"[^>]*>)\s*<small class="hint">([^<]*)</small>', html
    )
    assert found, f"no box {name} with a hint"
    return found.group(1), found.group(2)


def test_every_mpesa_box_states_its_longest_value(app, bar, owner, factory):
    factory.live_credentials(bar)  # the test push's phone box shows once credentials are saved
    html = login_as(app, owner).get("/settings/mpesa/").get_data(as_text=True)
    for name, longest, hint in MPESA_BOXES:
        box, said = _box(html, name)
        assert f'maxlength="{longest}"' in box, name
        assert hint in said, (name, said)
    # Digits-only numbers bring up a number pad on a phone.
    for name in ("shortcode", "till_number"):
        assert 'inputmode="numeric"' in _box(html, name)[0]


@pytest.mark.parametrize(("change", "sentence"), TOO_LONG)
def test_a_longer_credential_is_refused_with_one_sentence(app, owner, change, sentence):
    response = login_as(app, owner).post("/settings/mpesa/", data={**PAYBILL, **change})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert sentence in html
    (field,) = [k for k in change if k != "kind"]
    # One sentence for the box: the length, not also the digits or letters rule after it.
    assert len(re.findall(rf'<p class="error" id="{field}-error">', html)) == 1
    assert db.session.scalar(select(MpesaCredential)) is None


def test_a_live_bar_refuses_a_longer_value_without_keeping_anything_waiting(
    app, bar, owner, factory
):
    factory.live_credentials(bar)
    desk = login_as(app, owner)
    response = desk.post("/settings/mpesa/", data={**PAYBILL, "passkey": "d" * (PASSKEY_MAX + 1)})
    assert response.status_code == 400
    assert "The passkey has at most 128 characters." in response.get_data(as_text=True)
    db.session.expire_all()
    assert not vault.credential_for(bar).has_pending


def test_a_longer_test_push_phone_is_refused_and_nothing_is_sent(app, bar, owner, factory):
    factory.live_credentials(bar)
    response = login_as(app, owner).post(
        "/settings/mpesa/test-push", data={"phone": "0712 345 678 0712 345", "amount": 1}
    )
    assert response.status_code == 400
    assert "A phone number has at most 20 characters." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Payment.id))) == 0


def test_an_api_key_name_states_and_keeps_its_limit(app, owner):
    desk = login_as(app, owner)
    box, said = _box(desk.get("/settings/api-keys/").get_data(as_text=True), "label")
    assert 'maxlength="60"' in box and "Up to 60 characters." in said
    response = desk.post("/settings/api-keys/", data={"label": "K" * 61})
    assert response.status_code == 400
    assert "A key&#39;s name is at most 60 characters." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(ApiKey.id))) == 0


def test_the_limits_are_said_in_kiswahili(app, bar, owner, factory):
    factory.live_credentials(bar)
    owner.locale = "sw"
    db.session.commit()
    desk = login_as(app, owner)
    html = desk.get("/settings/mpesa/").get_data(as_text=True)
    assert "Tarakimu 5 hadi 7." in _box(html, "till_number")[1]
    assert "Hadi herufi 128." in _box(html, "passkey")[1]
    refused = desk.post("/settings/mpesa/", data={**PAYBILL, "shortcode": "1" * 8})
    assert "Nambari ya PayBill au ya duka kuu isizidi tarakimu 7." in refused.get_data(as_text=True)
    refused = desk.post("/settings/api-keys/", data={"label": "K" * 61})
    assert "Jina la ufunguo lisizidi herufi 60." in refused.get_data(as_text=True)

"""The owner's M-Pesa forms. Secrets are password fields: never rendered back."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, RadioField, SelectChoice, StringField
from wtforms.validators import DataRequired, Length, NumberRange, ValidationError

from app.api.keys import LABEL_MAX

DIGITS = re.compile(r"\d{5,7}")
KEY = re.compile(r"[A-Za-z0-9]{20,100}")
SECRET = re.compile(r"[A-Za-z0-9]{10,100}")
PASSKEY = re.compile(r"[0-9a-fA-F]{40,128}")


def _strip(value):
    return value.strip().replace(" ", "") if isinstance(value, str) else value


class CredentialForm(FlaskForm):
    environment = RadioField(
        "Environment",
        choices=[
            SelectChoice("sandbox", "Sandbox (testing)"),
            SelectChoice("production", "Production (real money)"),
        ],
        default="sandbox",
    )
    kind = RadioField(
        "How customers pay you",
        choices=[SelectChoice("paybill", "PayBill"), SelectChoice("till", "Till (Buy Goods)")],
        default="paybill",
    )
    shortcode = StringField("PayBill number, or the store number for a Till", filters=[_strip])
    till_number = StringField("Till number (Till only)", filters=[_strip])
    consumer_key = PasswordField("Consumer key", filters=[_strip])
    consumer_secret = PasswordField("Consumer secret", filters=[_strip])
    passkey = PasswordField("Passkey (Lipa na M-Pesa Online)", filters=[_strip])

    def __init__(self, *args, first_time: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_time = first_time

    def validate_shortcode(self, field):
        if not DIGITS.fullmatch(field.data or ""):
            word = "store (head office) number" if self.kind.data == "till" else "PayBill number"
            raise ValidationError(f"The {word} is 5 to 7 digits.")

    def validate_till_number(self, field):
        till = field.data or ""
        if self.kind.data != "till":
            if till:
                raise ValidationError(
                    "A PayBill has no till number. If customers pay with Buy Goods, choose Till."
                )
            return
        if not DIGITS.fullmatch(till):
            raise ValidationError("Enter the till number customers pay to (5 to 7 digits).")
        if till == (self.shortcode.data or ""):
            raise ValidationError(
                "The till number and the store number are different numbers: the store (head "
                "office) number is on your M-Pesa business portal; the till is what customers type."
            )

    def _secret(self, field, pattern, message, name):
        if not field.data:
            if self.first_time:
                raise ValidationError(f"Enter the {name}.")
            return
        if not pattern.fullmatch(field.data):
            raise ValidationError(message)

    def validate_consumer_key(self, field):
        self._secret(
            field,
            KEY,
            "The consumer key is 20 or more letters and digits; copy it from your app on the "
            "Daraja portal.",
            "consumer key",
        )

    def validate_consumer_secret(self, field):
        self._secret(
            field,
            SECRET,
            "The consumer secret is letters and digits only; copy it from your app on the Daraja "
            "portal.",
            "consumer secret",
        )

    def validate_passkey(self, field):
        self._secret(
            field,
            PASSKEY,
            "A passkey is a long string of digits and the letters a–f (usually 64 characters); "
            "check you copied all of it.",
            "passkey",
        )


class TestPushForm(FlaskForm):
    phone = StringField(
        "Your phone number",
        validators=[DataRequired(message="Enter the phone to receive the test prompt.")],
    )
    amount = IntegerField(
        "Amount (KES)",
        default=1,
        validators=[NumberRange(min=1, max=10, message="A test push is between KES 1 and KES 10.")],
    )


class ActionForm(FlaskForm):
    """Only the CSRF token, for one-button actions."""


class CreateKeyForm(FlaskForm):
    label = StringField(
        "Name",
        validators=[
            DataRequired(message="Give the key a name, like “Till 1 POS”."),
            Length(max=LABEL_MAX, message=f"A key's name is at most {LABEL_MAX} characters."),
        ],
    )

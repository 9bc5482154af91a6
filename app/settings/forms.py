"""The owner's M-Pesa forms. Secrets are password fields: never rendered back.

Each text field states its longest value (the input's maxlength and a hint) and refuses a longer
one with a sentence. Labels, hints and sentences are `lazy()` or `_()`: read in each request's
language (app/i18n.py)."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, NumberRange, ValidationError

from app.api.keys import LABEL_MAX
from app.auth.accounts import PHONE_EXAMPLE, PHONE_MAX
from app.i18n import _, lazy
from app.web.forms import KesField, at_most

DIGITS = re.compile(r"\d{5,7}")
DIGITS_MAX = 7  # a PayBill, store or till number
KEY_MAX = 100
SECRET_MAX = 100
PASSKEY_MAX = 128
KEY = re.compile(rf"[A-Za-z0-9]{{20,{KEY_MAX}}}")
SECRET = re.compile(rf"[A-Za-z0-9]{{10,{SECRET_MAX}}}")
PASSKEY = re.compile(rf"[0-9a-fA-F]{{40,{PASSKEY_MAX}}}")


def _strip(value):
    return value.strip().replace(" ", "") if isinstance(value, str) else value


class CredentialForm(FlaskForm):
    environment = RadioField(
        lazy("Environment"),
        choices=[
            SelectChoice("sandbox", lazy("Sandbox (testing)")),
            SelectChoice("production", lazy("Production (real money)")),
        ],
        default="sandbox",
        invalid_choice_message=lazy("Choose sandbox or production."),
    )
    kind = RadioField(
        lazy("How customers pay you"),
        choices=[
            SelectChoice("paybill", lazy("PayBill")),
            SelectChoice("till", lazy("Till (Buy Goods)")),
        ],
        default="paybill",
        invalid_choice_message=lazy("Choose PayBill or Till."),
    )
    shortcode = StringField(
        lazy("PayBill number, or the store number for a Till"),
        filters=[_strip],
        validators=[
            at_most(DIGITS_MAX, lazy("A PayBill or store number has at most %(max)d digits."))
        ],
        description=lazy(
            "For a Till: the store (head office) number, not the till. 5 to %(max)d digits.",
            max=DIGITS_MAX,
        ),
        render_kw={"inputmode": "numeric"},
    )
    till_number = StringField(
        lazy("Till number (Till only)"),
        filters=[_strip],
        validators=[at_most(DIGITS_MAX, lazy("A till number has at most %(max)d digits."))],
        description=lazy("5 to %(max)d digits.", max=DIGITS_MAX),
        render_kw={"inputmode": "numeric"},
    )
    consumer_key = PasswordField(
        lazy("Consumer key"),
        filters=[_strip],
        validators=[at_most(KEY_MAX, lazy("The consumer key has at most %(max)d characters."))],
        description=lazy(
            "From your app on the Daraja portal (My Apps). Up to %(max)d characters.",
            max=KEY_MAX,
        ),
    )
    consumer_secret = PasswordField(
        lazy("Consumer secret"),
        filters=[_strip],
        validators=[
            at_most(SECRET_MAX, lazy("The consumer secret has at most %(max)d characters."))
        ],
        description=lazy("Up to %(max)d characters.", max=SECRET_MAX),
    )
    passkey = PasswordField(
        lazy("Passkey (Lipa na M-Pesa Online)"),
        filters=[_strip],
        validators=[at_most(PASSKEY_MAX, lazy("The passkey has at most %(max)d characters."))],
        description=lazy(
            "Safaricom sends it with go-live; sandbox has its own. Up to %(max)d characters.",
            max=PASSKEY_MAX,
        ),
    )

    def __init__(self, *args, first_time: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_time = first_time

    def validate_shortcode(self, field):
        if not DIGITS.fullmatch(field.data or ""):
            raise ValidationError(
                _("The store (head office) number is 5 to 7 digits.")
                if self.kind.data == "till"
                else _("The PayBill number is 5 to 7 digits.")
            )

    def validate_till_number(self, field):
        till = field.data or ""
        if self.kind.data != "till":
            if till:
                raise ValidationError(
                    _("A PayBill has no till number. If customers pay with Buy Goods, choose Till.")
                )
            return
        if not DIGITS.fullmatch(till):
            raise ValidationError(_("Enter the till number customers pay to (5 to 7 digits)."))
        if till == (self.shortcode.data or ""):
            raise ValidationError(
                _(
                    "The till number and the store number are different numbers: the store (head "
                    "office) number is on your M-Pesa business portal; the till is what customers "
                    "type."
                )
            )

    def _secret(self, field, pattern, message, missing):
        if not field.data:
            if self.first_time:
                raise ValidationError(missing)
            return
        if not pattern.fullmatch(field.data):
            raise ValidationError(message)

    def validate_consumer_key(self, field):
        self._secret(
            field,
            KEY,
            _(
                "The consumer key is 20 or more letters and digits; copy it from your app on the "
                "Daraja portal."
            ),
            _("Enter the consumer key."),
        )

    def validate_consumer_secret(self, field):
        self._secret(
            field,
            SECRET,
            _(
                "The consumer secret is letters and digits only; copy it from your app on the "
                "Daraja portal."
            ),
            _("Enter the consumer secret."),
        )

    def validate_passkey(self, field):
        self._secret(
            field,
            PASSKEY,
            _(
                "A passkey is a long string of digits and the letters a–f (usually 64 characters); "
                "check you copied all of it."
            ),
            _("Enter the passkey."),
        )


class TestPushForm(FlaskForm):
    phone = StringField(
        lazy("Your phone number"),
        validators=[
            DataRequired(message=lazy("Enter the phone to receive the test prompt.")),
            at_most(PHONE_MAX, lazy("A phone number has at most %(max)d characters.")),
        ],
        description=lazy(
            "Like %(example)s. Up to %(max)d characters.", example=PHONE_EXAMPLE, max=PHONE_MAX
        ),
        render_kw={"inputmode": "tel"},
    )
    amount = KesField(
        lazy("Amount (KES)"),
        default=1,
        validators=[
            NumberRange(min=1, max=10, message=lazy("A test push is between KES 1 and KES 10."))
        ],
    )


class ActionForm(FlaskForm):
    """Only the CSRF token, for one-button actions."""


class CreateKeyForm(FlaskForm):
    label = StringField(
        lazy("Name"),
        validators=[
            DataRequired(message=lazy("Give the key a name, like “Till 1 POS”.")),
            at_most(LABEL_MAX, lazy("A key's name is at most %(max)d characters.")),
        ],
        description=lazy(
            "Say where it is used, like “Till 1 POS”. Up to %(max)d characters.", max=LABEL_MAX
        ),
    )


class InitiatorForm(FlaskForm):
    """The initiator credentials (verify a code; later reversals and the balance). The
    password is write-only; a blank password or certificate keeps the stored one."""

    initiator_name = StringField(
        lazy("Initiator name"),
        validators=[
            DataRequired(message=lazy("Type the initiator's name.")),
            at_most(64, lazy("An initiator name is at most %(max)d characters.")),
        ],
        description=lazy("The M-Pesa org portal user made for API calls (API role)."),
    )
    initiator_password = PasswordField(
        lazy("Initiator password"),
        validators=[at_most(SECRET_MAX, lazy("A password is at most %(max)d characters."))],
        description=lazy("Never shown again. Leave it empty to keep the saved one."),
    )
    certificate = TextAreaField(
        lazy("Safaricom's certificate (PEM)"),
        validators=[at_most(20000, lazy("A certificate is at most %(max)d characters."))],
        description=lazy(
            "Download it from the Daraja portal for this environment (sandbox and production "
            "differ) and paste all of it. Leave it empty to keep the saved one."
        ),
    )

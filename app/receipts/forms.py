"""The owner's receipt details form, and the button-only forms of the receipt page."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField, ValidationError

from app.i18n import _, lazy
from app.receipts.details import (
    ADDRESS_MAX,
    KRA_PIN_PROBLEM,
    clean_address,
    clean_pin,
    pin_is_valid,
)
from app.web.forms import at_most


class DetailsForm(FlaskForm):
    address = TextAreaField(
        lazy("Address"),
        filters=[clean_address],
        validators=[at_most(ADDRESS_MAX, lazy("An address is at most %(max)d characters."))],
        description=lazy("Optional: street, building, town. Printed under the bar's name."),
    )
    kra_pin = StringField(
        lazy("KRA PIN"),
        filters=[clean_pin],
        description=lazy("Optional: the bar's PIN, like P051234567Q."),
    )

    def validate_kra_pin(self, field):
        if field.data and not pin_is_valid(field.data):
            raise ValidationError(_(KRA_PIN_PROBLEM))


class ActionForm(FlaskForm):
    """A button that changes something: the CSRF token and nothing else."""

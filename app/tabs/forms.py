from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectChoice, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.i18n import lazy
from app.web.forms import KesField


class OpenTabForm(FlaskForm):
    label = StringField(
        lazy("Name or table"),
        validators=[
            DataRequired(message=lazy("Give the tab a name, like “Table 4” or “Otieno”.")),
            Length(max=60, message=lazy("A tab name is at most 60 characters.")),
        ],
    )


class LineForm(FlaskForm):
    description = StringField(
        lazy("Item"),
        validators=[Optional(), Length(max=80, message=lazy("An item is at most 80 characters."))],
    )
    quantity = IntegerField(
        lazy("Qty"),
        default=1,
        validators=[
            InputRequired(message=lazy("Enter how many.")),
            NumberRange(min=1, max=999, message=lazy("Quantity is 1 to 999.")),
        ],
    )
    unit_price = KesField(
        lazy("Price (KES)"),
        validators=[
            InputRequired(message=lazy("Enter the price in shillings.")),
            NumberRange(min=1, message=lazy("The price is at least KES 1.")),
        ],
    )


class PayForm(FlaskForm):
    phone = StringField(
        lazy("Customer's M-Pesa number"),
        validators=[DataRequired(message=lazy("Enter the customer's phone number."))],
    )
    amount = KesField(
        lazy("Amount (KES)"),
        validators=[InputRequired(message=lazy("Enter the amount to request."))],
    )


class VoidForm(FlaskForm):
    reason = StringField(
        lazy("Reason"),
        validators=[
            DataRequired(message=lazy("Say why the tab is void.")),
            Length(max=200, message=lazy("A reason is at most 200 characters.")),
        ],
    )


class ActionForm(FlaskForm):
    """Only the CSRF token."""


class TenderForm(FlaskForm):
    """Money taken at the counter without M-Pesa."""

    kind = RadioField(
        lazy("Paid"),
        choices=[
            SelectChoice("cash", lazy("In cash")),
            SelectChoice("card", lazy("By card")),
        ],
        default="cash",
        validators=[InputRequired(message=lazy("Choose cash or card."))],
        invalid_choice_message=lazy("Choose cash or card."),
    )
    amount = KesField(
        lazy("Amount (KES)"), validators=[InputRequired(message=lazy("Enter the amount taken."))]
    )
    note = StringField(
        lazy("Note"),
        validators=[
            Optional(),
            Length(max=120, message=lazy("A note is at most 120 characters.")),
        ],
    )

from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectChoice, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.web.forms import KesField


class OpenTabForm(FlaskForm):
    label = StringField(
        "Name or table",
        validators=[
            DataRequired(message="Give the tab a name, like “Table 4” or “Otieno”."),
            Length(max=60, message="A tab name is at most 60 characters."),
        ],
    )


class LineForm(FlaskForm):
    description = StringField(
        "Item",
        validators=[Optional(), Length(max=80, message="An item is at most 80 characters.")],
    )
    quantity = IntegerField(
        "Qty",
        default=1,
        validators=[
            InputRequired(message="Enter how many."),
            NumberRange(min=1, max=999, message="Quantity is 1 to 999."),
        ],
    )
    unit_price = KesField(
        "Price (KES)",
        validators=[
            InputRequired(message="Enter the price in shillings."),
            NumberRange(min=1, message="The price is at least KES 1."),
        ],
    )


class PayForm(FlaskForm):
    phone = StringField(
        "Customer's M-Pesa number",
        validators=[DataRequired(message="Enter the customer's phone number.")],
    )
    amount = KesField(
        "Amount (KES)", validators=[InputRequired(message="Enter the amount to request.")]
    )


class VoidForm(FlaskForm):
    reason = StringField(
        "Reason",
        validators=[
            DataRequired(message="Say why the tab is void."),
            Length(max=200, message="A reason is at most 200 characters."),
        ],
    )


class ActionForm(FlaskForm):
    """Only the CSRF token."""


class TenderForm(FlaskForm):
    """Money taken at the counter without M-Pesa."""

    kind = RadioField(
        "Paid",
        choices=[SelectChoice("cash", "In cash"), SelectChoice("card", "By card")],
        default="cash",
        validators=[InputRequired(message="Choose cash or card.")],
    )
    amount = KesField("Amount (KES)", validators=[InputRequired(message="Enter the amount taken.")])
    note = StringField(
        "Note",
        validators=[Optional(), Length(max=120, message="A note is at most 120 characters.")],
    )

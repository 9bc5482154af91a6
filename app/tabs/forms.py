from flask_wtf import FlaskForm
from wtforms import IntegerField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.web.forms import KesField


class OpenTabForm(FlaskForm):
    label = StringField(
        "Name or table",
        validators=[
            DataRequired(message="Give the tab a name, like “Table 4” or “Otieno”."),
            Length(max=60),
        ],
    )


class LineForm(FlaskForm):
    description = StringField("Item", validators=[Optional(), Length(max=80)])
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
        "Reason", validators=[DataRequired(message="Say why the tab is void."), Length(max=200)]
    )


class ActionForm(FlaskForm):
    """Only the CSRF token."""

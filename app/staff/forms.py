from flask_wtf import FlaskForm
from wtforms import EmailField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from app.enums import Role
from app.web.forms import SignInEmail


class AddStaffForm(FlaskForm):
    name = StringField(
        "Name", validators=[DataRequired(message="Enter their name."), Length(max=120)]
    )
    email = EmailField(
        "Email", validators=[DataRequired(message="Enter their email."), SignInEmail()]
    )
    role = SelectField(
        "Role",
        choices=[
            SelectChoice(Role.CASHIER, "Cashier: tabs and payments"),
            SelectChoice(Role.MANAGER, "Manager: everything but M-Pesa settings and staff"),
        ],
        default=Role.CASHIER,
    )


class ConfirmForm(FlaskForm):
    """A form with only the CSRF token, for one-button actions."""

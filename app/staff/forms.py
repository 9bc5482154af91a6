"""The Staff page's forms. Each text field states its longest value (maxlength and a hint) and
refuses a longer one with a sentence."""

from flask_wtf import FlaskForm
from wtforms import EmailField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Optional

from app.auth.accounts import EMAIL_MAX, NAME_MAX, PHONE_EXAMPLE, PHONE_MAX
from app.enums import Role
from app.web.forms import SignInEmail, at_most


class AddStaffForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired(message="Enter their name."), at_most(NAME_MAX, "A name")],
        description=f"Up to {NAME_MAX} characters.",
    )
    # Either or both; the accounts domain says which is missing (a manager needs the email).
    email = EmailField(
        "Email",
        validators=[Optional(), at_most(EMAIL_MAX, "An email address"), SignInEmail()],
        description=f"Up to {EMAIL_MAX} characters. A cashier may have a phone number instead.",
        render_kw={"autocapitalize": "none", "spellcheck": "false"},
    )
    phone = StringField(
        "Phone number (cashiers)",
        validators=[Optional(), at_most(PHONE_MAX, "A phone number")],
        description=(
            f"A cashier without email signs in with it. Like {PHONE_EXAMPLE}, "
            f"up to {PHONE_MAX} characters."
        ),
        render_kw={"inputmode": "tel", "autocomplete": "off"},
    )
    role = SelectField(
        "Role",
        choices=[
            SelectChoice(Role.CASHIER, "Cashier: tabs and payments"),
            SelectChoice(Role.MANAGER, "Manager: everything but M-Pesa settings and adding staff"),
        ],
        default=Role.CASHIER,
    )


class ConfirmForm(FlaskForm):
    """A form with only the CSRF token, for one-button actions."""

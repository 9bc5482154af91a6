"""The Staff page's forms. Each text field states its longest value (maxlength and a hint) and
refuses a longer one with a sentence. Labels, hints and sentences are `lazy()`: read in each
request's language (app/i18n.py)."""

from flask_wtf import FlaskForm
from wtforms import EmailField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Optional

from app.auth.accounts import EMAIL_MAX, NAME_MAX, PHONE_EXAMPLE, PHONE_MAX
from app.enums import Role
from app.i18n import lazy
from app.web.forms import SignInEmail, at_most


class AddStaffForm(FlaskForm):
    name = StringField(
        lazy("Name"),
        validators=[
            DataRequired(message=lazy("Enter their name.")),
            at_most(NAME_MAX, lazy("A name has at most %(max)d characters.")),
        ],
        description=lazy("Up to %(max)d characters.", max=NAME_MAX),
    )
    # Either or both; the accounts domain says which is missing (a manager needs the email).
    email = EmailField(
        lazy("Email"),
        validators=[
            Optional(),
            at_most(EMAIL_MAX, lazy("An email address has at most %(max)d characters.")),
            SignInEmail(),
        ],
        description=lazy(
            "Up to %(max)d characters. A cashier may have a phone number instead.", max=EMAIL_MAX
        ),
        render_kw={"autocapitalize": "none", "spellcheck": "false"},
    )
    phone = StringField(
        lazy("Phone number (cashiers)"),
        validators=[
            Optional(),
            at_most(PHONE_MAX, lazy("A phone number has at most %(max)d characters.")),
        ],
        description=lazy(
            "A cashier without email signs in with it. Like %(example)s, up to %(max)d characters.",
            example=PHONE_EXAMPLE,
            max=PHONE_MAX,
        ),
        render_kw={"inputmode": "tel", "autocomplete": "off"},
    )
    role = SelectField(
        lazy("Role"),
        choices=[
            SelectChoice(Role.CASHIER, lazy("Cashier: tabs and payments")),
            SelectChoice(
                Role.MANAGER, lazy("Manager: everything but M-Pesa settings and adding staff")
            ),
        ],
        default=Role.CASHIER,
        invalid_choice_message=lazy("Choose Manager or Cashier."),
    )


class ConfirmForm(FlaskForm):
    """A form with only the CSRF token, for one-button actions."""

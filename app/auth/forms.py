"""The sign-in, sign-up, set-password and forgot-password forms.

Every text field states its longest value (the `maxlength` attribute WTForms renders from the
Length validator, and a hint, kept in the field's description) and refuses a longer one with a
sentence, so nothing the database would refuse reaches it. Labels, hints and sentences are
`lazy()`: read in each request's language (app/i18n.py).
"""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, ValidationError
from wtforms.validators import DataRequired, EqualTo, Length

from app.auth.accounts import EMAIL_MAX, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN, login_problem
from app.i18n import lazy
from app.web.forms import SignInEmail, at_most

# WTForms' Length fills in a sentence's %(min)d and %(max)d.
PASSWORD_RULE = [
    Length(min=PASSWORD_MIN, message=lazy("Use at least %(min)d characters.")),
    at_most(PASSWORD_MAX, lazy("A password has at most %(max)d characters.")),
]
PASSWORD_HINT = lazy("%(min)d to %(max)d characters.", min=PASSWORD_MIN, max=PASSWORD_MAX)
NAME_HINT = lazy("Up to %(max)d characters.", max=NAME_MAX)
EMAIL_HINT = lazy("Up to %(max)d characters.", max=EMAIL_MAX)
LOGIN_HINT = lazy(
    "The email or phone number your account was made with (up to %(max)d characters).",
    max=EMAIL_MAX,
)


class SignInName:
    """WTForms validator: an email address or a Kenyan mobile number (app.auth.accounts)."""

    def __call__(self, form, field):
        problem = login_problem(field.data)
        if problem is not None:
            raise ValidationError(problem)


def _login_field() -> StringField:
    return StringField(
        lazy("Email or phone number"),
        validators=[
            DataRequired(message=lazy("Enter your email or phone number.")),
            at_most(EMAIL_MAX, lazy("An email address has at most %(max)d characters.")),
            SignInName(),
        ],
        description=LOGIN_HINT,
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )


class LoginForm(FlaskForm):
    # Named `email` as it always was (bookmarked forms, password managers); a phone works too.
    email = _login_field()
    password = PasswordField(
        lazy("Password"),
        validators=[
            DataRequired(message=lazy("Enter your password.")),
            at_most(PASSWORD_MAX, lazy("A password has at most %(max)d characters.")),
        ],
        description=lazy("Up to %(max)d characters.", max=PASSWORD_MAX),
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField(lazy("Keep me signed in on this device"))


class ForgotPasswordForm(FlaskForm):
    email = _login_field()


class SignupForm(FlaskForm):
    bar_name = StringField(
        lazy("Bar or restaurant name"),
        validators=[
            DataRequired(message=lazy("Enter the bar's name.")),
            at_most(NAME_MAX, lazy("The bar's name has at most %(max)d characters.")),
        ],
        description=NAME_HINT,
    )
    owner_name = StringField(
        lazy("Your name"),
        validators=[
            DataRequired(message=lazy("Enter your name.")),
            at_most(NAME_MAX, lazy("Your name has at most %(max)d characters.")),
        ],
        description=NAME_HINT,
    )
    email = EmailField(
        lazy("Email"),
        validators=[
            DataRequired(message=lazy("Enter your email.")),
            at_most(EMAIL_MAX, lazy("An email address has at most %(max)d characters.")),
            SignInEmail(),
        ],
        description=EMAIL_HINT,
    )
    password = PasswordField(
        lazy("Password"),
        validators=[DataRequired(message=lazy("Choose a password.")), *PASSWORD_RULE],
        description=PASSWORD_HINT,
        render_kw={"autocomplete": "new-password"},
    )


class SetPasswordForm(FlaskForm):
    password = PasswordField(
        lazy("New password"),
        validators=[DataRequired(message=lazy("Choose a password.")), *PASSWORD_RULE],
        description=PASSWORD_HINT,
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        lazy("Type it again"),
        validators=[
            DataRequired(message=lazy("Type the password again.")),
            at_most(PASSWORD_MAX, lazy("A password has at most %(max)d characters.")),
            EqualTo("password", message=lazy("The two passwords differ.")),
        ],
        description=lazy("The same password (up to %(max)d characters).", max=PASSWORD_MAX),
        render_kw={"autocomplete": "new-password"},
    )

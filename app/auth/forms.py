"""The sign-in, sign-up, set-password and forgot-password forms.

Every text field states its longest value (the `maxlength` attribute WTForms renders from the
Length validator, and a hint, kept in the field's description) and refuses a longer one with a
sentence, so nothing the database would refuse reaches it.
"""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, ValidationError
from wtforms.validators import DataRequired, EqualTo, Length

from app.auth.accounts import EMAIL_MAX, NAME_MAX, PASSWORD_MAX, PASSWORD_MIN, login_problem
from app.web.forms import SignInEmail, at_most

PASSWORD_RULE = [
    Length(min=PASSWORD_MIN, message=f"Use at least {PASSWORD_MIN} characters."),
    at_most(PASSWORD_MAX, "A password"),
]
PASSWORD_HINT = f"{PASSWORD_MIN} to {PASSWORD_MAX} characters."
NAME_HINT = f"Up to {NAME_MAX} characters."
EMAIL_HINT = f"Up to {EMAIL_MAX} characters."
LOGIN_HINT = f"The email or phone number your account was made with (up to {EMAIL_MAX} characters)."


class SignInName:
    """WTForms validator: an email address or a Kenyan mobile number (app.auth.accounts)."""

    def __call__(self, form, field):
        problem = login_problem(field.data)
        if problem is not None:
            raise ValidationError(problem)


def _login_field(label: str = "Email or phone number") -> StringField:
    return StringField(
        label,
        validators=[
            DataRequired(message="Enter your email or phone number."),
            at_most(EMAIL_MAX, "An email address"),
            SignInName(),
        ],
        description=LOGIN_HINT,
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )


class LoginForm(FlaskForm):
    # Named `email` as it always was (bookmarked forms, password managers); a phone works too.
    email = _login_field()
    password = PasswordField(
        "Password",
        validators=[
            DataRequired(message="Enter your password."),
            at_most(PASSWORD_MAX, "A password"),
        ],
        description=f"Up to {PASSWORD_MAX} characters.",
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField("Keep me signed in on this device")


class ForgotPasswordForm(FlaskForm):
    email = _login_field()


class SignupForm(FlaskForm):
    bar_name = StringField(
        "Bar or restaurant name",
        validators=[
            DataRequired(message="Enter the bar's name."),
            at_most(NAME_MAX, "The bar's name"),
        ],
        description=NAME_HINT,
    )
    owner_name = StringField(
        "Your name",
        validators=[DataRequired(message="Enter your name."), at_most(NAME_MAX, "Your name")],
        description=NAME_HINT,
    )
    email = EmailField(
        "Email",
        validators=[
            DataRequired(message="Enter your email."),
            at_most(EMAIL_MAX, "An email address"),
            SignInEmail(),
        ],
        description=EMAIL_HINT,
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(message="Choose a password."), *PASSWORD_RULE],
        description=PASSWORD_HINT,
        render_kw={"autocomplete": "new-password"},
    )


class SetPasswordForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[DataRequired(message="Choose a password."), *PASSWORD_RULE],
        description=PASSWORD_HINT,
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Type it again",
        validators=[
            DataRequired(message="Type the password again."),
            at_most(PASSWORD_MAX, "A password"),
            EqualTo("password", message="The two passwords differ."),
        ],
        description=f"The same password (up to {PASSWORD_MAX} characters).",
        render_kw={"autocomplete": "new-password"},
    )

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from app.web.forms import SignInEmail

PASSWORD_RULE = Length(min=10, max=200, message="Use at least 10 characters.")


class LoginForm(FlaskForm):
    email = EmailField(
        "Email", validators=[DataRequired(message="Enter your email."), SignInEmail()]
    )
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password.")])
    remember = BooleanField("Keep me signed in on this device")


class SignupForm(FlaskForm):
    bar_name = StringField(
        "Bar or restaurant name",
        validators=[DataRequired(message="Enter the bar's name."), Length(max=120)],
    )
    owner_name = StringField(
        "Your name", validators=[DataRequired(message="Enter your name."), Length(max=120)]
    )
    email = EmailField(
        "Email", validators=[DataRequired(message="Enter your email."), SignInEmail()]
    )
    password = PasswordField("Password", validators=[DataRequired(), PASSWORD_RULE])


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), PASSWORD_RULE])
    confirm = PasswordField(
        "Type it again",
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
    )

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired


class DisableForm(FlaskForm):
    confirm = BooleanField(
        "Yes, stop new M-Pesa requests for every bar",
        validators=[
            DataRequired(message="Tick the box to confirm: this stops every bar's M-Pesa requests.")
        ],
    )


class EnableForm(FlaskForm):
    confirm = BooleanField(
        "Yes, let every bar send M-Pesa requests again",
        validators=[DataRequired(message="Tick the box to confirm switching M-Pesa back on.")],
    )

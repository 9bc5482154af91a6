from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired

from app.i18n import lazy


class DisableForm(FlaskForm):
    confirm = BooleanField(
        lazy("Yes, stop new M-Pesa requests for every bar"),
        validators=[
            DataRequired(
                message=lazy("Tick the box to confirm: this stops every bar's M-Pesa requests.")
            )
        ],
    )


class EnableForm(FlaskForm):
    confirm = BooleanField(
        lazy("Yes, let every bar send M-Pesa requests again"),
        validators=[
            DataRequired(message=lazy("Tick the box to confirm switching M-Pesa back on."))
        ],
    )

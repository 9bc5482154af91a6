from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length

from app.i18n import lazy


class CheckedForm(FlaskForm):
    note = StringField(
        lazy("What you found"),
        validators=[
            DataRequired(
                message=lazy(
                    "Say what you found (a few words), for example “customer refunded KES 450”."
                )
            ),
            Length(max=200, message=lazy("Keep it under 200 characters.")),
        ],
    )
    back = HiddenField()  # the reconciliation page it was sent from

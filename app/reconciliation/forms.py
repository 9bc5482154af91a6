from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Length


class CheckedForm(FlaskForm):
    note = StringField(
        "What you found",
        validators=[
            DataRequired(
                message="Say what you found (a few words), for example “customer refunded KES 450”."
            ),
            Length(max=200, message="Keep it under 200 characters."),
        ],
    )
    back = HiddenField()  # the reconciliation page it was sent from
